package client

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
)

// serial runs functions one after another, in submission order, on a
// goroutine that exists only while there is work. Every socket has one, so
// its handlers never run concurrently and a handler that blocks delays only
// its own socket — while the connection's reader goes on (it resolves acks
// and answers pings), so a handler may wait for an acknowledgement.
type serial struct {
	log     *slog.Logger
	mu      sync.Mutex
	queue   []func()
	running bool
	closed  bool
	idle    chan struct{} // closed when the running goroutine exits
	gid     uint64        // the running goroutine's id
}

// do queues f; after close, f is dropped.
func (e *serial) do(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.queue = append(e.queue, f)
	if e.running {
		return
	}
	e.running = true
	e.idle = make(chan struct{})
	go e.drain(e.idle)
}

func (e *serial) drain(idle chan struct{}) {
	normal := false
	defer func() {
		if !normal {
			// A handler called runtime.Goexit (t.FailNow in a test, say):
			// hand the rest of the queue to a new goroutine.
			e.mu.Lock()
			e.running, e.gid = false, 0
			if len(e.queue) > 0 {
				e.running = true
				e.idle = make(chan struct{})
				go e.drain(e.idle)
			}
			e.mu.Unlock()
		}
		close(idle)
	}()
	e.mu.Lock()
	e.gid = goid()
	for {
		if len(e.queue) == 0 {
			e.running = false
			e.queue = nil
			e.gid = 0
			e.mu.Unlock()
			normal = true
			return
		}
		f := e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.mu.Unlock()
		e.run(f)
		e.mu.Lock()
	}
}

// run calls f, turning a panic into a log line: one faulty handler must not
// take the program down.
func (e *serial) run(f func()) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("client: handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}

// closeAndWait stops taking work and waits until what was queued has run,
// unless called from the handler goroutine itself (a handler that closes its
// socket): then the goroutine ends once that handler returns.
func (e *serial) closeAndWait() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.waitIdle()
}

// waitIdle waits until what was queued has run (see closeAndWait).
func (e *serial) waitIdle() {
	e.mu.Lock()
	idle, running, self := e.idle, e.running, e.running && e.gid == goid()
	e.mu.Unlock()
	if running && !self {
		<-idle
	}
}

// goid returns the current goroutine's id, parsed from its stack header
// ("goroutine 12 [running]:"). It is used only to tell whether Close runs
// on the handler goroutine it would otherwise wait for.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}
