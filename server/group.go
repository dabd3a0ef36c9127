package server

import (
	"runtime"
	"sync"
)

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
//
// A goroutine that finishes its work parks for the next one instead of
// ending (up to maxParked of them): a handler then runs on a goroutine
// whose stack has already grown to what handlers need, where a new one
// would start small and copy its stack as the handler's calls deepen (a
// tenth of the CPU of an echo round trip). A parked goroutine stays
// counted until Close wakes it to end.
type group struct {
	mu      sync.Mutex
	n       int // goroutines running work or parked
	closing bool
	idle    chan struct{} // made by wait; closed when n reaches 0 while closing
	parked  []chan task   // parked goroutines' inboxes, the latest last
}

// task is work for a counted goroutine. A *serial is one, so handing it
// over allocates nothing; funcTask makes one of a function.
type task interface{ runTask() }

type funcTask func()

func (f funcTask) runTask() { f() }

// maxParked bounds the goroutines parked for work: enough for the handlers
// that run at once on every processor, not a pool as large as the busiest
// moment.
var maxParked = max(8, 4*runtime.GOMAXPROCS(0))

// done ends a counted goroutine.
func (g *group) done() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.closing {
		close(g.idle)
	}
	g.mu.Unlock()
}

// goFunc runs f on a counted goroutine, unless the group is closed.
func (g *group) goFunc(f func()) bool { return g.goTask(funcTask(f)) }

// goTask runs t on a counted goroutine, a parked one if there is one,
// unless the group is closed.
func (g *group) goTask(t task) bool {
	g.mu.Lock()
	if g.closing && g.n == 0 {
		g.mu.Unlock()
		return false
	}
	if k := len(g.parked); k > 0 {
		inbox := g.parked[k-1]
		g.parked[k-1] = nil
		g.parked = g.parked[:k-1]
		g.mu.Unlock()
		inbox <- t // capacity 1, and only we send to it
		return true
	}
	g.n++
	g.mu.Unlock()
	go g.worker(t)
	return true
}

// enter counts work run by a goroutine the group did not start (a
// connection's reader running a handler, serial.doOnReader) unless the
// group is closed; done ends it.
func (g *group) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing && g.n == 0 {
		return false
	}
	g.n++
	return true
}

// worker runs tasks, parking between them, until there are too many parked
// or the group closes.
func (g *group) worker(t task) {
	var inbox chan task
	for t != nil {
		t.runTask()
		t = nil // a parked goroutine keeps nothing alive
		g.mu.Lock()
		if g.closing || len(g.parked) >= maxParked {
			g.mu.Unlock()
			break
		}
		if inbox == nil {
			inbox = make(chan task, 1)
		}
		g.parked = append(g.parked, inbox)
		g.mu.Unlock()
		t = <-inbox // nil: the group is closing
	}
	g.done()
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
		for _, inbox := range g.parked {
			inbox <- nil // the goroutine ends, and with the last, the wait
		}
		g.parked = nil
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
