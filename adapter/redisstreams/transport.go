package redisstreams

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// Adapter is the Redis Streams adapter of one namespace, Node's
// RedisStreamsAdapter: socket.io-adapter's ClusterAdapter (shared with
// the sharded Redis adapter) whose lasting messages go through a Redis
// stream and short-lived ones through pub/sub. Create it with
// Factory.Adapter. It is safe for concurrent use.
type Adapter = cluster.Adapter

// transport carries the messages of one namespace's adapter
// (cluster.Transport), as Node's adapter does since 0.3.0:
//   - to the stream (XADD), what every node must apply in order and what
//     a recovering client may need: BROADCAST without acks, SOCKETS_JOIN,
//     SOCKETS_LEAVE, DISCONNECT_SOCKETS;
//   - on pub/sub, whole messages in msgpack, what only matters now:
//     BROADCAST with acks, SERVER_SIDE_EMIT and FETCH_SOCKETS on the
//     namespace's channel <prefix>#<nsp>#, every answer on the requester's
//     <prefix>#<nsp>#<uid>#.
type transport struct {
	f       *Factory
	a       *cluster.Adapter
	name    string
	stream  string
	public  string
	private string

	mu     sync.Mutex // guards subs and closed
	subs   []*goredis.PubSub
	closed bool
}

func newTransport(f *Factory, nsp adapter.Namespace, offsets bool) *transport {
	t := &transport{f: f, name: nsp.Name()}
	t.a = cluster.New(nsp, cluster.Config{
		Offsets:         offsets,
		Events:          f.events,
		Log:             f.log,
		RequestsTimeout: f.opts.RequestsTimeout,
		MaxMessageBytes: f.opts.MaxMessageBytes,
		Closed:          t.close,
	})
	cluster.SetTransport(t.a, t)
	t.stream = f.opts.streamName(t.name)
	t.public = f.opts.ChannelPrefix + "#" + t.name + "#"
	t.private = t.public + t.a.UID() + "#"
	return t
}

// ephemeral reports whether a message goes on pub/sub (Node's
// isEphemeral).
func ephemeral(out *cluster.Out) bool {
	switch out.Type {
	case cluster.MsgBroadcast:
		return out.RequestID != ""
	case cluster.MsgServerSideEmit, cluster.MsgFetchSockets:
		return true
	}
	return false
}

// Publish implements cluster.Transport.
func (t *transport) Publish(out *cluster.Out) error {
	if ephemeral(out) {
		return t.publish(t.public, out)
	}
	it, err := t.entry(out)
	if err != nil {
		return err
	}
	return t.f.send(it)
}

// entry returns the XADD of out: its data JSON, or base64 msgpack when it
// holds binary.
func (t *transport) entry(out *cluster.Out) (cluster.QueueItem, error) {
	data := out.Data
	if out.Binary() {
		mp, err := out.DataMsgpack()
		if err != nil {
			return cluster.QueueItem{}, err
		}
		data = base64.StdEncoding.AppendEncode(nil, mp)
	}
	return cluster.QueueItem{
		Kind:    kindXAdd,
		Key:     t.stream,
		Payload: data,
		Fields:  []string{out.UID, out.Nsp, strconv.Itoa(out.Type)},
	}, nil
}

// Respond implements cluster.Transport.
func (t *transport) Respond(to string, out *cluster.Out) error {
	return t.publish(t.public+to+"#", out)
}

func (t *transport) publish(channel string, out *cluster.Out) error {
	msg, err := out.Msgpack()
	if err != nil {
		return err
	}
	kind := kindPublish
	if t.f.opts.UseShardedPubSub {
		kind = kindSPublish
	}
	return t.f.send(cluster.QueueItem{Kind: kind, Key: channel, Payload: msg})
}

// Congestion implements cluster.Transport.
func (t *transport) Congestion() <-chan struct{} { return t.f.queue.Congestion() }

// ServerCount implements cluster.Transport: PUBSUB NUMSUB (SHARDNUMSUB)
// of the namespace's channel, which every node subscribes to.
func (t *transport) ServerCount(ctx context.Context) (int, error) {
	ctx, cancel := t.f.ioContext(ctx)
	defer cancel()
	return cluster.CountNodes(ctx, t.f.client, t.public, t.f.opts.UseShardedPubSub)
}

// ---------------------------------------------------------------- subscriptions

// subscribe subscribes to the namespace's channel and the adapter's
// answers channel, and waits until Redis confirmed both or ctx ends
// (go-redis makes the subscriptions once Redis answers, and again after a
// reconnection). Shard channels of a Redis Cluster live on the masters of
// their slots: each gets a connection of its own there.
func (t *transport) subscribe(ctx context.Context) error {
	groups := [][]string{{t.public, t.private}}
	_, isCluster := t.f.client.(*goredis.ClusterClient)
	if t.f.opts.UseShardedPubSub && isCluster {
		groups = [][]string{{t.public}, {t.private}}
	}
	var firstErr error
	for _, chans := range groups {
		var ps *goredis.PubSub
		if t.f.opts.UseShardedPubSub {
			ps = t.f.client.SSubscribe(ctx, chans...)
		} else {
			ps = t.f.client.Subscribe(ctx, chans...)
		}
		err := confirm(ctx, ps, len(chans))
		if err != nil && firstErr == nil {
			firstErr = err
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = ps.Close()
			return adapter.ErrClosed
		}
		t.subs = append(t.subs, ps)
		t.f.wg.Add(1)
		t.mu.Unlock()
		go t.receive(ps)
	}
	return firstErr
}

// confirm waits for n subscription replies.
func confirm(ctx context.Context, ps *goredis.PubSub, n int) error {
	for n > 0 {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return fmt.Errorf("redisstreams: subscribe: %w", err)
		}
		if _, ok := msg.(*goredis.Subscription); ok {
			n--
		}
	}
	return nil
}

// receive hands the messages of a subscription to the adapter until the
// subscription is closed.
func (t *transport) receive(ps *goredis.PubSub) {
	defer t.f.wg.Done()
	for msg := range ps.Channel() {
		t.handle(msg)
	}
}

func (t *transport) handle(msg *goredis.Message) {
	defer func() {
		if r := recover(); r != nil {
			t.f.log.Error("redisstreams: panic while handling a message", "channel", msg.Channel, "panic", r)
		}
	}()
	cluster.Receive(t.a, []byte(msg.Payload), msg.Channel == t.private)
}

// close drops the subscriptions: the adapter closed.
func (t *transport) close() {
	t.mu.Lock()
	t.closed = true
	subs := t.subs
	t.subs = nil
	t.mu.Unlock()
	for _, ps := range subs {
		_ = ps.Close()
	}
	t.f.release(t)
}
