package redis

import (
	"log/slog"
	"sync"
)

// eventRunner runs the server-side listeners of serverSideEmit events, in
// arrival order, off the receiving goroutine: a listener that waits (for a
// cluster request of its own, say) does not stop cluster traffic. Both
// factories (classic and sharded) have one. Its queue is bounded
// (eventQueue): an event that finds it full is dropped, and logged.
type eventRunner struct {
	log *slog.Logger

	mu     sync.RWMutex // guards sends on ch against its closing
	closed bool
	ch     chan func()
}

func newEventRunner(log *slog.Logger) *eventRunner {
	return &eventRunner{log: log, ch: make(chan func(), eventQueue)}
}

// loop runs the queued listeners until close; a panic is logged, not
// fatal.
func (e *eventRunner) loop() {
	for fn := range e.ch {
		func() {
			defer func() {
				if r := recover(); r != nil {
					e.log.Error("redis: panic in a serverSideEmit listener", "panic", r)
				}
			}()
			fn()
		}()
	}
}

// run queues fn without blocking.
func (e *eventRunner) run(fn func()) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	select {
	case e.ch <- fn:
	default:
		e.log.Warn("redis: serverSideEmit listeners are too slow; event dropped")
	}
}

// close ends loop once the queued listeners ran; run does nothing after it.
func (e *eventRunner) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.ch)
	}
}
