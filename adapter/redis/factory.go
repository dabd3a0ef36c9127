package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
)

// Errors of the Redis adapter; callers match them with errors.Is.
var (
	// ErrQueueFull is returned (wrapped) by operations that could not
	// queue their message for Redis because MaxPendingPublishes messages
	// are already waiting (Redis is slow or unreachable). Local delivery
	// has happened; the message is not sent to the other nodes.
	ErrQueueFull = errors.New("redis: publish queue full")
)

// Options configure a Factory. The zero value gives the defaults of
// @socket.io/redis-adapter.
type Options struct {
	// Key prefixes every channel; zero means "socket.io". Nodes of one
	// cluster use the same key; apps sharing a Redis use different keys.
	Key string
	// RequestsTimeout bounds every request to the other nodes
	// (FetchSockets, AllRooms, ServerSideEmit with acks) and the wait for
	// the subscriptions of a new namespace; zero means 5s.
	RequestsTimeout time.Duration
	// PublishOnSpecificResponseChannel makes this node answer a request on
	// the requester's own response channel instead of the shared one (as
	// Node's option of that name; answers to ServerSideEmit always use the
	// shared channel, as on Node).
	PublishOnSpecificResponseChannel bool
	// MaxPendingPublishes bounds the messages queued for Redis; zero means
	// 4096. When the queue is full, operations return ErrQueueFull instead
	// of blocking.
	MaxPendingPublishes int
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Key == "" {
		o.Key = "socket.io"
	}
	if o.RequestsTimeout <= 0 {
		o.RequestsTimeout = 5 * time.Second
	}
	if o.MaxPendingPublishes <= 0 {
		o.MaxPendingPublishes = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Tuning of the subscription connection and the publisher.
const (
	// idleTimeout is how long the subscriber reads without traffic before
	// it pings Redis; pingTimeout is how long it then waits for any reply
	// before it declares the connection dead (go-redis then reconnects and
	// re-subscribes).
	idleTimeout = 15 * time.Second
	pingTimeout = 5 * time.Second
	// maxBackoff bounds the wait between reconnection attempts.
	maxBackoff = 2 * time.Second
	// maxBatch is the most messages published in one pipeline.
	maxBatch = 256
	// eventQueue bounds the serverSideEmit events waiting for their
	// listeners.
	eventQueue = 1024
)

// Factory creates the Redis adapters of one server (one node) and owns
// what they share: one subscription connection, the publish queue and the
// goroutines that serve them. Its Adapter method is the server's
// adapter.Factory:
//
//	f := redis.New(client, redis.Options{})
//	srv := server.New(server.Config{Adapter: f.Adapter})
//	…
//	srv.Close(ctx) // closes the adapters
//	f.Close()
//
// A Factory is safe for concurrent use. Use one per server: the node is
// counted once per subscription connection.
type Factory struct {
	client goredis.UniversalClient
	opts   Options
	log    *slog.Logger
	ps     *goredis.PubSub

	startOnce sync.Once
	started   atomic.Bool

	mu       sync.Mutex
	state    factoryState
	adapters map[*Adapter]struct{}
	patterns map[string][]*Adapter // PSUBSCRIBE pattern → adapters
	channels map[string][]route    // SUBSCRIBE channel → adapters
	waiters  map[string]chan struct{}
	tokenSeq uint64

	// subMu serializes the subscription changes with their reference
	// counts, so that an UNSUBSCRIBE and the SUBSCRIBE of a namespace
	// created again meanwhile reach Redis in the order of their decisions.
	subMu sync.Mutex
	subs  map[string]int // references: "p:"+pattern, "c:"+channel

	// qmu guards sends on queue and events against their closing.
	qmu     sync.RWMutex
	qclosed bool
	queue   chan outMsg
	events  chan func()

	done      chan struct{} // closed by Close: stops retries
	pubDone   chan struct{} // closed when the publisher has flushed and exited
	pubCtx    context.Context
	pubCancel context.CancelFunc
	wg        sync.WaitGroup

	pubFailing atomic.Bool
	dropped    atomic.Int64
}

type factoryState int

const (
	stateOpen    factoryState = iota
	stateClosing              // no new adapters; adapters closing
	stateClosed               // goroutines stopping: nothing new may start
)

type routeKind int

const (
	routeRequest routeKind = iota
	routeResponse
)

type route struct {
	a    *Adapter
	kind routeKind
}

// outMsg is a message waiting to be published.
type outMsg struct {
	channel string
	payload []byte
}

// New returns a Factory using client, which the caller keeps owning (close
// it after the Factory). New does no I/O: the subscription connection is
// opened by the first Adapter call.
func New(client goredis.UniversalClient, opts Options) *Factory {
	opts = opts.withDefaults()
	f := &Factory{
		client:   client,
		opts:     opts,
		log:      opts.Logger,
		adapters: make(map[*Adapter]struct{}),
		patterns: make(map[string][]*Adapter),
		channels: make(map[string][]route),
		subs:     make(map[string]int),
		waiters:  make(map[string]chan struct{}),
		queue:    make(chan outMsg, opts.MaxPendingPublishes),
		events:   make(chan func(), eventQueue),
		done:     make(chan struct{}),
		pubDone:  make(chan struct{}),
	}
	f.pubCtx, f.pubCancel = context.WithCancel(context.Background())
	f.ps = client.Subscribe(context.Background())
	return f
}

var _ adapter.Factory = (*Factory)(nil).Adapter

// Adapter creates the adapter of a namespace: it subscribes to the
// namespace's channels and returns once Redis confirmed the subscriptions,
// or after RequestsTimeout when Redis does not answer (the failure is
// logged and the subscriptions are made by themselves once Redis is back;
// the namespace serves its local sockets meanwhile). It returns an error
// only after Close.
func (f *Factory) Adapter(nsp adapter.Namespace) (adapter.Adapter, error) {
	a := newAdapter(f, nsp)
	if err := f.register(a); err != nil {
		return nil, err
	}
	f.startOnce.Do(f.start)
	ctx, cancel := context.WithTimeout(context.Background(), f.opts.RequestsTimeout)
	defer cancel()
	err := f.bounded(ctx, func(ctx context.Context) error {
		if err := f.changeSubscriptions(ctx, a, +1); err != nil {
			return err // go-redis keeps them and subscribes on its next connection
		}
		return f.sync(ctx)
	})
	if err != nil {
		f.log.Warn("redis: subscriptions of the namespace not confirmed; they will be made once Redis answers",
			"nsp", a.name, "err", err)
	}
	return a, nil
}

// start starts the goroutines of the Factory.
func (f *Factory) start() {
	f.started.Store(true)
	f.wg.Add(3)
	go f.receiveLoop()
	go f.publishLoop()
	go f.eventLoop()
}

// bounded runs fn on a goroutine of its own and waits for it until ctx
// ends: go-redis may hold the subscription connection's lock while it
// dials, which no context interrupts.
func (f *Factory) bounded(ctx context.Context, fn func(context.Context) error) error {
	done := make(chan error, 1)
	if !f.goTracked(func() { done <- fn(ctx) }) {
		return adapter.ErrClosed
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goTracked runs fn on a goroutine that Close waits for; false once Close
// stopped accepting new ones.
func (f *Factory) goTracked(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == stateClosed {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
	return true
}

// register adds the routes of a.
func (f *Factory) register(a *Adapter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != stateOpen {
		return adapter.ErrClosed
	}
	f.adapters[a] = struct{}{}
	f.patterns[a.pattern] = append(f.patterns[a.pattern], a)
	f.channels[a.requestChannel] = append(f.channels[a.requestChannel], route{a, routeRequest})
	f.channels[a.responseChannel] = append(f.channels[a.responseChannel], route{a, routeResponse})
	f.channels[a.privateChannel] = append(f.channels[a.privateChannel], route{a, routeResponse})
	return nil
}

// unregister removes the routes of a; false if they were gone.
func (f *Factory) unregister(a *Adapter) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.adapters[a]; !ok {
		return false
	}
	delete(f.adapters, a)
	if as := without(f.patterns[a.pattern], a); len(as) > 0 {
		f.patterns[a.pattern] = as
	} else {
		delete(f.patterns, a.pattern)
	}
	for _, ch := range []string{a.requestChannel, a.responseChannel, a.privateChannel} {
		rs := f.channels[ch][:0:0]
		for _, r := range f.channels[ch] {
			if r.a != a {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			delete(f.channels, ch)
		} else {
			f.channels[ch] = rs
		}
	}
	return true
}

// release unregisters a closed adapter and drops the subscriptions no
// other adapter uses, on a goroutine that Close waits for (so that closing
// many namespaces does not wait for Redis once per namespace).
func (f *Factory) release(a *Adapter) {
	if !f.unregister(a) {
		return
	}
	f.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), f.opts.RequestsTimeout)
		defer cancel()
		if err := f.changeSubscriptions(ctx, a, -1); err != nil {
			// go-redis forgot them anyway: they are not restored on reconnection.
			f.log.Debug("redis: unsubscribe", "nsp", a.name, "err", err)
		}
	})
}

// changeSubscriptions adds (delta +1) or drops (-1) a's references to its
// channels and subscribes or unsubscribes those whose count went from 0 to
// 1 or from 1 to 0.
func (f *Factory) changeSubscriptions(ctx context.Context, a *Adapter, delta int) error {
	f.subMu.Lock()
	defer f.subMu.Unlock()
	var pats, chans []string
	change := func(key, name string, list *[]string) {
		n := f.subs[key] + delta
		if n == 0 {
			delete(f.subs, key)
		} else {
			f.subs[key] = n
		}
		if delta > 0 && n == 1 || delta < 0 && n == 0 {
			*list = append(*list, name)
		}
	}
	change("p:"+a.pattern, a.pattern, &pats)
	for _, ch := range []string{a.requestChannel, a.responseChannel, a.privateChannel} {
		change("c:"+ch, ch, &chans)
	}
	var errs []error
	if delta > 0 {
		if len(pats) > 0 {
			errs = append(errs, f.ps.PSubscribe(ctx, pats...))
		}
		if len(chans) > 0 {
			errs = append(errs, f.ps.Subscribe(ctx, chans...))
		}
	} else {
		if len(pats) > 0 {
			errs = append(errs, f.ps.PUnsubscribe(ctx, pats...))
		}
		if len(chans) > 0 {
			errs = append(errs, f.ps.Unsubscribe(ctx, chans...))
		}
	}
	return errors.Join(errs...)
}

func without(list []*Adapter, a *Adapter) []*Adapter {
	out := list[:0:0]
	for _, x := range list {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

// sync waits until Redis has processed the commands sent so far on the
// subscription connection: it sends a PING with a unique payload, and Redis
// answers in order.
func (f *Factory) sync(ctx context.Context) error {
	f.mu.Lock()
	f.tokenSeq++
	token := "ioswarm-sync-" + strconv.FormatUint(f.tokenSeq, 10)
	ch := make(chan struct{})
	f.waiters[token] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.waiters, token)
		f.mu.Unlock()
	}()
	if err := f.ps.Ping(ctx, token); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return adapter.ErrClosed
	}
}

// wake releases the subscribe call waiting for a PING payload.
func (f *Factory) wake(token string) {
	f.mu.Lock()
	ch := f.waiters[token]
	delete(f.waiters, token)
	f.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// ---------------------------------------------------------------- receiving

// receiveLoop reads the subscription connection until Close. go-redis
// reconnects and re-subscribes by itself when a read fails; the loop only
// paces the retries, detects silent connections with a PING, and logs the
// state changes.
func (f *Factory) receiveLoop() {
	defer f.wg.Done()
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
			ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
			msg, err = f.ps.ReceiveTimeout(ctx, 0)
			cancel()
		} else {
			msg, err = f.ps.ReceiveTimeout(context.Background(), idleTimeout)
		}
		select {
		case <-f.done:
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
				ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
				if err := f.ps.Ping(ctx); err != nil {
					f.log.Debug("redis: health ping", "err", err)
				}
				cancel()
				continue
			}
			pinged = false
			if !down {
				down = true
				f.log.Warn("redis: subscription connection lost; reconnecting (cluster traffic is lost meanwhile, local clients are served)", "err", err)
			}
			select {
			case <-f.done:
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
			f.log.Info("redis: subscription connection restored; subscriptions renewed")
		}
		switch m := msg.(type) {
		case *goredis.Message:
			f.dispatch(m)
		case *goredis.Pong:
			if m.Payload != "" {
				f.wake(m.Payload)
			}
		}
	}
}

// dispatch hands a message to the adapters subscribed to its channel. A
// panic (in a socket's outgoing listener, say) is logged, not fatal.
func (f *Factory) dispatch(m *goredis.Message) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("redis: panic while handling a message", "channel", m.Channel, "panic", r)
		}
	}()
	f.mu.Lock()
	var (
		as []*Adapter
		rs []route
	)
	if m.Pattern != "" {
		as = f.patterns[m.Pattern]
	} else {
		rs = f.channels[m.Channel]
	}
	f.mu.Unlock()
	for _, a := range as {
		a.onBroadcast(m.Channel, m.Payload)
	}
	for _, r := range rs {
		if r.kind == routeRequest {
			r.a.onRequest(m.Payload)
		} else {
			r.a.onResponse(m.Payload)
		}
	}
}

// eventLoop runs the server-side listeners of serverSideEmit events, in
// arrival order, off the receiving goroutine: a listener that waits (for a
// cluster request of its own, say) does not stop cluster traffic.
func (f *Factory) eventLoop() {
	defer f.wg.Done()
	for fn := range f.events {
		func() {
			defer func() {
				if r := recover(); r != nil {
					f.log.Error("redis: panic in a serverSideEmit listener", "panic", r)
				}
			}()
			fn()
		}()
	}
}

// runEvent queues fn for eventLoop; it drops it (logged) when the queue is
// full.
func (f *Factory) runEvent(fn func()) {
	f.qmu.RLock()
	defer f.qmu.RUnlock()
	if f.qclosed {
		return
	}
	select {
	case f.events <- fn:
	default:
		f.log.Warn("redis: serverSideEmit listeners are too slow; event dropped")
	}
}

// ---------------------------------------------------------------- publishing

// publish queues a message for Redis without blocking.
func (f *Factory) publish(channel string, payload []byte) error {
	f.qmu.RLock()
	defer f.qmu.RUnlock()
	if f.qclosed {
		return adapter.ErrClosed
	}
	select {
	case f.queue <- outMsg{channel, payload}:
		return nil
	default:
		f.noteDropped(1)
		return fmt.Errorf("redis: publish to %s: %w", channel, ErrQueueFull)
	}
}

// publishLoop publishes the queued messages in order, pipelining what
// accumulated while the previous batch was on its way.
func (f *Factory) publishLoop() {
	defer f.wg.Done()
	defer close(f.pubDone)
	batch := make([]outMsg, 0, maxBatch)
	for m := range f.queue {
		batch = append(batch[:0], m)
	fill:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-f.queue:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		f.flush(batch)
		clear(batch)
	}
}

func (f *Factory) flush(batch []outMsg) {
	ctx := f.pubCtx
	var err error
	if len(batch) == 1 {
		err = f.client.Publish(ctx, batch[0].channel, batch[0].payload).Err()
	} else {
		_, err = f.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, m := range batch {
				p.Publish(ctx, m.channel, m.payload)
			}
			return nil
		})
	}
	if err != nil {
		if !f.pubFailing.Swap(true) {
			f.log.Warn("redis: publish failed; messages to other nodes are dropped until Redis answers", "err", err)
		}
		f.noteDropped(len(batch))
		return
	}
	if f.pubFailing.Swap(false) {
		f.log.Info("redis: publishing again", "dropped", f.dropped.Swap(0))
	}
}

func (f *Factory) noteDropped(n int) { f.dropped.Add(int64(n)) }

// ---------------------------------------------------------------- cluster size

// numSub counts the subscribers of a channel: PUBSUB NUMSUB, summed over
// the masters of a Redis Cluster.
func (f *Factory) numSub(ctx context.Context, channel string) (int, error) {
	if cc, ok := f.client.(*goredis.ClusterClient); ok {
		var total atomic.Int64
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			m, err := c.PubSubNumSub(ctx, channel).Result()
			total.Add(m[channel])
			return err
		})
		return int(total.Load()), err
	}
	m, err := f.client.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		return 0, err
	}
	return int(m[channel]), nil
}

// ---------------------------------------------------------------- closing

// Close closes the adapters still open, publishes what is queued (for at
// most RequestsTimeout), closes the subscription connection (which drops
// every subscription) and returns once every goroutine of the Factory has
// ended. It does not close the Redis client. It is idempotent.
func (f *Factory) Close() error {
	f.mu.Lock()
	if f.state != stateOpen {
		f.mu.Unlock()
		return nil
	}
	f.state = stateClosing
	adapters := make([]*Adapter, 0, len(f.adapters))
	for a := range f.adapters {
		adapters = append(adapters, a)
	}
	f.mu.Unlock()
	for _, a := range adapters {
		_ = a.Close()
	}

	f.qmu.Lock()
	f.qclosed = true
	close(f.queue)
	close(f.events)
	f.qmu.Unlock()

	f.mu.Lock()
	f.state = stateClosed
	f.mu.Unlock()

	f.startOnce.Do(func() {}) // an Adapter call racing with Close starts nothing
	if f.started.Load() {
		// Let the publisher flush; a Redis that does not answer is cut off.
		timer := time.NewTimer(f.opts.RequestsTimeout)
		select {
		case <-f.pubDone:
		case <-timer.C:
		}
		timer.Stop()
	}
	f.pubCancel()
	close(f.done)
	err := f.ps.Close()
	f.wg.Wait()
	if err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}
