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
// waiting up to BlockTime.
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

func newReader(f *Factory, stream string) *reader {
	return &reader{f: f, stream: stream, ready: make(chan struct{}), exited: make(chan struct{})}
}

func (r *reader) loop() {
	defer r.f.wg.Done()
	defer close(r.exited)
	defer r.closeConn()
	ctx := r.f.ioCtx
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
		last, err := r.f.client.XRevRangeN(ctx, r.stream, "+", "-", 1).Result()
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

// stop ends a blocked XREAD (the factory's ioCtx is already cancelled):
// CLIENT UNBLOCK, repeated until the loop is seen to end, since the loop
// may be just about to block again. It gives up after BlockTime, when
// the XREAD ends by itself.
func (r *reader) stop() {
	deadline := time.Now().Add(r.f.opts.BlockTime)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		node, id := r.node, r.id
		r.mu.Unlock()
		if node == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = node.ClientUnblock(ctx, id).Err()
		cancel()
		select {
		case <-r.exited:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
