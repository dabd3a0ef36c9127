package redisstreams

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// Errors callers match with errors.Is; the values are those of the Redis
// adapters (redis.ErrQueueFull, redis.ErrMessageTooLarge).
var (
	// ErrQueueFull is returned (wrapped) by operations that could not
	// queue their message for Redis: MaxPendingPublishes messages or
	// MaxPendingPublishBytes bytes are waiting. Local delivery has
	// happened; the other nodes are not reached.
	ErrQueueFull = cluster.ErrQueueFull
	// ErrMessageTooLarge is returned (wrapped) by operations whose
	// message would exceed MaxMessageBytes, and by requests another node
	// could not answer within its own limit.
	ErrMessageTooLarge = cluster.ErrMessageTooLarge
)

// Factory creates the Redis Streams adapters of one server (one node),
// wire-compatible with Node's @socket.io/redis-streams-adapter 0.3: it
// owns the stream readers, the publish queue and the goroutines that
// serve them. The server closes it:
//
//	f := redisstreams.New(client, redisstreams.Options{})
//	srv := server.New(server.Config{Adapter: f})
type Factory struct {
	client goredis.UniversalClient
	opts   Options
	log    *slog.Logger
	queue  *cluster.Queue
	events *cluster.EventRunner

	stalled bool // the last write timed out; the queue goroutine's own

	startOnce sync.Once
	readers   []*reader

	mu      sync.RWMutex
	closing bool
	nsps    map[string]*transport // by namespace name, as Node routes entries

	// ioCtx is the context of the publish queue's commands, cancelled
	// once Close let it drain; readCtx the readers', cancelled when Close
	// starts. Once closing, no command of the Factory runs past ioLimit
	// (UnixNano): RequestsTimeout after Close started.
	ioCtx      context.Context
	ioCancel   context.CancelFunc
	readCtx    context.Context
	readCancel context.CancelFunc
	ioLimit    atomic.Int64
	closeStart chan struct{} // closed when Close starts
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closed     chan struct{}
}

var _ adapter.Factory = (*Factory)(nil)

// New returns a Factory using client (a Client, or a ClusterClient for a
// Redis Cluster), which the caller keeps owning. Redis must be 5.0 or
// later (7.0 with UseShardedPubSub). It does no I/O.
func New(client goredis.UniversalClient, opts Options) *Factory {
	opts = opts.withDefaults()
	f := &Factory{
		client:     client,
		opts:       opts,
		log:        opts.Logger,
		queue:      cluster.NewQueue(opts.MaxPendingPublishes, opts.MaxPendingPublishBytes, opts.Logger),
		events:     cluster.NewEventRunner(opts.Logger),
		nsps:       make(map[string]*transport),
		closed:     make(chan struct{}),
		closeStart: make(chan struct{}),
	}
	f.ioCtx, f.ioCancel = context.WithCancel(context.Background())
	f.readCtx, f.readCancel = context.WithCancel(context.Background())
	for _, s := range opts.streamNames() {
		f.readers = append(f.readers, newReader(f, s))
	}
	return f
}

// Adapter creates the adapter of a namespace. It returns once Redis
// confirmed the namespace's subscriptions (so that the other nodes count
// this one) and the readers know where the streams end (what is added
// from then on reaches this node), or after RequestsTimeout (logged; the
// subscriptions are made and the streams read once Redis answers).
func (f *Factory) Adapter(nsp adapter.Namespace) (adapter.Adapter, error) {
	var ropts *adapter.RecoveryOptions
	if rn, ok := nsp.(adapter.RecoveryNamespace); ok {
		ropts = rn.Recovery()
	}
	t := newTransport(f, nsp, ropts != nil)
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return nil, adapter.ErrClosed
	}
	f.nsps[t.name] = t
	f.mu.Unlock()
	f.startOnce.Do(f.start)
	ctx, cancel := context.WithTimeout(f.ioCtx, f.opts.RequestsTimeout)
	defer cancel()
	for _, r := range f.readers {
		select {
		case <-r.ready:
		case <-ctx.Done():
			f.log.Warn("redisstreams: the end of the stream is not known yet; it will be read once Redis answers",
				"stream", r.stream, "err", ctx.Err())
		}
	}
	if err := t.subscribe(ctx); err != nil {
		f.log.Warn("redisstreams: subscriptions of the namespace not confirmed; they will be made once Redis answers",
			"nsp", t.name, "err", err)
	}
	if ropts != nil {
		return &recoverer{Adapter: t.a, t: t, opts: *ropts}, nil
	}
	return t.a, nil
}

func (f *Factory) start() {
	f.wg.Add(2 + len(f.readers))
	go func() { defer f.wg.Done(); f.queue.Run(f.ioCtx, f.opts.RequestsTimeout, f.write) }()
	go func() { defer f.wg.Done(); f.events.Loop() }()
	for _, r := range f.readers {
		go r.loop()
	}
}

// release forgets the transport of a closed adapter.
func (f *Factory) release(t *transport) {
	f.mu.Lock()
	if f.nsps[t.name] == t {
		delete(f.nsps, t.name)
	}
	f.mu.Unlock()
}

// ---------------------------------------------------------------- receiving

// dispatch hands a stream entry to the adapter of its namespace (Node
// skips entries without one). A panic (in a socket's listener, say) is
// logged, not fatal.
func (f *Factory) dispatch(e goredis.XMessage) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("redisstreams: panic while handling an entry", "id", e.ID, "panic", r)
		}
	}()
	nsp, _ := e.Values["nsp"].(string)
	if nsp == "" {
		return
	}
	f.mu.RLock()
	t := f.nsps[nsp]
	f.mu.RUnlock()
	if t == nil {
		return
	}
	m, err := decodeEntry(e.Values)
	if err != nil {
		f.log.Debug("redisstreams: malformed entry ignored", "id", e.ID, "err", err)
		return
	}
	m.Offset = e.ID
	cluster.ReceiveMessage(t.a, m, false)
}

// decodeEntry decodes the fields of an entry: uid, nsp, type (decimal),
// data (JSON, or base64 msgpack when it does not start with '{').
func decodeEntry(v map[string]any) (*cluster.Message, error) {
	str := func(k string) string { s, _ := v[k].(string); return s }
	typ, err := strconv.Atoi(str("type"))
	if err != nil {
		return nil, fmt.Errorf("redisstreams: entry type: %w", err)
	}
	data := str("data")
	if data == "" || strings.HasPrefix(data, "{") {
		return cluster.DecodeParts(typ, str("uid"), str("nsp"), []byte(data), false)
	}
	mp, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("redisstreams: entry data: %w", err)
	}
	return cluster.DecodeParts(typ, str("uid"), str("nsp"), mp, true)
}

// ---------------------------------------------------------------- writing

// The commands of the queue's items.
const (
	kindXAdd = iota
	kindPublish
	kindSPublish
	kindSet // SET <key> <payload> PX <Fields[0]>
)

// send queues an item; one over MaxMessageBytes is refused.
func (f *Factory) send(it cluster.QueueItem) error {
	if n := len(it.Payload); n > f.opts.MaxMessageBytes {
		return fmt.Errorf("redisstreams: to %s: %d bytes > MaxMessageBytes (%d): %w",
			it.Key, n, f.opts.MaxMessageBytes, ErrMessageTooLarge)
	}
	return f.queue.Send(it)
}

// ioContext returns the context of a Redis command made for a caller
// with its own ctx: it ends with ctx, after RequestsTimeout, no later than
// ioLimit once closing, and when Close gives up on Redis (ioCtx). go-redis
// honours its deadline with the client's ContextTimeoutEnabled (otherwise
// the client's ReadTimeout bounds the command).
func (f *Factory) ioContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(ctx, f.limit(time.Now().Add(f.opts.RequestsTimeout)))
	stop := context.AfterFunc(f.ioCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// limit returns deadline, or ioLimit when closing and it is sooner.
func (f *Factory) limit(deadline time.Time) time.Time {
	if limit := f.ioLimit.Load(); limit != 0 && limit < deadline.UnixNano() {
		return time.Unix(0, limit)
	}
	return deadline
}

// write sends a batch of the queue in one pipeline (a ClusterClient
// splits it by the masters of the keys' slots): XADD <stream> MAXLEN ~
// <MaxLen> * uid … nsp … type … data …, PUBLISH or SPUBLISH. The queue
// bounds it by RequestsTimeout; once closing, it ends by ioLimit too.
func (f *Factory) write(ctx context.Context, batch []cluster.QueueItem) error {
	if f.stalled && cluster.Started(f.closeStart) {
		for i := range batch {
			if done := batch[i].Done; done != nil {
				done("", errNotWritten)
			}
		}
		return errNotWritten
	}
	err := f.pipeline(ctx, batch)
	if f.stalled = cluster.TimedOut(err); f.stalled {
		cluster.PauseAfterStall(f.closeStart)
	}
	return err
}

// errNotWritten fails what is queued when Close finds Redis not answering.
var errNotWritten = fmt.Errorf("redisstreams: not written: Redis did not answer in time and the Factory is closing: %w", adapter.ErrClosed)

// pipeline writes a batch; once closing, it ends by ioLimit.
func (f *Factory) pipeline(ctx context.Context, batch []cluster.QueueItem) error {
	if limit := f.ioLimit.Load(); limit != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, limit))
		defer cancel()
	}
	cmds, err := f.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range batch {
			it := &batch[i]
			switch it.Kind {
			case kindXAdd:
				p.XAdd(ctx, &goredis.XAddArgs{
					Stream: it.Key, MaxLen: f.opts.MaxLen, Approx: true, ID: "*",
					Values: []any{"uid", it.Fields[0], "nsp", it.Fields[1], "type", it.Fields[2], "data", it.Payload},
				})
			case kindPublish:
				p.Publish(ctx, it.Key, it.Payload)
			case kindSPublish:
				p.SPublish(ctx, it.Key, it.Payload)
			case kindSet:
				px, _ := strconv.ParseInt(it.Fields[0], 10, 64)
				p.Set(ctx, it.Key, it.Payload, time.Duration(px)*time.Millisecond)
			}
		}
		return nil
	})
	for i := range batch {
		if done := batch[i].Done; done != nil {
			switch {
			case i < len(cmds):
				c, _ := cmds[i].(*goredis.StringCmd)
				if c != nil {
					done(c.Val(), c.Err())
				} else {
					done("", cmds[i].Err())
				}
			default:
				done("", err)
			}
		}
	}
	return cluster.PipelineErr(cmds, err)
}

// ---------------------------------------------------------------- closing

// Close implements adapter.Factory: it closes the adapters still open,
// stops the readers (CLIENT UNBLOCK), writes what is queued and waits for
// the goroutines. Redis gets RequestsTimeout at most to take what is
// queued (what remains is dropped); when it does not answer, every
// command in flight ends by its deadline — RequestsTimeout after Close
// started, or BlockTime + 1 s after a blocked XREAD started — with the
// client's ContextTimeoutEnabled (otherwise by the client's own bounds:
// ReadTimeout, BlockTime + 10 s for an XREAD), or at once when the client
// is closed. When ctx ends first, Close returns an error wrapping ctx's
// and the goroutines end by themselves. It does not close the Redis
// client. It is idempotent.
func (f *Factory) Close(ctx context.Context) error {
	f.closeOnce.Do(func() {
		// No command of the Factory runs past this limit from now on.
		f.ioLimit.Store(time.Now().Add(f.opts.RequestsTimeout).UnixNano())
		close(f.closeStart)
		f.mu.Lock()
		f.closing = true
		as := make([]*cluster.Adapter, 0, len(f.nsps))
		for _, t := range f.nsps {
			as = append(as, t.a)
		}
		f.mu.Unlock()
		cluster.CloseAdapters(as, f.queue, f.events)
		go f.finishClose()
	})
	return cluster.WaitClosed(ctx, f.closed)
}

// finishClose stops the readers while the queue drains (the adapters are
// closed: what the streams bring has nobody to go to), then waits for the
// goroutines and closes f.closed. It runs on a goroutine of its own, so
// that Close can return at its ctx's end.
func (f *Factory) finishClose() {
	f.readCancel()
	// Passing startOnce orders start's wg.Add before the Wait below: start
	// has returned, or will never run.
	ran := true
	f.startOnce.Do(func() { ran = false })
	var stops sync.WaitGroup
	stops.Add(len(f.readers))
	for _, r := range f.readers {
		go func() {
			defer stops.Done()
			r.stop(ran)
		}()
	}
	if ran {
		f.queue.Drain(f.opts.RequestsTimeout)
	}
	f.ioCancel()
	stops.Wait()
	f.wg.Wait()
	close(f.closed)
}
