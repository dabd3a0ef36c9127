package server

import (
	"log/slog"
	"runtime/debug"
	"sync"
)

// serial runs functions one after another, in submission order, on a
// goroutine of the server's group that it holds only while there is work. Every socket has one, so
// its handlers never run concurrently with each other and a handler that
// blocks delays only its own socket — while the connection's read loop goes
// on (it resolves acks and answers pings), so a handler may wait for the
// client's acknowledgement without deadlocking.
type serial struct {
	group   *group // the server's, so Close waits for handlers
	log     *slog.Logger
	mu      sync.Mutex
	queue   []func()
	running bool
}

// do queues f. After the server's Close has drained every handler, f is
// dropped: nothing runs user code once Close returned.
func (e *serial) do(f func()) {
	e.mu.Lock()
	e.queue = append(e.queue, f)
	if e.running {
		e.mu.Unlock()
		return
	}
	e.running = true
	if !e.group.goTask(e) {
		e.running = false
		e.queue = nil
	}
	e.mu.Unlock()
}

// runTask drains the queue, on a goroutine of the group.
func (e *serial) runTask() {
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			e.running = false
			e.queue = nil
			e.mu.Unlock()
			return
		}
		f := e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.mu.Unlock()
		e.run(f)
	}
}

// run calls f, turning a panic into a log line: one faulty handler must not
// take the whole server down.
func (e *serial) run(f func()) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("server: handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}
