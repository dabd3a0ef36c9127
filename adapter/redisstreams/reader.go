package redisstreams

import (
	"context"
	"errors"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// A reader reads one stream with XREAD BLOCK <BlockTime> COUNT
// <ReadCount>, from where the stream ended when it started (Node reads
// from "$"), and remembers the id of the last entry it handed on: after a
// failure — Redis restarted, a failover — it goes on from that id, so
// nothing that reached the stream is lost (unless MAXLEN trimmed it).
//
// It reads on a connection of its own, whose CLIENT ID it keeps, so that
// Close ends a blocked XREAD at once with CLIENT UNBLOCK instead of
// waiting up to BlockTime. A Redis that does not answer cannot be asked
// to unblock it: every command of the reader has a deadline (an XREAD's
// is BlockTime + readGrace, the others' connectTimeout), which go-redis
// honours with the client's ContextTimeoutEnabled (otherwise its own
// bound applies: BlockTime + 10 s for an XREAD, ReadTimeout for the
// others); closing the client ends them at once.
type reader struct {
	f      *Factory
	stream string
	ready  chan struct{} // closed once the start offset is known
	exited chan struct{} // closed when loop returns

	offset string // the loop's own

	mu   sync.Mutex // guards node, conn and id, which stop reads
	node *goredis.Client
	conn *goredis.Conn
	id   int64
}

// maxBackoff bounds the wait between two attempts after a failure.
const maxBackoff = 2 * time.Second

// readGrace is what an XREAD gets past its BlockTime for Redis's answer to
// arrive: a Redis that does not answer by then is taken as gone (the
// reader connects again and goes on from its offset, losing nothing), and
// so a reader ends at most BlockTime + readGrace after Close.
const readGrace = time.Second

// unblockTimeout bounds one CLIENT UNBLOCK of stop.
const unblockTimeout = time.Second

// connectTimeout bounds the other commands of the reader (the end of the
// stream, a new connection and its CLIENT ID): 2 s, or RequestsTimeout
// when shorter. A reader that keeps failing (Redis does not answer) is
// then never far from its next attempt, nor from its end after Close.
func (r *reader) connectTimeout() time.Duration {
	return min(r.f.opts.RequestsTimeout, 2*time.Second)
}

func newReader(f *Factory, stream string) *reader {
	return &reader{f: f, stream: stream, ready: make(chan struct{}), exited: make(chan struct{})}
}

func (r *reader) loop() {
	defer r.f.wg.Done()
	defer close(r.exited)
	defer r.closeConn()
	ctx := r.f.readCtx
	backoff, failing := 50*time.Millisecond, false
	for ctx.Err() == nil {
		err := r.read(ctx)
		if err == nil {
			if failing {
				failing = false
				r.f.log.Info("redisstreams: reading the stream again", "stream", r.stream, "from", r.offset)
			}
			backoff = 50 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			failing = true
			r.f.log.Warn("redisstreams: reading the stream failed; retrying", "stream", r.stream, "err", err)
		}
		r.closeConn()
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		backoff = min(2*backoff, maxBackoff)
	}
}

// read reads one batch and hands its entries on.
func (r *reader) read(ctx context.Context) error {
	if r.offset == "" {
		// On the shared client: go-redis settles its connection options
		// on the first connection, which must not race with the
		// reader's own (Factory.Adapter subscribes once ready).
		cctx, cancel := context.WithTimeout(ctx, r.connectTimeout())
		last, err := r.f.client.XRevRangeN(cctx, r.stream, "+", "-", 1).Result()
		cancel()
		if err != nil {
			return err
		}
		r.offset = "0-0"
		if len(last) > 0 {
			r.offset = last[0].ID
		}
		close(r.ready)
	}
	c, err := r.connection(ctx)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err() // stopped while connecting: do not block again
	}
	ctx, cancel := context.WithTimeout(ctx, r.f.opts.BlockTime+readGrace)
	defer cancel()
	res, err := c.XRead(ctx, &goredis.XReadArgs{
		Streams: []string{r.stream, r.offset},
		Count:   r.f.opts.ReadCount,
		Block:   r.f.opts.BlockTime,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil // nothing new, or unblocked
	}
	if err != nil {
		return err
	}
	for _, s := range res {
		for _, e := range s.Messages {
			r.f.dispatch(e)
			r.offset = e.ID
		}
	}
	return nil
}

// connection returns the reader's connection, opening it on the master
// of the stream's slot (on a Redis Cluster) when there is none. A client
// of another kind is read directly, without CLIENT UNBLOCK.
func (r *reader) connection(ctx context.Context) (goredis.Cmdable, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		return r.conn, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.connectTimeout())
	defer cancel()
	var node *goredis.Client
	switch c := r.f.client.(type) {
	case *goredis.Client:
		node = c
	case *goredis.ClusterClient:
		n, err := c.MasterForKey(ctx, r.stream)
		if err != nil {
			return nil, err
		}
		node = n
	default:
		return r.f.client, nil
	}
	conn := node.Conn()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	r.node, r.conn, r.id = node, conn, id
	return conn, nil
}

func (r *reader) closeConn() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		_ = r.conn.Close()
		r.node, r.conn, r.id = nil, nil, 0
	}
}

// stop ends a blocked XREAD (the reader's context is cancelled): CLIENT
// UNBLOCK, repeated until the loop is seen to end, since the loop may be
// just about to block again, but only while Redis answers: a Redis that
// does not is not asked again, and the XREAD ends by its deadline
// (BlockTime + readGrace), or at once when the client is closed. stop
// gives up after that long, or when the loop ends; the loop never ran
// when ran is false.
func (r *reader) stop(ran bool) {
	if !ran {
		return
	}
	limit := time.Now().Add(r.f.opts.BlockTime + readGrace)
	give := time.NewTimer(time.Until(limit))
	defer give.Stop()
	answers := true
	for answers {
		r.mu.Lock()
		node, id := r.node, r.id
		r.mu.Unlock()
		if node != nil {
			deadline := time.Now().Add(unblockTimeout)
			if deadline.After(limit) {
				deadline = limit
			}
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			answers = node.ClientUnblock(ctx, id).Err() == nil
			cancel()
		}
		select {
		case <-r.exited:
			return
		case <-give.C:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-r.exited:
	case <-give.C:
	}
}
