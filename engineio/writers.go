package engineio

import (
	"runtime"
	"sync"
)

// The server's WebSocket writers.
//
// A broadcast queues one frame on each of thousands of connections. Writing
// each one takes a system call; starting or waking a goroutine per
// connection to make it costs as much again in scheduling, and thousands of
// writers made runnable together run ahead of the broadcaster, each paying
// a system call for a single frame. Instead, a connection with something to
// write is put on the server's ready list, and a few long-lived writers
// (half the processors, at least one) take connections off it in order and
// write each one's whole queue with one non-blocking system call. While a
// broadcast is under way the list stays long and the writers never sleep;
// frames that arrive for a connection still on the list join its batch, so
// a burst is written in few system calls.
//
// A writer never waits for a client: when a socket does not take a whole
// batch at once, the rest is handed to a goroutine of the connection's own
// (writeLoop), which waits for the client, with WriteTimeout, and drains
// its queue until it is empty. Closing a connection (flush, close frame,
// hang up) is also left to that goroutine. Connections whose writes cannot
// be done without waiting (TLS, per-message deflate, platforms without
// non-blocking writes) always use it.
//
// Which of them may write to a connection is recorded in wsConn.owner
// (ownership.go has the rules).
type writerPool struct {
	srv *Server

	mu      sync.Mutex
	list    []*Conn // connections to write, in order
	spare   []*Conn // a taken list's array, for reuse
	sleep   int     // writers waiting for work
	started int     // writers running
	max     int
	wake    chan struct{} // one token per writer to wake (capacity max)
	stopped bool
	stop    chan struct{} // closed by stopWriters
}

func newWriterPool(s *Server) *writerPool {
	n := runtime.GOMAXPROCS(0) / 2
	if n < 1 {
		n = 1
	}
	return &writerPool{srv: s, max: n, wake: make(chan struct{}, n), stop: make(chan struct{})}
}

// push puts c on the ready list, starting or waking a writer as needed. It
// reports false once the pool is stopped; the caller then writes c from a
// goroutine of its own. The caller holds c.mu, which orders the WaitGroup
// Add (the repository's LOCKING.md).
func (p *writerPool) push(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.list = append(p.list, c)
	switch {
	case p.sleep > 0:
		if len(p.list) == 1 {
			// Only an empty list finds writers asleep; one is enough to
			// start, the others wake as the list grows.
			p.sleep--
			p.wake <- struct{}{}
		}
	case p.started < p.max:
		p.started++
		p.srv.wg.Add(1)
		go p.run()
	}
	return true
}

// take waits for connections to write and takes the whole list. It returns
// nil when the pool is stopped and the list is empty.
func (p *writerPool) take(prev []*Conn) []*Conn {
	p.mu.Lock()
	if prev != nil {
		clear(prev)
		p.spare = prev[:0]
	}
	for len(p.list) == 0 {
		if p.stopped {
			p.started--
			p.mu.Unlock()
			return nil
		}
		p.sleep++
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-p.stop:
		}
		p.mu.Lock()
	}
	batch := p.list
	p.list, p.spare = p.spare, nil
	p.mu.Unlock()
	return batch
}

// useRing lets writers send through io_uring where the kernel allows it
// (tests turn it off to cover the other path).
var useRing = true

// run is one writer. With a ring of its own, it hands the kernel the sends
// of up to ringSize connections at once; without, it writes each
// connection with its own system call.
func (p *writerPool) run() {
	defer p.srv.wg.Done()
	var r *ring
	if useRing {
		var err error
		if r, err = newRing(); err != nil {
			p.srv.log.Debug("engineio: writers without io_uring", "err", err)
			r = nil
		} else {
			defer r.close()
		}
	}
	var sb sendBatch
	var batch []*Conn
	for {
		if batch = p.take(batch); batch == nil {
			return
		}
		if r == nil {
			for _, c := range batch {
				c.writeListed()
			}
			continue
		}
		for _, c := range batch {
			if r == nil {
				c.writeListed()
			} else if sb.add(c) && !sb.flush(r) {
				r.close() // broken: written the usual way from now on
				r = nil
			}
		}
		if r != nil && !sb.flush(r) {
			r.close()
			r = nil
		}
	}
}

// stopWriters stops the pool: writers finish the list, then end. Later
// pushes are refused. Called by Server.Close once every connection is
// closed.
func (p *writerPool) stopWriters() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.stop)
	}
	p.mu.Unlock()
}
