package redis

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// receiver is what a subscription connection's reading loop needs of its
// factory (the classic one's and the sharded one's share the loop).
type receiver struct {
	client  goredis.UniversalClient
	ioCtx   context.Context
	done    <-chan struct{}
	log     *slog.Logger
	what    string // "subscription" or "shard subscription", for the logs
	pingCtx func() (context.Context, context.CancelFunc)
}

// receive reads ps until done is closed or ps is, handing every message to
// handle. go-redis reconnects and renews the subscriptions by itself when
// a read fails; the loop paces the retries, detects a silent connection
// with a PING, refreshes a Redis Cluster's slot map (the connection may be
// gone with its master) and logs the state changes.
func (r *receiver) receive(ps *goredis.PubSub, handle func(msg any)) {
	var (
		down    bool
		pinged  bool
		backoff = 50 * time.Millisecond
	)
	for {
		var (
			msg any
			err error
		)
		if pinged {
			// A timeout now is a failure: go-redis reconnects.
			ctx, cancel := context.WithTimeout(r.ioCtx, pingTimeout)
			msg, err = ps.ReceiveTimeout(ctx, 0)
			cancel()
		} else {
			// No context of its own per message (it would cost allocations
			// on the hot path): the read has idleTimeout, a dial is
			// bounded by the client's DialTimeout and ReadTimeout.
			msg, err = ps.ReceiveTimeout(r.ioCtx, idleTimeout)
		}
		select {
		case <-r.done:
			return
		default:
		}
		if err != nil {
			if errors.Is(err, goredis.ErrClosed) {
				return // the PubSub (or the client) was closed
			}
			var ne net.Error
			if !pinged && errors.As(err, &ne) && ne.Timeout() {
				pinged = true
				ctx, cancel := r.pingCtx()
				if err := ps.Ping(ctx); err != nil {
					r.log.Debug("redis: health ping", "err", err)
				}
				cancel()
				continue
			}
			pinged = false
			if !down {
				down = true
				r.log.Warn("redis: "+r.what+" connection lost; reconnecting (cluster traffic is lost meanwhile, local clients are served)", "err", err)
			}
			// The connection may be gone with its master: the next attempt
			// must see the replica that took over.
			cluster.ReloadState(r.client)
			select {
			case <-r.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		pinged = false
		if down {
			down = false
			backoff = 50 * time.Millisecond
			r.log.Info("redis: " + r.what + " connection restored; subscriptions renewed")
		}
		handle(msg)
	}
}
