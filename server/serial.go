package server

import (
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/ioswarm/ioswarm/engineio"
)

// serial runs functions one after another, in submission order, on a
// goroutine of the server's group, or on the connection's reader
// (doOnReader), that it holds only while there is work. Every socket has
// one, so its handlers never run concurrently with each other and a
// handler that blocks delays only its own socket — the connection's
// reading goes on (a reader lent to a handler is replaced within 20 ms, at
// once when the handler waits for an acknowledgement), so a handler may
// wait for the client's acknowledgement without deadlocking.
type serial struct {
	group *group // the server's, so Close waits for handlers
	log   *slog.Logger
	mu    sync.Mutex
	// The tasks waiting, in order: head, then rest. A socket mostly has one
	// at a time, which head holds without allocating.
	head    task
	rest    []task
	running bool
}

// do queues f. After the server's Close has drained every handler, f is
// dropped: nothing runs user code once Close returned.
func (e *serial) do(f func()) { e.doTask(funcTask(f)) }

// doTask queues t, as do.
func (e *serial) doTask(t task) {
	e.mu.Lock()
	if e.head == nil && len(e.rest) == 0 {
		e.head = t
	} else {
		e.rest = append(e.rest, t)
	}
	if e.running {
		e.mu.Unlock()
		return
	}
	e.running = true
	if !e.group.goTask(e) {
		e.running = false
		e.head, e.rest = nil, nil
	}
	e.mu.Unlock()
}

// doOnReader queues t, an event the connection's reader just decoded.
// When the socket has nothing else to run, the reader runs it itself once
// the message is handled (engineio's RunOnReader): no goroutine is woken,
// and the reply leaves from the goroutine that read the request. Otherwise
// t waits its turn as with do.
func (e *serial) doOnReader(t task, conn *engineio.Conn) {
	e.mu.Lock()
	if !e.running && e.head == nil && len(e.rest) == 0 && e.group.enter() {
		if conn.RunOnReader(e) {
			e.head = t
			e.running = true
			e.mu.Unlock()
			return
		}
		e.group.done()
	}
	e.mu.Unlock()
	e.doTask(t)
}

// Run implements engineio.Runner: the reader's run of the queue.
func (e *serial) Run() {
	defer e.group.done()
	e.runTask()
}

// next takes the first task waiting, or ends the run (nil).
func (e *serial) next() task {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.head; t != nil {
		e.head = nil
		return t
	}
	if len(e.rest) == 0 {
		e.running = false
		e.rest = nil
		return nil
	}
	t := e.rest[0]
	e.rest[0] = nil
	e.rest = e.rest[1:]
	return t
}

// runTask drains the queue, on a goroutine of the group.
func (e *serial) runTask() {
	for t := e.next(); t != nil; t = e.next() {
		e.run(t)
	}
}

// run runs t, turning a panic into a log line: one faulty handler must not
// take the whole server down.
func (e *serial) run(t task) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("server: handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	t.runTask()
}
