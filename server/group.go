package server

import "sync"

// group counts the goroutines the server starts for user code (socket
// handlers, broadcast ack callbacks, cluster requests), so that Close can
// wait for them.
//
// A sync.WaitGroup cannot do this job: its Add from zero must happen before
// Wait starts, and work reaches the server from goroutines it does not own
// (an ack timer that fired just as Close began, an adapter's receive loop).
// A group accepts new goroutines while others still run — they extend the
// wait — and refuses them once Close has started and the count has reached
// zero, so nothing it counts can outlive Close.
type group struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{} // made by wait; closed when n reaches 0 while closing
}

// add counts one more goroutine. It reports false, counting nothing, once
// the group is closing and idle: the caller must then not start it.
func (g *group) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing && g.n == 0 {
		return false
	}
	g.n++
	return true
}

// done ends a goroutine counted by add.
func (g *group) done() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.closing {
		close(g.idle)
	}
	g.mu.Unlock()
}

// goFunc runs f on a new counted goroutine, unless the group is closed.
func (g *group) goFunc(f func()) bool {
	if !g.add() {
		return false
	}
	go func() {
		defer g.done()
		f()
	}()
	return true
}

// wait marks the group closing and returns a channel closed once no counted
// goroutine runs. Only the first call starts the close; later calls get the
// same channel.
func (g *group) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closing {
		g.closing = true
		g.idle = make(chan struct{})
		if g.n == 0 {
			close(g.idle)
		}
	}
	return g.idle
}

// pending counts work that Shutdown waits for without refusing more (the
// sockets being disconnected). Its lock is a leaf.
type pending struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // made by idle; closed when n reaches 0
}

func (p *pending) add() {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
}

func (p *pending) done() {
	p.mu.Lock()
	p.n--
	if p.n == 0 && p.zero != nil {
		close(p.zero)
		p.zero = nil
	}
	p.mu.Unlock()
}

// idle returns a channel closed once nothing is counted.
func (p *pending) idle() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.zero == nil {
		p.zero = make(chan struct{})
		if p.n == 0 {
			close(p.zero)
			ch := p.zero
			p.zero = nil
			return ch
		}
	}
	return p.zero
}
