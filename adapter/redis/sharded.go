package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// SubscriptionMode says which shard channels the nodes of a sharded
// cluster subscribe to (Node's subscriptionMode); every node of a cluster
// uses the same.
type SubscriptionMode string

const (
	// SubscriptionStatic: one channel per namespace (and one per node for
	// the answers); every broadcast reaches every node.
	SubscriptionStatic SubscriptionMode = "static"
	// SubscriptionDynamic (the default): a channel per public room as
	// well, which a node subscribes to while it has the room; a broadcast
	// to one room reaches only the nodes that have it.
	SubscriptionDynamic SubscriptionMode = "dynamic"
	// SubscriptionDynamicPrivate: as dynamic, for socket-id rooms too.
	SubscriptionDynamicPrivate SubscriptionMode = "dynamic-private"
)

// ErrBadSubscriptionMode is returned by ShardedFactory.Adapter when
// ShardedOptions.SubscriptionMode is none of the known modes.
var ErrBadSubscriptionMode = errors.New("redis: unknown sharded subscription mode")

// ShardedOptions configure a ShardedFactory. The zero value gives the
// defaults of Node's createShardedAdapter.
type ShardedOptions struct {
	// Key prefixes every channel (Node's channelPrefix); zero means
	// "socket.io".
	Key string
	// SubscriptionMode: static, dynamic or dynamic-private; zero means
	// dynamic.
	SubscriptionMode SubscriptionMode
	// RequestsTimeout bounds FetchSockets (unless the operation carries
	// a timeout of its own, as Node's io.timeout(ms).fetchSockets()),
	// ServerSideEmit with acks, the wait for the subscriptions of a new
	// namespace and every Redis command; zero means 5s, Node's fixed
	// value.
	RequestsTimeout time.Duration
	// MaxPendingPublishes bounds the messages queued for Redis; zero
	// means 4096. When the queue is full, operations return ErrQueueFull.
	MaxPendingPublishes int
	// MaxPendingPublishBytes bounds the same queue in bytes; zero means
	// 32 MiB. A broadcast emitted on this node that finds the queue past
	// half of either bound waits until the publisher brought it under a
	// quarter (as with Options.MaxPendingPublishBytes).
	MaxPendingPublishBytes int64
	// MaxMessageBytes bounds every message this node publishes; zero
	// means 4 MiB (see Options.MaxMessageBytes).
	MaxMessageBytes int
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (o ShardedOptions) withDefaults() ShardedOptions {
	if o.Key == "" {
		o.Key = "socket.io"
	}
	if o.SubscriptionMode == "" {
		o.SubscriptionMode = SubscriptionDynamic
	}
	cluster.SetDefaults(&o.RequestsTimeout, &o.MaxPendingPublishes, &o.MaxPendingPublishBytes, &o.MaxMessageBytes, &o.Logger)
	return o
}

func (o ShardedOptions) dynamic() bool {
	return o.SubscriptionMode == SubscriptionDynamic || o.SubscriptionMode == SubscriptionDynamicPrivate
}

// ShardedFactory creates the sharded Redis adapters of one server (one
// node), wire-compatible with Node's createShardedAdapter: it owns the
// subscription connections (sharded_subs.go), the publish queue and the
// goroutines that serve them. The server closes it:
//
//	f := redis.NewSharded(client, redis.ShardedOptions{})
//	srv := server.New(server.Config{Adapter: f})
//
// Its locks are described in the repository's LOCKING.md.
type ShardedFactory struct {
	client  goredis.UniversalClient
	opts    ShardedOptions
	log     *slog.Logger
	cluster *goredis.ClusterClient // nil unless client is one

	startOnce sync.Once

	mu       sync.RWMutex
	state    factoryState
	adapters map[*shardedTransport]struct{}
	routes   map[string][]shardedRoute // channel → adapters

	subs shardSubs

	queue  *cluster.Queue
	events *cluster.EventRunner

	stalled bool // the last write timed out; the queue goroutine's own

	// ioCtx is the context of every Redis command, cancelled once Close
	// let the queue drain. Once closing, no command runs past ioLimit
	// (UnixNano): RequestsTimeout after Close started.
	closeStart chan struct{} // closed when Close starts
	done       chan struct{} // closed by Close: stops the subscriptions
	closed     chan struct{}
	closeOnce  sync.Once
	ioCtx      context.Context
	ioCancel   context.CancelFunc
	ioLimit    atomic.Int64
	wg         sync.WaitGroup
}

// shardedRoute sends the messages of a channel to an adapter; response
// marks its own answers channel.
type shardedRoute struct {
	t        *shardedTransport
	response bool
}

// NewSharded returns a ShardedFactory using client (a Client, or a
// ClusterClient for a Redis Cluster), which the caller keeps owning.
// Redis must be 7.0 or later. It does no I/O.
func NewSharded(client goredis.UniversalClient, opts ShardedOptions) *ShardedFactory {
	opts = opts.withDefaults()
	f := &ShardedFactory{
		client:   client,
		opts:     opts,
		log:      opts.Logger,
		adapters: make(map[*shardedTransport]struct{}),
		routes:   make(map[string][]shardedRoute),
		queue:    cluster.NewQueue(opts.MaxPendingPublishes, opts.MaxPendingPublishBytes, opts.Logger),
		events:   cluster.NewEventRunner(opts.Logger),

		closeStart: make(chan struct{}),
		done:       make(chan struct{}),
		closed:     make(chan struct{}),
	}
	f.cluster, _ = client.(*goredis.ClusterClient)
	f.subs.init(f)
	f.ioCtx, f.ioCancel = context.WithCancel(context.Background())
	return f
}

var _ adapter.Factory = (*ShardedFactory)(nil)

// Adapter creates the adapter of a namespace: it subscribes to the
// namespace's channel and to the node's answers channel, and returns once
// Redis confirmed both (so that the others count this node), or after
// RequestsTimeout (logged; the subscriptions are made once Redis
// answers).
func (f *ShardedFactory) Adapter(nsp adapter.Namespace) (adapter.Adapter, error) {
	switch f.opts.SubscriptionMode {
	case SubscriptionStatic, SubscriptionDynamic, SubscriptionDynamicPrivate:
	default:
		return nil, fmt.Errorf("%w: %q", ErrBadSubscriptionMode, f.opts.SubscriptionMode)
	}
	t := newShardedAdapter(f, nsp)
	f.mu.Lock()
	if f.state != stateOpen {
		f.mu.Unlock()
		return nil, adapter.ErrClosed
	}
	f.adapters[t] = struct{}{}
	f.addRouteLocked(t.channel, shardedRoute{t: t})
	f.addRouteLocked(t.responseChannel, shardedRoute{t: t, response: true})
	f.mu.Unlock()
	f.startOnce.Do(f.start)
	chans := []string{t.channel, t.responseChannel}
	f.subs.change(chans, +1)
	ctx, cancel := context.WithTimeout(context.Background(), f.opts.RequestsTimeout)
	defer cancel()
	if err := f.subs.await(ctx, chans); err != nil {
		f.log.Warn("redis: shard subscriptions of the namespace not confirmed; they will be made once Redis answers",
			"nsp", t.name, "err", err)
	}
	return t.a, nil
}

func (f *ShardedFactory) start() {
	f.wg.Add(3)
	go func() { defer f.wg.Done(); f.queue.Run(f.ioCtx, f.opts.RequestsTimeout, f.write) }()
	go func() { defer f.wg.Done(); f.events.Loop() }()
	go f.subs.loop()
}

func (f *ShardedFactory) addRouteLocked(ch string, r shardedRoute) {
	f.routes[ch] = append(f.routes[ch], r)
}

// route adds or removes the route of a's room channel ch.
func (f *ShardedFactory) route(t *shardedTransport, ch string, add bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add {
		f.addRouteLocked(ch, shardedRoute{t: t})
		return
	}
	f.removeRouteLocked(ch, t)
}

func (f *ShardedFactory) removeRouteLocked(ch string, t *shardedTransport) {
	rs := f.routes[ch][:0:0] // a new slice: dispatch may hold the old one
	for _, r := range f.routes[ch] {
		if r.t != t {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		delete(f.routes, ch)
	} else {
		f.routes[ch] = rs
	}
}

// release forgets a closed adapter and drops its base subscriptions.
func (f *ShardedFactory) release(t *shardedTransport) {
	f.mu.Lock()
	if _, ok := f.adapters[t]; !ok {
		f.mu.Unlock()
		return
	}
	delete(f.adapters, t)
	f.removeRouteLocked(t.channel, t)
	f.removeRouteLocked(t.responseChannel, t)
	f.mu.Unlock()
	f.subs.change([]string{t.channel, t.responseChannel}, -1)
}

// dispatch hands a message to the adapters of its channel. A panic (in a
// socket's listener, say) is logged, not fatal.
func (f *ShardedFactory) dispatch(channel, payload string) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("redis: panic while handling a message", "channel", channel, "panic", r)
		}
	}()
	f.mu.RLock()
	rs := f.routes[channel]
	f.mu.RUnlock()
	for _, r := range rs {
		cluster.Receive(r.t.a, []byte(payload), r.response)
	}
}

// ---------------------------------------------------------------- publishing

// publish queues an SPUBLISH without blocking; a message over
// MaxMessageBytes is refused with ErrMessageTooLarge, one that finds the
// queue full with ErrQueueFull.
func (f *ShardedFactory) publish(channel string, payload []byte) error {
	if len(payload) > f.opts.MaxMessageBytes {
		return fmt.Errorf("redis: spublish to %s: %d bytes > MaxMessageBytes (%d): %w",
			channel, len(payload), f.opts.MaxMessageBytes, cluster.ErrMessageTooLarge)
	}
	return f.queue.Send(cluster.QueueItem{Key: channel, Payload: payload})
}

// congestion returns the channel a paced sender (a broadcast emitted on
// this node) waits on, or nil while the queue is under half of its bounds.
func (f *ShardedFactory) congestion() <-chan struct{} { return f.queue.Congestion() }

// ioContext returns the context of a Redis command made for a caller
// with its own ctx: it ends with ctx, after RequestsTimeout, no later than
// ioLimit once closing, and when Close gives up on Redis (ioCtx). go-redis
// honours its deadline on a subscription connection, and on the others
// with the client's ContextTimeoutEnabled (otherwise the client's
// ReadTimeout bounds the command).
func (f *ShardedFactory) ioContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return cluster.IOContext(ctx, f.ioCtx, f.opts.RequestsTimeout, f.ioLimit.Load())
}

// errNotWritten fails what is queued when Close finds Redis not answering.
var errNotWritten = fmt.Errorf("redis: not written: Redis did not answer in time and the Factory is closing: %w", adapter.ErrClosed)

// write publishes a batch of the queue, pipelined (a ClusterClient splits
// a pipeline by the masters of the channels' slots). The queue bounds it
// by RequestsTimeout; once closing, it ends by ioLimit too. Once a write
// timed out, the next waits cluster.StallPause, or until Close starts; from then
// on what is queued is dropped: Close does not give a Redis that does not
// answer RequestsTimeout again.
func (f *ShardedFactory) write(ctx context.Context, batch []cluster.QueueItem) error {
	if f.stalled && cluster.Started(f.closeStart) {
		return errNotWritten
	}
	if limit := f.ioLimit.Load(); limit != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, limit))
		defer cancel()
	}
	var err error
	if len(batch) == 1 {
		err = f.client.SPublish(ctx, batch[0].Key, batch[0].Payload).Err()
	} else {
		cmds, perr := f.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := range batch {
				p.SPublish(ctx, batch[i].Key, batch[i].Payload)
			}
			return nil
		})
		err = cluster.PipelineErr(cmds, perr)
	}
	if err != nil {
		cluster.ReloadState(f.client) // the channel's master may be gone
	}
	if f.stalled = cluster.TimedOut(err); f.stalled {
		cluster.PauseAfterStall(f.closeStart)
	}
	return err
}

// ---------------------------------------------------------------- cluster size

// shardNumSub counts the subscribers of a shard channel: PUBSUB
// SHARDNUMSUB, summed over the masters of a Redis Cluster (as Node does).
func (f *ShardedFactory) shardNumSub(ctx context.Context, channel string) (int, error) {
	return cluster.CountSubscribers(ctx, f.client, channel, true)
}

// ---------------------------------------------------------------- closing

// Close implements adapter.Factory: it closes the adapters still open,
// closes the subscription connections while it publishes what is queued,
// and waits for the goroutines, until ctx ends (then it returns an error
// wrapping ctx's and they end by themselves). Redis gets RequestsTimeout
// at most to take what is queued (what remains is dropped, all of it once
// a write timed out): every command ends by RequestsTimeout after Close
// started, with the client's ContextTimeoutEnabled (otherwise by its
// ReadTimeout). It does not close the Redis client. It is idempotent.
func (f *ShardedFactory) Close(ctx context.Context) error {
	first := false
	f.closeOnce.Do(func() {
		first = true
		// No Redis command of the Factory runs past this limit from now on.
		f.ioLimit.Store(time.Now().Add(f.opts.RequestsTimeout).UnixNano())
		close(f.closeStart)
		f.mu.Lock()
		f.state = stateClosing
		as := make([]*cluster.Adapter, 0, len(f.adapters))
		for t := range f.adapters {
			as = append(as, t.a)
		}
		f.mu.Unlock()
		cluster.CloseAdapters(as, f.queue, f.events)
		f.mu.Lock()
		f.state = stateClosed
		f.mu.Unlock()
	})
	if first {
		go f.finishClose()
	}
	return cluster.WaitClosed(ctx, f.closed)
}

// finishClose stops the subscriptions while the queue drains (the
// adapters are closed: what they bring has nobody to go to), then waits
// for the goroutines and closes f.closed. It runs on a goroutine of its
// own, so that Close can return at its ctx's end.
func (f *ShardedFactory) finishClose() {
	close(f.done) // the subscription loop closes the connections on its way out
	cluster.StopIO(&f.startOnce, f.queue, f.opts.RequestsTimeout, f.ioCancel)
	f.wg.Wait()
	close(f.closed)
}
