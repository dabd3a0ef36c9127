package engineio

import "runtime"

// writeSlots paces the writers of their own (writeLoop) that connections
// get where the server's writers cannot write them (TLS, per-message
// deflate, a client that did not take a whole batch at once).
//
// A broadcast to thousands of such connections starts thousands of
// writers at once. Left alone they all become runnable together: the
// scheduler runs them ahead of the goroutine that is still broadcasting,
// each writer finds one frame in its queue and pays a system call for it,
// and the broadcaster waits behind them. With only a few writers writing
// at a time, the broadcaster stays ahead, frames pile up in the queues, and
// each system call carries a batch — ten times the deliveries per
// CPU-second at 5,000 clients.
//
// A slot is held only while a write can proceed without waiting: a writer
// first tries its write without blocking, and if the client's socket is
// full it gives its slot back before waiting for it, so a slow client never
// holds up the others.
type writeSlots chan struct{}

func newWriteSlots() writeSlots {
	n := runtime.GOMAXPROCS(0) / 2
	if n < 1 {
		n = 1
	}
	return make(writeSlots, n)
}

// slotHold is one writer's hold on a slot: the writer takes it, and gives
// it back itself or, before a write that has to wait, from bufConn.out.
// Both happen on the writer's goroutine, or under bufConn.mu during its
// drain, which the writer's own release follows.
type slotHold struct {
	slots writeSlots
	held  bool
}

// acquire takes a slot, waiting for one.
func (h *slotHold) acquire() {
	h.slots <- struct{}{}
	h.held = true
}

// release gives the slot back; it may be called any number of times.
func (h *slotHold) release() {
	if h.held {
		h.held = false
		<-h.slots
	}
}
