package cluster

import (
	"context"
	"errors"
	"net"
	"time"
)

// When Redis stops answering, a Factory's writes time out one after the
// other, each after RequestsTimeout. The Factories (classic, sharded,
// streams) share these rules for what follows a write that timed out:

// StallPause is the pause of a Factory's publisher after a write that
// timed out.
const StallPause = time.Second

// PauseAfterStall follows a write that timed out: the next one waits
// StallPause, or until closeStart is closed (Close started). From then on
// the Factory drops what is queued instead of writing it: Redis did not
// answer the last write within RequestsTimeout, and Close does not give it
// that long again — nor for a batch that a caller waiting for the failed
// write would queue just before Close (a handler waiting for a logged
// broadcast returns, the server persists its sessions, then closes).
func PauseAfterStall(closeStart <-chan struct{}) {
	t := time.NewTimer(StallPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-closeStart:
	}
}

// Started reports whether closeStart is closed: whether Close started.
func Started(closeStart <-chan struct{}) bool {
	select {
	case <-closeStart:
		return true
	default:
		return false
	}
}

// TimedOut reports whether err says that Redis did not answer in time.
func TimedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// Deadline is the deadline of a Factory's Redis command: timeout from now,
// or limit (Unix nanoseconds, set once Close started; 0: none) when that
// comes first.
func Deadline(timeout time.Duration, limit int64) time.Time {
	d := time.Now().Add(timeout)
	if limit != 0 && limit < d.UnixNano() {
		return time.Unix(0, limit)
	}
	return d
}

// IOContext is the context of a Redis command that a caller waits for
// with ctx: it ends with ctx, at Deadline(timeout, limit), and when giveUp
// ends (the Factory gave up on Redis).
func IOContext(ctx, giveUp context.Context, timeout time.Duration, limit int64) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(ctx, Deadline(timeout, limit))
	stop := context.AfterFunc(giveUp, cancel)
	return ctx, func() { stop(); cancel() }
}
