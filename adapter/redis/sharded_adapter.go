package redis

import (
	"context"
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// ShardedAdapter is the sharded Redis adapter of one namespace, Node's
// ShardedRedisAdapter: socket.io-adapter's ClusterAdapter (shared with the
// Redis Streams adapter) whose messages travel on shard channels. Create
// it with ShardedFactory.Adapter. It is safe for concurrent use.
//
// It is not an adapter.Recoverer: connection state recovery is not
// supported in sharded mode (as on Node, where the offsets are empty).
type ShardedAdapter = cluster.Adapter

// shardedTransport carries the messages of one namespace's adapter on
// shard channels (cluster.Transport), and keeps the subscriptions of its
// rooms in the dynamic modes.
type shardedTransport struct {
	f    *ShardedFactory
	a    *cluster.Adapter
	name string

	channel         string // K#N#
	responseChannel string // K#N#<uid>#

	// dmu guards dyn: the rooms whose channel this adapter subscribed to
	// (dynamic modes), kept in step with the local rooms by reconcile.
	dmu     sync.Mutex
	dyn     map[string]struct{}
	dclosed bool
}

func newShardedAdapter(f *ShardedFactory, nsp adapter.Namespace) *shardedTransport {
	t := &shardedTransport{f: f, name: nsp.Name(), dyn: make(map[string]struct{})}
	t.a = cluster.New(nsp, cluster.Config{
		Events:          f.events,
		Log:             f.log,
		RequestsTimeout: f.opts.RequestsTimeout,
		MaxMessageBytes: f.opts.MaxMessageBytes,
		RoomsChanged:    t.reconcile,
		Closed:          t.closed,
	})
	cluster.SetTransport(t.a, t)
	t.channel = f.opts.Key + "#" + t.name + "#"
	t.responseChannel = t.channel + t.a.UID() + "#"
	return t
}

// separate reports whether room has a channel of its own in the
// subscription mode (Node's shouldUseASeparateNamespace): in dynamic mode
// every room but the socket ids of this node.
func (t *shardedTransport) separate(room string) bool {
	switch t.f.opts.SubscriptionMode {
	case SubscriptionDynamicPrivate:
		return true
	case SubscriptionDynamic:
		return t.a.SocketRooms(room) == nil
	}
	return false
}

// reconcile subscribes to or unsubscribes from the channels of rooms, in
// the dynamic modes, as the rooms exist locally or not (Node does it on
// the in-memory adapter's create-room and delete-room events). Every
// change of the local rooms is followed by a reconcile of the rooms it
// touched, under dmu, so the last one sees the final state.
func (t *shardedTransport) reconcile(rooms []string) {
	if !t.f.opts.dynamic() {
		return
	}
	for _, room := range rooms {
		t.dmu.Lock()
		want := !t.dclosed && t.a.HasRoom(room) && t.separate(room)
		_, have := t.dyn[room]
		if want != have {
			ch := t.roomChannel(room)
			if want {
				t.dyn[room] = struct{}{}
				t.f.route(t, ch, true)
				t.f.subs.change([]string{ch}, +1)
			} else {
				delete(t.dyn, room)
				t.f.route(t, ch, false)
				t.f.subs.change([]string{ch}, -1)
			}
		}
		t.dmu.Unlock()
	}
}

func (t *shardedTransport) roomChannel(room string) string { return t.channel + room + "#" }

// broadcastChannel is where a message goes (Node's computeChannel): a
// broadcast without acks to exactly one room goes to that room's channel
// in the dynamic modes (in dynamic mode, unless the room looks like a
// socket id: 20 characters); everything else to the namespace's.
func (t *shardedTransport) broadcastChannel(out *cluster.Out) string {
	if out.Type != cluster.MsgBroadcast || out.RequestID != "" || len(out.Opts.Rooms) != 1 {
		return t.channel
	}
	room := out.Opts.Rooms[0]
	switch t.f.opts.SubscriptionMode {
	case SubscriptionDynamicPrivate:
		return t.roomChannel(room)
	case SubscriptionDynamic:
		if cluster.JSLength(room) != 20 {
			return t.roomChannel(room)
		}
	}
	return t.channel
}

// Publish implements cluster.Transport: an SPUBLISH, queued.
func (t *shardedTransport) Publish(out *cluster.Out) error {
	msg, err := out.Encode()
	if err != nil {
		return err
	}
	return t.f.publish(t.broadcastChannel(out), msg)
}

// Respond implements cluster.Transport: an SPUBLISH on the requester's
// own channel.
func (t *shardedTransport) Respond(to string, out *cluster.Out) error {
	msg, err := out.Encode()
	if err != nil {
		return err
	}
	return t.f.publish(t.channel+to+"#", msg)
}

// Congestion implements cluster.Transport.
func (t *shardedTransport) Congestion() <-chan struct{} { return t.f.congestion() }

// ServerCount implements cluster.Transport: PUBSUB SHARDNUMSUB of the
// namespace's channel.
func (t *shardedTransport) ServerCount(ctx context.Context) (int, error) {
	ctx, cancel := t.f.ioContext(ctx)
	defer cancel()
	return cluster.CountNodes(ctx, t.f.client, t.channel, true)
}

// closed drops the namespace's subscriptions (unless another adapter of
// the same namespace uses them): the adapter closed.
func (t *shardedTransport) closed() {
	t.dmu.Lock()
	t.dclosed = true
	for room := range t.dyn {
		ch := t.roomChannel(room)
		t.f.route(t, ch, false)
		t.f.subs.change([]string{ch}, -1)
	}
	t.dyn = nil
	t.dmu.Unlock()
	t.f.release(t)
}
