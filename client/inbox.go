package client

import "sync"

// Backpressure on what the server sends.
//
// Events wait for their socket's handlers on its handler goroutine, so that
// the connection's reader never waits for a handler. What waits is bounded
// per socket, in count and bytes: once an event takes the socket over its
// budget, the reader (the engine's OnMessage) blocks until the handlers
// have caught up — the connection stops reading, and the server's own
// backpressure slows it down. As on the server, a reader blocked longer
// than the heartbeat allows ends the connection as a ping timeout (the
// engine decides): a handler that never returns cannot hold memory
// without bound.
const (
	maxPendingEvents = 1024    // the server's default MaxPendingEvents
	maxPendingBytes  = 1 << 20 // and MaxPendingBytes
	maxEarlyBytes    = 16 << 20
)

type inbox struct {
	mu       sync.Mutex
	count    int
	bytes    int64
	progress chan struct{} // made when the reader first waits; signals a release
}

// eventSize is what a queued event holds in memory.
func eventSize(ev *Event) int64 {
	var n int64
	for _, r := range ev.Args {
		n += int64(len(r.JSON))
		for _, a := range r.Attachments {
			n += int64(len(a))
		}
	}
	return n + int64(len(ev.Name))
}

func (in *inbox) acquire(n int64) {
	in.mu.Lock()
	in.count++
	in.bytes += n
	in.mu.Unlock()
}

// release counts an event whose handlers returned and wakes a waiting
// reader.
func (in *inbox) release(n int64) {
	in.mu.Lock()
	in.count--
	in.bytes -= n
	ch := in.progress
	in.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// overLocked reports whether the reader must wait; one event is always let
// through, however large (the engine bounds its size).
func (in *inbox) overLocked() bool {
	return in.count > 1 && (in.count > maxPendingEvents || in.bytes > maxPendingBytes)
}

// wait blocks while the socket is over its budget, until handlers catch up
// or done is closed.
func (in *inbox) wait(done <-chan struct{}) {
	in.mu.Lock()
	if !in.overLocked() {
		in.mu.Unlock()
		return
	}
	if in.progress == nil {
		in.progress = make(chan struct{}, 1)
	}
	ch := in.progress
	in.mu.Unlock()
	for {
		select {
		case <-ch:
			in.mu.Lock()
			over := in.overLocked()
			in.mu.Unlock()
			if !over {
				return
			}
		case <-done:
			return
		}
	}
}
