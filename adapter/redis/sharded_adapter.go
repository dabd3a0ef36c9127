package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/adapter/memory"
	"github.com/ioswarm/ioswarm/parser"
)

// ShardedAdapter is the sharded Redis adapter of one namespace, Node's
// ShardedRedisAdapter (a ClusterAdapter): the in-memory adapter for the
// local sockets, plus the messages that reach the other nodes. Create it
// with ShardedFactory.Adapter. It is safe for concurrent use.
//
// It is not an adapter.Recoverer: connection state recovery is not
// supported in sharded mode (as on Node, where the offsets are empty).
type ShardedAdapter struct {
	f     *ShardedFactory
	local *memory.Adapter
	nsp   adapter.Namespace
	name  string
	uid   string

	channel         string // K#N#
	responseChannel string // K#N#<uid>#

	// dmu guards dyn: the rooms whose channel this adapter subscribed to
	// (dynamic modes), kept in step with the local rooms by reconcile.
	dmu     sync.Mutex
	dyn     map[string]struct{}
	dclosed bool

	pend cluster.Pending // requests and broadcasts with acks in flight; its Mu guards Closed
}

var _ adapter.Adapter = (*ShardedAdapter)(nil)

func newShardedAdapter(f *ShardedFactory, nsp adapter.Namespace) *ShardedAdapter {
	name := nsp.Name()
	a := &ShardedAdapter{
		f:     f,
		local: memory.NewAdapter(plainNamespace{nsp}),
		nsp:   nsp,
		name:  name,
		uid:   newHexID(),
		dyn:   make(map[string]struct{}),
		pend:  cluster.NewPending(),
	}
	a.channel = f.opts.Key + "#" + name + "#"
	a.responseChannel = a.channel + a.uid + "#"
	return a
}

// newHexID returns 16 random hex characters, like the uids and request
// ids of Node's cluster adapter.
func newHexID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---------------------------------------------------------------- local membership

// AddAll adds a local socket to rooms.
func (a *ShardedAdapter) AddAll(s adapter.Socket, rooms []string) {
	a.local.AddAll(s, rooms)
	a.reconcile(rooms)
}

// Del removes a local socket from a room.
func (a *ShardedAdapter) Del(id, room string) {
	a.local.Del(id, room)
	a.reconcile([]string{room})
}

// DelAll removes a local socket from all its rooms.
func (a *ShardedAdapter) DelAll(id string) {
	rooms := a.local.SocketRooms(id)
	a.local.DelAll(id)
	a.reconcile(rooms)
}

// SocketRooms returns the rooms of a local socket, sorted, or nil.
func (a *ShardedAdapter) SocketRooms(id string) []string { return a.local.SocketRooms(id) }

// LocalSockets calls fn for every selected local socket until it returns
// false.
func (a *ShardedAdapter) LocalSockets(opts adapter.BroadcastOptions, fn func(adapter.Socket) bool) {
	a.local.LocalSockets(opts, fn)
}

// LocalRooms returns the local rooms, sorted.
func (a *ShardedAdapter) LocalRooms() []string { return a.local.LocalRooms() }

// separate reports whether room has a channel of its own in the
// subscription mode (Node's shouldUseASeparateNamespace): in dynamic mode
// every room but the socket ids of this node.
func (a *ShardedAdapter) separate(room string) bool {
	switch a.f.opts.SubscriptionMode {
	case SubscriptionDynamicPrivate:
		return true
	case SubscriptionDynamic:
		return a.local.SocketRooms(room) == nil
	}
	return false
}

// reconcile subscribes to or unsubscribes from the channels of rooms, in
// the dynamic modes, as the rooms exist locally or not (Node does it on
// the in-memory adapter's create-room and delete-room events). Every
// change of the local rooms is followed by a reconcile of the rooms it
// touched, under dmu, so the last one sees the final state.
func (a *ShardedAdapter) reconcile(rooms []string) {
	if !a.f.opts.dynamic() {
		return
	}
	for _, room := range rooms {
		a.dmu.Lock()
		want := !a.dclosed && a.local.HasRoom(room) && a.separate(room)
		_, have := a.dyn[room]
		if want != have {
			ch := a.roomChannel(room)
			if want {
				a.dyn[room] = struct{}{}
				a.f.route(a, ch, true)
				a.f.subs.change([]string{ch}, +1)
			} else {
				delete(a.dyn, room)
				a.f.route(a, ch, false)
				a.f.subs.change([]string{ch}, -1)
			}
		}
		a.dmu.Unlock()
	}
}

func (a *ShardedAdapter) roomChannel(room string) string { return a.channel + room + "#" }

func (a *ShardedAdapter) isClosed() bool {
	a.pend.Mu.Lock()
	defer a.pend.Mu.Unlock()
	return a.pend.Closed
}

// ---------------------------------------------------------------- broadcasting

// broadcastChannel is where a broadcast goes (Node's computeChannel): a
// broadcast without acks to exactly one room goes to that room's channel
// in the dynamic modes (in dynamic mode, unless the room looks like a
// socket id: 20 characters); everything else to the namespace's.
func (a *ShardedAdapter) broadcastChannel(opts adapter.BroadcastOptions, withAck bool) string {
	if withAck || len(opts.Rooms) != 1 {
		return a.channel
	}
	room := opts.Rooms[0]
	switch a.f.opts.SubscriptionMode {
	case SubscriptionDynamicPrivate:
		return a.roomChannel(room)
	case SubscriptionDynamic:
		if cluster.JSLength(room) != 20 {
			return a.roomChannel(room)
		}
	}
	return a.channel
}

// Broadcast delivers p to the selected local sockets and, unless the Local
// flag is set, publishes it for the other nodes. An error means the other
// nodes were not reached.
func (a *ShardedAdapter) Broadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	var err error
	if !opts.Flags.Local {
		err = a.publishBroadcast(p, opts)
		a.pace(p)
	}
	_ = a.local.Broadcast(p, opts)
	return err
}

// pace makes a paced packet's sender wait while the publish queue is
// congested; Redis is never cut off, so slow does nothing.
func (a *ShardedAdapter) pace(p *adapter.Packet) {
	if p.Paced() {
		p.NoteCongested(a.f.congestion(), func() {})
	}
}

func (a *ShardedAdapter) publishBroadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	if a.isClosed() {
		return adapter.ErrClosed
	}
	msg, err := cluster.EncodeBroadcast(a.uid, a.name, "", p, opts)
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	return a.f.publish(a.broadcastChannel(opts, false), msg)
}

// BroadcastWithAck delivers p to the selected sockets of every node: each
// other node reports its number of clients, then each client's answer.
// Answers are accepted until the broadcast's timeout (RequestsTimeout
// when it has none); the callbacks run on a receiving goroutine and must
// not block.
func (a *ShardedAdapter) BroadcastWithAck(p *adapter.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func([]parser.Raw)) error {
	var err error
	if !opts.Flags.Local {
		err = a.publishBroadcastWithAck(p, opts, onClientCount, onAck)
		a.pace(p)
	}
	_ = a.local.BroadcastWithAck(p, opts, onClientCount, onAck)
	return err
}

func (a *ShardedAdapter) publishBroadcastWithAck(p *adapter.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func([]parser.Raw)) error {
	id := newHexID()
	msg, err := cluster.EncodeBroadcast(a.uid, a.name, id, p, opts)
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	wait := opts.Flags.Timeout
	if wait <= 0 {
		wait = a.f.opts.RequestsTimeout
	}
	req := &cluster.AckRequest{OnClientCount: onClientCount, OnAck: onAck}
	return a.pend.TrackAck(id, req, wait, func() error { return a.f.publish(a.channel, msg) })
}

// ServerCount returns the number of nodes serving the namespace, this one
// included: PUBSUB SHARDNUMSUB of its channel (at least 1).
func (a *ShardedAdapter) ServerCount(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, a.f.opts.RequestsTimeout)
	defer cancel()
	n, err := a.f.shardNumSub(ctx, a.channel)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			err = &adapter.TimeoutError{Message: "timeout reached while counting the nodes: " + err.Error()}
		}
		return 0, fmt.Errorf("redis: count servers (PUBSUB SHARDNUMSUB %s): %w", a.channel, err)
	}
	return max(n, 1), nil
}

// ---------------------------------------------------------------- fire-and-forget requests

// AddSockets makes the selected sockets join rooms.
func (a *ShardedAdapter) AddSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	var err error
	if !opts.Flags.Local {
		err = a.publishRequest(cluster.EncodeRooms(cluster.MsgSocketsJoin, a.uid, a.name, opts, rooms))
	}
	_ = a.local.AddSockets(ctx, opts, rooms)
	a.reconcile(rooms)
	return err
}

// DelSockets makes the selected sockets leave rooms.
func (a *ShardedAdapter) DelSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	var err error
	if !opts.Flags.Local {
		err = a.publishRequest(cluster.EncodeRooms(cluster.MsgSocketsLeave, a.uid, a.name, opts, rooms))
	}
	_ = a.local.DelSockets(ctx, opts, rooms)
	a.reconcile(rooms)
	return err
}

// DisconnectSockets disconnects the selected sockets.
func (a *ShardedAdapter) DisconnectSockets(ctx context.Context, opts adapter.BroadcastOptions, close bool) error {
	var err error
	if !opts.Flags.Local {
		err = a.publishRequest(cluster.EncodeDisconnect(a.uid, a.name, opts, close))
	}
	_ = a.local.DisconnectSockets(ctx, opts, close)
	return err
}

func (a *ShardedAdapter) publishRequest(msg []byte) error {
	if a.isClosed() {
		return adapter.ErrClosed
	}
	return a.f.publish(a.channel, msg)
}

// ---------------------------------------------------------------- requests with answers

// FetchSockets describes the selected sockets of every node. It waits for
// the answers of the other nodes for the operation's timeout
// (opts.Flags.Timeout, as Node's io.timeout(ms)) or RequestsTimeout, then
// fails with an *adapter.TimeoutError ("timeout reached: only X responses
// received out of Y").
func (a *ShardedAdapter) FetchSockets(ctx context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketInfo, error) {
	local, _ := a.local.FetchSockets(ctx, opts)
	if opts.Flags.Local {
		return local, nil
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return local, nil
	}
	req := cluster.NewRequest(cluster.MsgFetchSockets, n-1)
	req.Sockets = local
	id, err := a.addRequest(req)
	if err != nil {
		return nil, err
	}
	wait := opts.Flags.Timeout
	if wait <= 0 {
		wait = a.f.opts.RequestsTimeout
	}
	if err := a.send(ctx, id, req, cluster.EncodeFetch(a.uid, a.name, id, opts), wait); err != nil {
		if err == cluster.ErrTimedOut {
			return nil, timeoutReached(req)
		}
		return nil, err
	}
	return req.Sockets, nil
}

// timeoutReached is Node's error of a request whose answers did not all
// come; req's fields are the caller's.
func timeoutReached(req *cluster.Request) error {
	return &adapter.TimeoutError{Message: fmt.Sprintf("timeout reached: only %d responses received out of %d", req.Received, req.Expected)}
}

// AllRooms returns the local rooms only: Node's ClusterAdapter (and so
// its sharded adapter) has no cluster-wide allRooms request, and a Go
// node asking a Node node would wait for an answer that never comes.
func (a *ShardedAdapter) AllRooms(ctx context.Context) ([]string, error) {
	return a.local.LocalRooms(), nil
}

// ServerSideEmit sends args (the event name, then its arguments, as JSON)
// to the listeners of this namespace on every other node. With wantAck it
// waits for one answer per other node (counted when the request is sent)
// and returns them; when some did not come within RequestsTimeout it
// returns those that did with an *adapter.TimeoutError ("timeout reached:
// only X responses received out of Y").
func (a *ShardedAdapter) ServerSideEmit(ctx context.Context, args []json.RawMessage, wantAck bool) ([]json.RawMessage, error) {
	data := appendRawArray(nil, args)
	if !wantAck {
		return nil, a.publishRequest(cluster.EncodeServerSideEmit(a.uid, a.name, "", data))
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return []json.RawMessage{}, nil
	}
	req := cluster.NewRequest(cluster.MsgServerSideEmit, n-1)
	id, err := a.addRequest(req)
	if err != nil {
		return nil, err
	}
	err = a.send(ctx, id, req, cluster.EncodeServerSideEmit(a.uid, a.name, id, data), a.f.opts.RequestsTimeout)
	res := req.Responses
	if res == nil {
		res = []json.RawMessage{}
	}
	if err == cluster.ErrTimedOut {
		return res, timeoutReached(req)
	}
	return res, err
}

// addRequest registers req under a new request id.
func (a *ShardedAdapter) addRequest(req *cluster.Request) (string, error) {
	return a.pend.AddRequest(req, newHexID)
}

// send publishes a request and waits for its answers until wait or ctx's
// deadline (errTimedOut), or ctx's cancellation. Afterwards the request's
// fields are the caller's.
func (a *ShardedAdapter) send(ctx context.Context, id string, req *cluster.Request, msg []byte, wait time.Duration) error {
	return a.pend.Await(ctx, id, req, wait, func() error { return a.f.publish(a.channel, msg) })
}

// ---------------------------------------------------------------- closing

// Close ends the requests in flight with adapter.ErrClosed, forgets the
// broadcasts with acks it waits for, and drops the namespace's
// subscriptions (unless another adapter of the same namespace uses them).
// It never waits for Redis. It is idempotent.
func (a *ShardedAdapter) Close() error {
	if !a.pend.CloseAll() {
		return nil
	}
	a.dmu.Lock()
	a.dclosed = true
	for room := range a.dyn {
		ch := a.roomChannel(room)
		a.f.route(a, ch, false)
		a.f.subs.change([]string{ch}, -1)
	}
	a.dyn = nil
	a.dmu.Unlock()
	a.f.release(a)
	_ = a.local.Close()
	return nil
}
