package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/adapter/memory"
	"github.com/ioswarm/ioswarm/parser"
)

// Adapter is the Redis adapter of one namespace: the in-memory adapter for
// the local sockets, plus the messages that reach the other nodes. Create
// it with Factory.Adapter. It is safe for concurrent use.
type Adapter struct {
	f     *Factory
	local *memory.Adapter
	nsp   adapter.Namespace
	name  string
	uid   string // identifies this adapter on the wire

	bcastChannel    string // K#N#
	requestChannel  string // K-request#N#
	responseChannel string // K-response#N#
	privateChannel  string // K-response#N#<uid>#

	rec *recovery // nil when connection state recovery is off (recovery.go)

	pend cluster.Pending // requests and broadcasts with acks in flight; its Mu guards Closed
}

var (
	_ adapter.Adapter   = (*Adapter)(nil)
	_ adapter.Recoverer = (*Adapter)(nil)
)

func newAdapter(f *Factory, nsp adapter.Namespace) *Adapter {
	name := nsp.Name()
	k := f.opts.Key
	a := &Adapter{
		f:               f,
		local:           memory.NewAdapter(cluster.PlainNamespace{Namespace: nsp}),
		nsp:             nsp,
		name:            name,
		uid:             newID(),
		bcastChannel:    k + "#" + name + "#",
		requestChannel:  k + "-request#" + name + "#",
		responseChannel: k + "-response#" + name + "#",
		pend:            cluster.NewPending(),
	}
	a.privateChannel = a.responseChannel + a.uid + "#"
	if rn, ok := nsp.(adapter.RecoveryNamespace); ok {
		if opts := rn.Recovery(); opts != nil {
			a.rec = newRecovery(a, *opts)
		}
	}
	return a
}

// idAlphabet is uid2's: the characters of Node's adapter uids and request
// ids.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newID returns 6 random characters of idAlphabet, like uid2(6).
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[b[i]&63]
	}
	return string(b[:])
}

// escapeGlob escapes the characters PSUBSCRIBE patterns give a meaning to,
// so that the key is matched literally.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			sb.WriteByte('\\')
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

// ---------------------------------------------------------------- local membership

// AddAll adds a local socket to rooms.
func (a *Adapter) AddAll(s adapter.Socket, rooms []string) { a.local.AddAll(s, rooms) }

// Del removes a local socket from a room.
func (a *Adapter) Del(id, room string) { a.local.Del(id, room) }

// DelAll removes a local socket from all its rooms.
func (a *Adapter) DelAll(id string) { a.local.DelAll(id) }

// SocketRooms returns the rooms of a local socket, sorted, or nil.
func (a *Adapter) SocketRooms(id string) []string { return a.local.SocketRooms(id) }

// LocalSockets calls fn for every selected local socket until it returns
// false.
func (a *Adapter) LocalSockets(opts adapter.BroadcastOptions, fn func(adapter.Socket) bool) {
	a.local.LocalSockets(opts, fn)
}

// LocalRooms returns the local rooms, sorted.
func (a *Adapter) LocalRooms() []string { return a.local.LocalRooms() }

// hasLocalRoom reports whether a local socket is in room.
func (a *Adapter) hasLocalRoom(room string) bool { return a.local.HasRoom(room) }

func (a *Adapter) isClosed() bool {
	a.pend.Mu.Lock()
	defer a.pend.Mu.Unlock()
	return a.pend.Closed
}

// ---------------------------------------------------------------- broadcasting

// Broadcast delivers p to the selected local sockets and, unless the Local
// flag is set, queues it for the other nodes (transcoded to msgpack once).
// Local delivery never waits for Redis; an error means the other nodes were
// not reached (ErrQueueFull, adapter.ErrClosed, or data that cannot be
// transcoded).
//
// With recovery on, a broadcast that is logged (adapter.Loggable, not
// Local) goes through Redis to the local sockets too, and Broadcast returns
// once it is stored and delivered here (recovery.go).
func (a *Adapter) Broadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	if a.rec != nil && !opts.Flags.Local && adapter.Loggable(p, opts) {
		return a.rec.broadcast(p, opts)
	}
	var err error
	if !opts.Flags.Local {
		err = a.publishBroadcast(p, opts)
		a.pace(p)
	}
	_ = a.local.Broadcast(p, opts)
	return err
}

// pace makes a paced packet's sender wait while the publish queue is
// congested (pubqueue.go); Redis is never cut off, so slow does nothing.
func (a *Adapter) pace(p *adapter.Packet) {
	if p.Paced() {
		p.NoteCongested(a.f.congestion(), func() {})
	}
}

func (a *Adapter) publishBroadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	if a.isClosed() {
		return adapter.ErrClosed
	}
	msg, err := encodeBroadcast(a.uid, a.name, p, opts)
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	ch := a.bcastChannel
	if len(opts.Rooms) == 1 {
		ch += opts.Rooms[0] + "#"
	}
	return a.f.publish(ch, msg)
}

// BroadcastWithAck delivers p to the selected sockets of every node (this
// one only with Local): each other node reports its number of clients,
// then each client's answer (its first argument). Answers are accepted
// until the broadcast's timeout (RequestsTimeout when it has none); the
// callbacks run on the adapter's receiving goroutine and must not block.
func (a *Adapter) BroadcastWithAck(p *adapter.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func([]parser.Raw)) error {
	var err error
	if !opts.Flags.Local {
		err = a.publishBroadcastWithAck(p, opts, onClientCount, onAck)
		a.pace(p)
	}
	_ = a.local.BroadcastWithAck(p, opts, onClientCount, onAck)
	return err
}

func (a *Adapter) publishBroadcastWithAck(p *adapter.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func([]parser.Raw)) error {
	id := newID()
	msg, err := encodeBroadcastRequest(a.uid, id, a.name, p, opts)
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	wait := opts.Flags.Timeout
	if wait <= 0 {
		wait = a.f.opts.RequestsTimeout
	}
	req := &cluster.AckRequest{OnClientCount: onClientCount, OnAck: onAck}
	return a.pend.TrackAck(id, req, wait, func() error { return a.f.publish(a.requestChannel, msg) })
}

// ServerCount returns the number of nodes serving the namespace, this one
// included: the subscribers of its request channel (at least 1).
func (a *Adapter) ServerCount(ctx context.Context) (int, error) {
	ctx, cancel := a.f.ioContextFrom(ctx)
	defer cancel()
	n, err := a.f.numSub(ctx, a.requestChannel)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			// Redis did not answer in time: a timeout like any other.
			err = &adapter.TimeoutError{Message: "timeout reached while counting the nodes: " + err.Error()}
		}
		return 0, fmt.Errorf("redis: count servers (PUBSUB NUMSUB %s): %w", a.requestChannel, err)
	}
	return max(n, 1), nil
}

// ---------------------------------------------------------------- fire-and-forget requests

// AddSockets makes the selected sockets join rooms: the local ones at
// once, the others when the request reaches their node.
func (a *Adapter) AddSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	a.changeRooms(opts, func() { _ = a.local.AddSockets(ctx, opts, rooms) })
	return a.publishRooms(typeRemoteJoin, opts, rooms)
}

// DelSockets makes the selected sockets leave rooms.
func (a *Adapter) DelSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	a.changeRooms(opts, func() { _ = a.local.DelSockets(ctx, opts, rooms) })
	return a.publishRooms(typeRemoteLeave, opts, rooms)
}

// publishRooms tells the other nodes to make the selected sockets join or
// leave rooms (REMOTE_JOIN / REMOTE_LEAVE), unless the operation is local.
func (a *Adapter) publishRooms(typ int, opts adapter.BroadcastOptions, rooms []string) error {
	if opts.Flags.Local {
		return nil
	}
	m := cluster.NewJSONMsg(64)
	m.Str("uid", a.uid)
	m.Int("type", typ)
	m.Opts(opts)
	m.Strs("rooms", rooms)
	return a.publishRequest(m.Bytes())
}

// DisconnectSockets disconnects the selected sockets.
func (a *Adapter) DisconnectSockets(ctx context.Context, opts adapter.BroadcastOptions, close bool) error {
	var err error
	if !opts.Flags.Local {
		m := cluster.NewJSONMsg(64)
		m.Str("uid", a.uid)
		m.Int("type", typeRemoteDisconnect)
		m.Opts(opts)
		m.Boolean("close", close)
		err = a.publishRequest(m.Bytes())
	}
	_ = a.local.DisconnectSockets(ctx, opts, close)
	return err
}

func (a *Adapter) publishRequest(msg []byte) error {
	if a.isClosed() {
		return adapter.ErrClosed
	}
	return a.f.publish(a.requestChannel, msg)
}

// ---------------------------------------------------------------- requests with answers

// FetchSockets describes the selected sockets of every node. It fails with
// an *adapter.TimeoutError ("timeout reached while waiting for fetchSockets
// response") when some node did not answer within RequestsTimeout.
func (a *Adapter) FetchSockets(ctx context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketInfo, error) {
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
	req := cluster.NewRequest(typeRemoteFetch, n-1)
	req.Sockets = local
	id, err := a.addRequest(req)
	if err != nil {
		return nil, err
	}
	m := cluster.NewJSONMsg(96)
	m.Str("uid", a.uid)
	m.Str("requestId", id)
	m.Int("type", typeRemoteFetch)
	m.Opts(opts)
	if err := a.send(id, req, m.Bytes(), ctx); err != nil {
		if err == cluster.ErrTimedOut {
			return nil, &adapter.TimeoutError{Message: "timeout reached while waiting for fetchSockets response"}
		}
		return nil, err
	}
	return req.Sockets, nil
}

// AllRooms returns the rooms of every node, socket-id rooms included,
// sorted. It fails with an *adapter.TimeoutError when some node did not
// answer within RequestsTimeout.
func (a *Adapter) AllRooms(ctx context.Context) ([]string, error) {
	local := a.local.LocalRooms()
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return local, nil
	}
	req := cluster.NewRequest(typeAllRooms, n-1)
	req.Rooms = make(map[string]struct{}, len(local))
	for _, r := range local {
		req.Rooms[r] = struct{}{}
	}
	id, err := a.addRequest(req)
	if err != nil {
		return nil, err
	}
	m := cluster.NewJSONMsg(64)
	m.Str("uid", a.uid)
	m.Str("requestId", id)
	m.Int("type", typeAllRooms)
	if err := a.send(id, req, m.Bytes(), ctx); err != nil {
		if err == cluster.ErrTimedOut {
			return nil, &adapter.TimeoutError{Message: "timeout reached while waiting for allRooms response"}
		}
		return nil, err
	}
	out := make([]string, 0, len(req.Rooms))
	for r := range req.Rooms {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// ServerSideEmit sends args (the event name, then its arguments, as JSON)
// to the listeners of this namespace on every other node. With wantAck it
// waits for one answer per other node (counted when the request is sent)
// and returns them; when some did not come within RequestsTimeout it
// returns those that did with an *adapter.TimeoutError ("timeout reached:
// only X responses received out of Y").
func (a *Adapter) ServerSideEmit(ctx context.Context, args []json.RawMessage, wantAck bool) ([]json.RawMessage, error) {
	data := cluster.AppendRawArray(nil, args)
	if !wantAck {
		m := cluster.NewJSONMsg(32 + len(data))
		m.Str("uid", a.uid)
		m.Int("type", typeServerSideEmit)
		m.Raw("data", data)
		return nil, a.publishRequest(m.Bytes())
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return []json.RawMessage{}, nil
	}
	req := cluster.NewRequest(typeServerSideEmit, n-1)
	id, err := a.addRequest(req)
	if err != nil {
		return nil, err
	}
	m := cluster.NewJSONMsg(48 + len(data))
	m.Str("uid", a.uid)
	m.Str("requestId", id)
	m.Int("type", typeServerSideEmit)
	m.Raw("data", data)
	err = a.send(id, req, m.Bytes(), ctx)
	res := req.Responses
	if res == nil {
		res = []json.RawMessage{}
	}
	if err == cluster.ErrTimedOut {
		return res, &adapter.TimeoutError{Message: fmt.Sprintf("timeout reached: only %d responses received out of %d", len(res), req.Expected)}
	}
	return res, err
}

// ---------------------------------------------------------------- closing

// Close ends the requests in flight with adapter.ErrClosed, forgets the
// broadcasts with acks it waits for, stops handling messages and
// unsubscribes the namespace's channels unless another adapter of the same
// namespace uses them. It never waits for Redis: the Factory's subscription
// goroutine sends the UNSUBSCRIBE (Factory.Close waits for it), so a server
// may close the adapter of every dynamic namespace whose last socket left,
// and create the namespace again later (Factory.Adapter). It is
// idempotent.
func (a *Adapter) Close() error {
	if !a.pend.CloseAll() {
		return nil
	}
	if a.rec != nil {
		a.rec.close()
	}
	a.f.release(a)
	_ = a.local.Close()
	return nil
}
