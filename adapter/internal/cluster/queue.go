package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
)

// Queue holds the messages a node sends to Redis, in order, until one
// goroutine (Run) writes them in pipelined batches. Other nodes grow it
// (answers to their requests), so it is bounded in count and in bytes: a
// message that does not fit is refused with ErrQueueFull, never waited
// for. Senders that may wait (broadcasts emitted on this node) pace
// themselves on Congestion.
type Queue struct {
	maxBytes int64
	log      *slog.Logger

	mu     sync.RWMutex // guards sends on ch against its closing
	closed bool
	ch     chan QueueItem

	bmu     sync.Mutex
	bytes   int64         // payload bytes queued
	drained chan struct{} // made for paced senders while congested

	done    chan struct{} // closed when Run returned
	failing atomic.Bool
	dropped atomic.Int64
}

// QueueItem is one message for Redis: Key is its channel or stream, Kind
// the transport's command for it, Fields what the command sends besides.
type QueueItem struct {
	Kind    int
	Key     string
	Payload []byte
	Fields  []string
	// Done, when set, gets the command's reply: the write function calls
	// it, or the queue with an error when it drops the item unwritten.
	Done func(reply string, err error)
}

func (it *QueueItem) size() int64 {
	n := int64(len(it.Payload))
	for _, f := range it.Fields {
		n += int64(len(f))
	}
	return n
}

// MaxBatch is the most messages written in one pipeline.
const MaxBatch = 256

// NewQueue returns a queue of at most maxCount messages and maxBytes
// bytes.
func NewQueue(maxCount int, maxBytes int64, log *slog.Logger) *Queue {
	return &Queue{maxBytes: maxBytes, log: log, ch: make(chan QueueItem, maxCount), done: make(chan struct{})}
}

// Send queues it without blocking.
func (q *Queue) Send(it QueueItem) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return adapter.ErrClosed
	}
	n := it.size()
	q.bmu.Lock()
	if q.bytes > 0 && q.bytes+n > q.maxBytes {
		q.bmu.Unlock()
		q.dropped.Add(1)
		return fmt.Errorf("redis: to %s: %d bytes queued: %w", it.Key, q.maxBytes, ErrQueueFull)
	}
	q.bytes += n
	q.bmu.Unlock()
	select {
	case q.ch <- it:
		return nil
	default:
		q.unreserve(n)
		q.dropped.Add(1)
		return fmt.Errorf("redis: to %s: %w", it.Key, ErrQueueFull)
	}
}

// unreserve uncounts n bytes taken off the queue (or never queued), and
// releases paced senders once the queue is back under a quarter of its
// bounds.
func (q *Queue) unreserve(n int64) {
	q.bmu.Lock()
	q.bytes -= n
	if q.drained != nil && 4*q.bytes <= q.maxBytes && 4*len(q.ch) <= cap(q.ch) {
		close(q.drained)
		q.drained = nil
	}
	q.bmu.Unlock()
}

// Congestion returns the channel a paced sender waits on, or nil while
// the queue is under half of its bounds.
func (q *Queue) Congestion() <-chan struct{} {
	q.bmu.Lock()
	defer q.bmu.Unlock()
	if 2*q.bytes <= q.maxBytes && 2*len(q.ch) <= cap(q.ch) {
		return nil
	}
	if q.drained == nil {
		q.drained = make(chan struct{})
	}
	return q.drained
}

// releasePaced wakes every paced sender (Run is returning).
func (q *Queue) releasePaced() {
	q.bmu.Lock()
	if q.drained != nil {
		close(q.drained)
		q.drained = nil
	}
	q.bmu.Unlock()
}

// Run writes the queued messages with write, in order, in batches of
// what accumulated while the previous one was on its way, each bounded by
// timeout, until Close and the queue is empty. Once ctx ends, what is
// left is dropped. A failing write drops its batch and is logged once
// until writes succeed again.
func (q *Queue) Run(ctx context.Context, timeout time.Duration, write func(ctx context.Context, batch []QueueItem) error) {
	defer close(q.done)
	defer q.releasePaced()
	batch := make([]QueueItem, 0, MaxBatch)
	for it := range q.ch {
		batch = append(batch[:0], it)
	fill:
		for len(batch) < MaxBatch {
			select {
			case it, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		q.flush(ctx, timeout, batch, write)
		var n int64
		for i := range batch {
			n += batch[i].size()
		}
		q.unreserve(n)
		clear(batch)
	}
}

func (q *Queue) flush(ctx context.Context, timeout time.Duration, batch []QueueItem, write func(context.Context, []QueueItem) error) {
	if ctx.Err() != nil {
		q.dropped.Add(int64(len(batch)))
		for i := range batch {
			if batch[i].Done != nil {
				batch[i].Done("", ctx.Err())
			}
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := write(ctx, batch); err != nil {
		if !q.failing.Swap(true) {
			q.log.Warn("redis: writing to Redis failed; messages to other nodes are dropped until Redis answers", "err", err)
		}
		q.dropped.Add(int64(len(batch)))
		return
	}
	if q.failing.Swap(false) {
		q.log.Info("redis: writing again", "dropped", q.dropped.Swap(0))
	}
}

// Close refuses new messages; Run returns once it wrote what is queued.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// Done is closed when Run has returned.
func (q *Queue) Done() <-chan struct{} { return q.done }

// PipelineErr returns the first error of a pipeline's commands, or err.
func PipelineErr[C interface{ Err() error }](cmds []C, err error) error {
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	return err
}

// Drain waits until Run has written what is queued (after Close), or
// for timeout at the most.
func (q *Queue) Drain(timeout time.Duration) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-q.done:
	case <-timer.C:
	}
}

// CloseAdapters is the first half of a factory's Close: it closes the
// adapters still open, then makes q and ev refuse new work.
func CloseAdapters(as []*Adapter, q *Queue, ev *EventRunner) {
	for _, a := range as {
		_ = a.Close()
	}
	q.Close()
	ev.Close()
}

// StopIO begins the second half: when the factory's goroutines were
// started (once has run; it never will afterwards), it lets q write what
// is queued, timeout at the most, then it cancels their I/O.
func StopIO(once *sync.Once, q *Queue, timeout time.Duration, cancel context.CancelFunc) {
	started := true
	once.Do(func() { started = false })
	if started {
		q.Drain(timeout)
	}
	cancel()
}

// WaitClosed waits for closed, the end of a factory's Close, or returns
// an error wrapping ctx's when ctx ends first (the goroutines still
// waiting for Redis then end by themselves).
func WaitClosed(ctx context.Context, closed <-chan struct{}) error {
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redis: close: goroutines still waiting for Redis: %w", ctx.Err())
	}
}
