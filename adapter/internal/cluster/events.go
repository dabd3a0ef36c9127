package cluster

import (
	"log/slog"
	"sync"
)

// EventRunner runs the server-side listeners of serverSideEmit events, in
// arrival order, off the receiving goroutine: a listener that waits (for a
// cluster request of its own, say) does not stop cluster traffic. Both
// factories (classic and sharded) have one. Its queue is bounded
// (eventQueue): an event that finds it full is dropped, and logged.
type EventRunner struct {
	Log *slog.Logger

	Mu     sync.RWMutex // guards sends on ch against its closing
	Closed bool
	ch     chan func()
}

func NewEventRunner(log *slog.Logger) *EventRunner {
	return &EventRunner{Log: log, ch: make(chan func(), eventQueue)}
}

// Loop runs the queued listeners until close; a panic is logged, not
// fatal.
func (e *EventRunner) Loop() {
	for fn := range e.ch {
		func() {
			defer func() {
				if r := recover(); r != nil {
					e.Log.Error("redis: panic in a serverSideEmit listener", "panic", r)
				}
			}()
			fn()
		}()
	}
}

// Run queues fn without blocking.
func (e *EventRunner) Run(fn func()) {
	e.Mu.RLock()
	defer e.Mu.RUnlock()
	if e.Closed {
		return
	}
	select {
	case e.ch <- fn:
	default:
		e.Log.Warn("redis: serverSideEmit listeners are too slow; event dropped")
	}
}

// Close ends loop once the queued listeners ran; run does nothing after it.
func (e *EventRunner) Close() {
	e.Mu.Lock()
	defer e.Mu.Unlock()
	if !e.Closed {
		e.Closed = true
		close(e.ch)
	}
}

// eventQueue bounds the serverSideEmit events waiting for their
// listeners.
const eventQueue = 1024
