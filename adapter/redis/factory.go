package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// Options configure a Factory. The zero value gives the defaults of
// @socket.io/redis-adapter.
type Options struct {
	// Key prefixes every channel; zero means "socket.io". Nodes of one
	// cluster use the same key; apps sharing a Redis use different keys.
	Key string
	// RequestsTimeout bounds every request to the other nodes
	// (FetchSockets, AllRooms, ServerSideEmit with acks), the wait for
	// the subscriptions of a new namespace, and every Redis command of
	// the Factory (fully only when the client has ContextTimeoutEnabled:
	// go-redis otherwise ends a read by its ReadTimeout, and checks the
	// deadline of a PUBLISH only between its retries); zero means 5s.
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
	// MaxPendingPublishBytes bounds the same queue in bytes; zero means
	// 32 MiB (eight messages of the default MaxMessageBytes). A broadcast
	// emitted on this node that finds the queue past half of either bound
	// waits (like a slow client, see server.BroadcastOperator.Emit) until
	// the publisher brought it under a quarter.
	MaxPendingPublishBytes int64
	// MaxMessageBytes bounds every message this node publishes; zero means
	// 4 MiB. Redis delivers a message to every subscriber through that
	// subscriber's output buffer, and drops the subscription connection —
	// all the namespaces of a node at once — when the buffer exceeds
	// client-output-buffer-limit (pubsub: 32 MB at once, or 8 MB for 60 s,
	// by default). At 4 MiB a message takes half the soft limit: a node
	// must lag behind by several such messages before Redis considers it.
	// A broadcast or request over the limit fails with ErrMessageTooLarge;
	// an answer over the limit is replaced by a small one that the asker
	// turns into an error matching ErrMessageTooLarge (Node askers see an
	// empty answer).
	MaxMessageBytes int
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Key == "" {
		o.Key = "socket.io"
	}
	cluster.SetDefaults(&o.RequestsTimeout, &o.MaxPendingPublishes, &o.MaxPendingPublishBytes, &o.MaxMessageBytes, &o.Logger)
	return o
}

// Tuning of the subscription connection and the publisher.
const (
	// idleTimeout is how long the subscriber reads without traffic before
	// it pings Redis; pingTimeout is how long it then waits for any reply
	// before it declares the connection dead (go-redis then reconnects and
	// re-subscribes). Together they bound how long a subscription stays on
	// a server that hangs without closing its connections (a stopped
	// Redis Cluster master, whose replica took over): 8 s, at the price of
	// one PING per 5 s of silence.
	idleTimeout = 5 * time.Second
	pingTimeout = 3 * time.Second
	// maxBackoff bounds the wait between reconnection attempts.
	maxBackoff = 2 * time.Second
	// maxBatch is the most messages published in one pipeline.
	maxBatch = 256
)

// Factory creates the Redis adapters of one server (one node) and owns
// what they share: one subscription connection, the publish queue and the
// goroutines that serve them. It is the server's adapter.Factory, and the
// server closes it:
//
//	f := redis.New(client, redis.Options{})
//	srv := server.New(server.Config{Adapter: f})
//	…
//	srv.Close(ctx) // closes the adapters, then f
//
// A Factory is safe for concurrent use. Use one per server: the node is
// counted once per subscription connection. Its locks are described in
// the repository's LOCKING.md.
type Factory struct {
	client goredis.UniversalClient
	opts   Options
	log    *slog.Logger
	ps     *goredis.PubSub

	// bcastPrefix is K#, the start of every broadcast channel;
	// bcastPattern is the one PSUBSCRIBE pattern of the node, K#* with
	// the glob characters of K escaped.
	bcastPrefix  string
	bcastPattern string

	startOnce sync.Once
	started   atomic.Bool

	mu         sync.RWMutex
	state      factoryState
	adapters   map[*Adapter]struct{}
	byName     map[string][]*Adapter // namespace → adapters, for broadcasts
	channels   map[string][]route    // SUBSCRIBE channel → adapters
	maxNameLen int                   // longest namespace name seen (never shrinks)

	subs subscriptions

	// qmu guards sends on queue against its closing.
	qmu     sync.RWMutex
	qclosed bool
	queue   chan outMsg
	pub     pubBudget // bytes in queue, paced senders (pubqueue.go)
	events  *cluster.EventRunner

	// connOpened is closed once subscribeLoop sent its first SUBSCRIBE,
	// which opens the subscription connection on a master (receiveLoop).
	connOpened chan struct{}
	closeStart chan struct{} // closed when Close starts
	done       chan struct{} // closed by Close: stops the goroutines
	pubDone    chan struct{} // closed when the publisher has flushed and exited
	closed     chan struct{} // closed once Close has waited for every goroutine
	closeErr   error         // set before closed is closed
	ioCtx      context.Context
	ioCancel   context.CancelFunc
	ioLimit    atomic.Int64 // once closing: no Redis command runs past this time (UnixNano)
	wg         sync.WaitGroup
	closeOnce  sync.Once

	// ctxTimeouts tells whether the client bounds its commands by their
	// context's deadline (ContextTimeoutEnabled); without it, only batches
	// of PUBLISHes get one (see flush).
	ctxTimeouts bool

	// stalled: the publisher's last write timed out (Redis did not
	// answer). The publisher's own.
	stalled bool

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

// outMsg is a message waiting to be published, or a script to run (the
// recovery commands, recovery.go): script by its hash, or src whole.
type outMsg struct {
	channel string
	payload []byte

	script *goredis.Script
	src    string
	keys   []string
	args   []any
	size   int                 // what a script counts against the queue's byte budget
	reply  func(goredis.Cmder) // called by the publisher with a script's result
}

func (m *outMsg) isPublish() bool { return m.script == nil && m.src == "" }

func (m *outMsg) bytes() int {
	if m.isPublish() {
		return len(m.payload)
	}
	return m.size
}

// queue adds m to a pipeline.
func (m *outMsg) queue(ctx context.Context, p goredis.Pipeliner) goredis.Cmder {
	switch {
	case m.script != nil:
		return p.EvalSha(ctx, m.script.Hash(), m.keys, m.args...)
	case m.src != "":
		return p.Eval(ctx, m.src, m.keys, m.args...)
	}
	cmd := publishCmd(ctx, m.channel, m.payload)
	_ = p.Process(ctx, cmd) // queued: the pipeline reports the result
	return cmd
}

// publishCmd is PUBLISH channel payload, which a ClusterClient sends to the
// master of the channel's slot. go-redis takes PUBLISH for a keyless
// command and sends each to the next master in turn: one node's messages
// on one channel then reached the others through different masters, in
// any order, and after a master died every third one went to it — a
// single PUBLISH is retried on another master (silently: the client's slot
// table is not reloaded), the PUBLISHes of a pipeline are dropped until
// that table is reloaded. By slot, a master's death fails the messages of
// its channels only, with an error that makes the publisher reload the
// table (cluster.ReloadState). On a single Redis the key position is
// ignored.
func publishCmd(ctx context.Context, channel string, payload []byte) *goredis.IntCmd {
	cmd := goredis.NewIntCmd(ctx, "publish", channel, payload)
	cmd.SetFirstKeyPos(1)
	return cmd
}

// fail answers a script nobody will run.
func (m *outMsg) fail(err error) {
	if m.reply != nil {
		c := goredis.NewCmd(context.Background())
		c.SetErr(err)
		m.reply(c)
	}
}

// New returns a Factory using client, which the caller keeps owning (close
// it after the Factory). New does no I/O: the subscription connection is
// opened by the first Adapter call.
func New(client goredis.UniversalClient, opts Options) *Factory {
	opts = opts.withDefaults()
	f := &Factory{
		client:       client,
		opts:         opts,
		log:          opts.Logger,
		bcastPrefix:  opts.Key + "#",
		bcastPattern: escapeGlob(opts.Key+"#") + "*",
		adapters:     make(map[*Adapter]struct{}),
		byName:       make(map[string][]*Adapter),
		channels:     make(map[string][]route),
		queue:        make(chan outMsg, opts.MaxPendingPublishes),
		events:       cluster.NewEventRunner(opts.Logger),
		connOpened:   make(chan struct{}),
		closeStart:   make(chan struct{}),
		done:         make(chan struct{}),
		pubDone:      make(chan struct{}),
		closed:       make(chan struct{}),
	}
	f.subs.init()
	f.ctxTimeouts = contextTimeouts(client)
	f.ioCtx, f.ioCancel = context.WithCancel(context.Background())
	f.ps = client.Subscribe(context.Background())
	return f
}

var _ adapter.Factory = (*Factory)(nil)

// Adapter creates the adapter of a namespace: it subscribes to the
// namespace's channels and returns once Redis confirmed the subscriptions
// (so that the other nodes count this one), or after RequestsTimeout when
// Redis does not answer (the failure is logged and the subscriptions are
// made by themselves once Redis is back; the namespace serves its local
// sockets meanwhile). It returns an error only after Close.
//
// The namespace may be created again after its adapter was closed: the
// new adapter is subscribed and confirmed like the first.
func (f *Factory) Adapter(nsp adapter.Namespace) (adapter.Adapter, error) {
	a := newAdapter(f, nsp)
	if err := f.register(a); err != nil {
		return nil, err
	}
	f.startOnce.Do(f.start)
	gen := f.retain(a)
	ctx, cancel := context.WithTimeout(context.Background(), f.opts.RequestsTimeout)
	defer cancel()
	if err := f.awaitSubscribed(ctx, gen); err != nil {
		f.log.Warn("redis: subscriptions of the namespace not confirmed; they will be made once Redis answers",
			"nsp", a.name, "err", err)
	}
	return a, nil
}

// start starts the goroutines of the Factory. It runs at most once, under
// startOnce, and never after Close passed startOnce (so its wg.Add is
// ordered before Close's wg.Wait).
func (f *Factory) start() {
	f.started.Store(true)
	f.wg.Add(4)
	go f.receiveLoop()
	go f.publishLoop()
	go func() { defer f.wg.Done(); f.events.Loop() }()
	go f.subscribeLoop()
}

// contextTimeouts reports whether client honours the deadlines of its
// commands' contexts (true when it cannot tell).
func contextTimeouts(client goredis.UniversalClient) bool {
	switch c := client.(type) {
	case *goredis.Client:
		return c.Options().ContextTimeoutEnabled
	case *goredis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// ioContext returns the context of one Redis command of the Factory: it
// ends after RequestsTimeout, and no later than the limit Close sets, so
// that a Redis that does not answer holds no goroutine long past Close.
// go-redis sets a context's deadline on the connection, and so honours it
// even while it reads, where it would not notice a cancellation: always on
// the subscription connection, and on the others only with the client's
// ContextTimeoutEnabled (otherwise its ReadTimeout bounds them).
func (f *Factory) ioContext() (context.Context, context.CancelFunc) {
	return context.WithDeadline(f.ioCtx, cluster.Deadline(f.opts.RequestsTimeout, f.ioLimit.Load()))
}

// register adds the routes of a.
func (f *Factory) register(a *Adapter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != stateOpen {
		return adapter.ErrClosed
	}
	f.adapters[a] = struct{}{}
	f.byName[a.name] = append(f.byName[a.name], a)
	f.maxNameLen = max(f.maxNameLen, len(a.name))
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
	if as := without(f.byName[a.name], a); len(as) > 0 {
		f.byName[a.name] = as
	} else {
		delete(f.byName, a.name)
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

// release forgets a closed adapter and drops the subscriptions no other
// adapter uses. It does not wait: the subscription goroutine sends the
// UNSUBSCRIBE (Close waits for it), so closing thousands of namespaces,
// or closing one while Redis does not answer, never blocks.
func (f *Factory) release(a *Adapter) {
	if f.unregister(a) {
		f.drop(a)
	}
}

// without returns list without a, in a new slice: readers may hold the
// old one.
func without(list []*Adapter, a *Adapter) []*Adapter {
	out := list[:0:0]
	for _, x := range list {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

// ---------------------------------------------------------------- receiving

// receiveLoop reads the subscription connection until Close
// (receiver.receive, shared with the sharded adapter's connections).
func (f *Factory) receiveLoop() {
	defer f.wg.Done()
	// The first read must not open the subscription connection: a
	// ClusterClient opens a PubSub's connection on a random node —
	// replicas included — when it has no channel yet, and on the master
	// of its first channel's slot otherwise (when it reconnects too).
	// Subscribers on a replica get the messages but are not counted by
	// PUBSUB NUMSUB on the masters: ServerCount would miss this node, and
	// the others' FetchSockets and ServerSideEmit would not wait for it.
	select {
	case <-f.connOpened:
	case <-f.done:
		return
	}
	r := receiver{client: f.client, ioCtx: f.ioCtx, done: f.done, log: f.log, what: "subscription", pingCtx: f.ioContext}
	r.receive(f.ps, func(msg any) {
		switch m := msg.(type) {
		case *goredis.Message:
			f.dispatch(m)
		case *goredis.Pong:
			f.subs.pong(m.Payload)
		}
	})
}

// dispatch hands a message to the adapters it concerns. A panic (in a
// socket's outgoing listener, say) is logged, not fatal.
func (f *Factory) dispatch(m *goredis.Message) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("redis: panic while handling a message", "channel", m.Channel, "panic", r)
		}
	}()
	if m.Pattern != "" {
		if m.Pattern == f.bcastPattern {
			f.dispatchBroadcast(m.Channel, m.Payload)
		}
		return
	}
	f.mu.RLock()
	rs := f.channels[m.Channel]
	f.mu.RUnlock()
	for _, r := range rs {
		if r.kind == routeRequest {
			r.a.onRequest(m.Payload)
		} else {
			r.a.onResponse(m.Payload)
		}
	}
}

// dispatchBroadcast hands a broadcast, received through the node's one
// pattern, to the adapters of its namespace. The channel is K#N# or
// K#N#room#, and N or the room may contain '#': every N that ends at a
// '#' is looked up (as each Node adapter checks whether the channel starts
// with its own K#N#), so a message for a namespace this node does not
// serve costs a few map lookups and is never decoded.
func (f *Factory) dispatchBroadcast(channel, payload string) {
	rest, ok := strings.CutPrefix(channel, f.bcastPrefix)
	if !ok {
		return
	}
	var buf [4]*Adapter
	targets := buf[:0]
	f.mu.RLock()
	// Namespace names are at most maxNameLen long: a long room name full
	// of '#' costs no more lookups than that.
	for i := 0; i < len(rest) && i <= f.maxNameLen; i++ {
		if rest[i] == '#' {
			targets = append(targets, f.byName[rest[:i]]...)
		}
	}
	f.mu.RUnlock()
	for _, a := range targets {
		a.onBroadcast(channel, payload)
	}
}

// ---------------------------------------------------------------- publishing

// publish queues a message for Redis without blocking. A message over
// MaxMessageBytes is refused with ErrMessageTooLarge.
func (f *Factory) publish(channel string, payload []byte) error {
	if len(payload) > f.opts.MaxMessageBytes {
		return fmt.Errorf("redis: publish to %s: %d bytes > MaxMessageBytes (%d): %w",
			channel, len(payload), f.opts.MaxMessageBytes, cluster.ErrMessageTooLarge)
	}
	if err := f.enqueue(outMsg{channel: channel, payload: payload}); err != nil {
		if errors.Is(err, cluster.ErrQueueFull) {
			f.noteDropped(1)
		}
		return fmt.Errorf("redis: publish to %s: %w", channel, err)
	}
	return nil
}

// command queues a script for the publisher, in order with the messages,
// without waiting; it is dropped (logged) when the queue is full. The
// script is sent whole (EVAL): these are rare, and never fail with NOSCRIPT
// after a Redis restart.
func (f *Factory) command(src string, keys []string, args []any, size int) {
	if err := f.enqueue(outMsg{src: src, keys: keys, args: args, size: size + 64}); err != nil {
		f.noteDropped(1)
		f.log.Warn("redis: recovery session update dropped", "err", err)
	}
}

// runScript queues a script for the publisher, in order with the
// messages; reply gets its result, on the publisher's goroutine, unless
// runScript returns an error (nothing was queued).
func (f *Factory) runScript(script *goredis.Script, keys []string, args []any, size int, reply func(goredis.Cmder)) error {
	return f.enqueue(outMsg{script: script, keys: keys, args: args, size: size + 64, reply: reply})
}

func (f *Factory) enqueue(m outMsg) error {
	f.qmu.RLock()
	defer f.qmu.RUnlock()
	if f.qclosed {
		return adapter.ErrClosed
	}
	n := m.bytes()
	if !f.reserve(n) {
		return fmt.Errorf("%d bytes queued: %w", f.opts.MaxPendingPublishBytes, cluster.ErrQueueFull)
	}
	select {
	case f.queue <- m:
		return nil
	default:
		f.unreserve(n)
		return cluster.ErrQueueFull
	}
}

// ioContextFrom is ioContext for a command a caller waits for with its own
// ctx: it ends with ctx too.
func (f *Factory) ioContextFrom(ctx context.Context) (context.Context, context.CancelFunc) {
	return cluster.IOContext(ctx, f.ioCtx, f.opts.RequestsTimeout, f.ioLimit.Load())
}

// publishLoop publishes the queued messages in order, pipelining what
// accumulated while the previous batch was on its way.
func (f *Factory) publishLoop() {
	defer f.wg.Done()
	defer close(f.pubDone)
	defer f.releasePaced()
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
		n := 0
		for i := range batch {
			n += batch[i].bytes()
		}
		f.unreserve(n)
		clear(batch)
		if f.stalled {
			cluster.PauseAfterStall(f.closeStart)
		}
	}
}

// flush writes a batch. Once a write timed out (Redis did not answer
// within RequestsTimeout, or by ioLimit), the next waits cluster.StallPause, or
// until Close starts; from then on Close drops what is queued instead of
// giving a Redis that does not answer RequestsTimeout again.
func (f *Factory) flush(batch []outMsg) {
	if f.ioCtx.Err() != nil || f.stalled && cluster.Started(f.closeStart) {
		// Close gave up on Redis, or Redis did not answer the last write
		// and Close started: drop what is left instead of waiting
		// RequestsTimeout per batch.
		f.noteDropped(len(batch))
		for i := range batch {
			batch[i].fail(errNotSent)
		}
		return
	}
	ctx := f.ioCtx
	if f.ctxTimeouts || onlyPublishes(batch) {
		// A deadline for PUBLISHes even with a client that does not
		// honour it while it reads: go-redis checks it between its
		// retries, which otherwise go on for tens of seconds against a
		// hung master (each waiting out ReadTimeout, the slot map stale
		// meanwhile), holding up everything queued behind the batch. Not
		// for the scripts of logged broadcasts there: a script that timed
		// out may have run, so its broadcast is not delivered locally
		// (adapter.go), where a refused one would be.
		var cancel context.CancelFunc
		ctx, cancel = f.ioContext()
		defer cancel()
	}
	var err, anyErr error
	if len(batch) == 1 && batch[0].isPublish() {
		cmd := publishCmd(ctx, batch[0].channel, batch[0].payload)
		_ = f.client.Process(ctx, cmd)
		err = cmd.Err()
		anyErr = err
	} else {
		err, anyErr = f.pipeline(ctx, batch)
	}
	f.stalled = cluster.TimedOut(anyErr)
	if err != nil {
		cluster.ReloadState(f.client) // the channel's master may be gone
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

// onlyPublishes reports whether batch holds PUBLISHes only.
func onlyPublishes(batch []outMsg) bool {
	for i := range batch {
		if !batch[i].isPublish() {
			return false
		}
	}
	return true
}

// pipeline sends a batch in one round trip and hands the scripts their
// results; it returns the error of a failed PUBLISH, and the first error of
// any command. A script Redis does not know (it restarted since the script
// was loaded) is run again through Script.Run, which loads it: the scripts
// are written to be safe to run twice.
func (f *Factory) pipeline(ctx context.Context, batch []outMsg) (pubErr, anyErr error) {
	cmds := make([]goredis.Cmder, len(batch))
	_, anyErr = f.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range batch {
			cmds[i] = batch[i].queue(ctx, p)
		}
		return nil
	})
	for i := range batch {
		m := &batch[i]
		if m.isPublish() {
			if err := cmds[i].Err(); err != nil && pubErr == nil {
				pubErr = err
			}
			continue
		}
		if m.script != nil && goredis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			cmds[i] = m.script.Run(ctx, f.client, m.keys, m.args...)
		}
		if m.reply != nil {
			m.reply(cmds[i])
		}
	}
	return pubErr, anyErr
}

func (f *Factory) noteDropped(n int) { f.dropped.Add(int64(n)) }

// ---------------------------------------------------------------- cluster size

// numSub counts the subscribers of a channel: PUBSUB NUMSUB, summed over
// the masters of a Redis Cluster. Pattern subscriptions are not counted,
// which is why every node SUBSCRIBEs the request channel of each of its
// namespaces.
func (f *Factory) numSub(ctx context.Context, channel string) (int, error) {
	return cluster.CountSubscribers(ctx, f.client, channel, false)
}

// ---------------------------------------------------------------- closing

// Close implements adapter.Factory; the server calls it from its own
// Close, after its sockets are gone. It closes the adapters still open,
// closes the subscription connection (which drops every subscription)
// while it publishes what is queued, and waits for every goroutine of the
// Factory. Redis gets RequestsTimeout at most to take what is queued: what
// remains is dropped, all of it once a write timed out. No command runs
// past RequestsTimeout after Close started with the client's
// ContextTimeoutEnabled (its ReadTimeout bounds one otherwise); closing the
// subscription connection may wait for a reconnection in progress (the
// client's DialTimeout and ReadTimeout). When ctx ends before the
// goroutines do, Close returns an error wrapping ctx's; the goroutines end
// by themselves. It does not close the Redis client. It is idempotent:
// later calls wait for the first to finish, until their ctx ends.
func (f *Factory) Close(ctx context.Context) error {
	first := false
	f.closeOnce.Do(func() {
		first = true
		f.startClose()
	})
	if first {
		go f.finishClose()
	}
	select {
	case <-f.closed:
		return f.closeErr
	case <-ctx.Done():
		return fmt.Errorf("redis: close: goroutines still waiting for Redis: %w", ctx.Err())
	}
}

// startClose stops the Factory from taking work: it closes the adapters
// (which never blocks), and the queues.
func (f *Factory) startClose() {
	// No Redis command of the Factory runs past this limit from now on.
	f.ioLimit.Store(time.Now().Add(f.opts.RequestsTimeout).UnixNano())
	close(f.closeStart)
	f.mu.Lock()
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
	f.qmu.Unlock()
	f.events.Close()

	f.mu.Lock()
	f.state = stateClosed
	f.mu.Unlock()
	f.startOnce.Do(func() {}) // an Adapter call racing with Close starts nothing
}

// finishClose closes the subscription connection while the publisher
// flushes (the adapters are closed: what the subscriptions bring has
// nobody to go to), then waits for the goroutines and closes f.closed. It
// runs on a goroutine of its own, so that Close can return at its ctx's
// end.
func (f *Factory) finishClose() {
	close(f.done)
	// go-redis holds the PubSub's lock while it reconnects (a dial, then
	// the handshake: the client's DialTimeout and ReadTimeout, or the
	// deadline of the receiver's command): not after the flush, but
	// meanwhile.
	psErr := make(chan error, 1)
	go func() { psErr <- f.ps.Close() }()
	if f.started.Load() {
		// Let the publisher flush; its commands end by ioLimit, and it
		// drops what is left once one of them timed out.
		timer := time.NewTimer(f.opts.RequestsTimeout)
		select {
		case <-f.pubDone:
		case <-timer.C:
		}
		timer.Stop()
	}
	f.ioCancel()
	err := <-psErr
	f.wg.Wait()
	if err != nil && !errors.Is(err, goredis.ErrClosed) {
		f.closeErr = fmt.Errorf("redis: close: %w", err)
	}
	close(f.closed)
}
