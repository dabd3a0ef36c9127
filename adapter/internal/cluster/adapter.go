package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/memory"
	"github.com/ioswarm/ioswarm/parser"
)

// Transport is how an Adapter reaches the other nodes: the shard channels
// of the sharded Redis adapter, the stream and channels of the Redis
// Streams adapter. Its methods never wait for the network.
type Transport interface {
	// Publish sends a request or a broadcast to the other nodes of the
	// namespace. An error means they were not reached.
	Publish(out *Out) error
	// Respond sends an answer to the node whose adapter's uid is to; an
	// answer over the transport's size limit fails with an error
	// matching ErrMessageTooLarge.
	Respond(to string, out *Out) error
	// ServerCount returns the number of nodes serving the namespace, this
	// one included (0 when it does not know).
	ServerCount(ctx context.Context) (int, error)
	// Congestion returns the channel a paced sender waits on while the
	// way out is congested, nil otherwise.
	Congestion() <-chan struct{}
}

// Config is what an Adapter needs besides its namespace.
type Config struct {
	Transport Transport
	// Events runs the serverSideEmit listeners of the node.
	Events *EventRunner
	Log    *slog.Logger
	// RequestsTimeout bounds the requests with answers (unless the
	// operation carries a timeout of its own).
	RequestsTimeout time.Duration
	// MaxMessageBytes bounds an answer: a larger one is replaced by an
	// error answer.
	MaxMessageBytes int
	// RoomsChanged, when set, is called after the local rooms named may
	// have appeared or gone (the sharded adapter's room subscriptions).
	RoomsChanged func(rooms []string)
	// Offsets appends to each logged broadcast that arrives from a stream
	// its entry id, the offset of connection state recovery (Node's
	// addOffsetIfNecessary).
	Offsets bool
	// Closed, when set, is called once, when the adapter closes (after
	// its requests ended), to release what the transport holds for it.
	Closed func()
}

// Adapter is socket.io-adapter's ClusterAdapter for one namespace: the
// in-memory adapter for the local sockets, plus the messages that reach
// the other nodes through a Transport. It is safe for concurrent use.
type Adapter struct {
	cfg   Config
	local *memory.Adapter
	nsp   adapter.Namespace
	name  string
	uid   string
	log   *slog.Logger

	pend Pending // requests and broadcasts with acks in flight; its Mu guards Closed
}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the adapter of nsp; set its transport with SetTransport
// before using it when the transport needs the adapter's UID.
func New(nsp adapter.Namespace, cfg Config) *Adapter {
	return &Adapter{
		cfg:   cfg,
		local: memory.NewAdapter(PlainNamespace{Namespace: nsp}),
		nsp:   nsp,
		name:  nsp.Name(),
		uid:   NewHexID(),
		log:   cfg.Log,
		pend:  NewPending(),
	}
}

// SetTransport sets the transport; a function so as not to be a method of
// the adapter's API. Call it before the adapter is shared.
func SetTransport(a *Adapter, t Transport) { a.cfg.Transport = t }

// PlainNamespace hides a namespace's recovery options from the local
// in-memory adapter: a cluster adapter keeps its log and sessions itself
// (in Redis), or none at all.
type PlainNamespace struct{ adapter.Namespace }

// NewHexID returns 16 random hex characters, like the uids and request
// ids of Node's cluster adapter.
func NewHexID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// UID is the adapter's id in the cluster (Node's this.uid).
func (a *Adapter) UID() string { return a.uid }

// HasRoom reports whether room has local sockets.
func (a *Adapter) HasRoom(room string) bool { return a.local.HasRoom(room) }

// ---------------------------------------------------------------- local membership

// AddAll adds a local socket to rooms.
func (a *Adapter) AddAll(s adapter.Socket, rooms []string) {
	a.local.AddAll(s, rooms)
	a.roomsChanged(rooms)
}

// Del removes a local socket from a room.
func (a *Adapter) Del(id, room string) {
	a.local.Del(id, room)
	a.roomsChanged([]string{room})
}

// DelAll removes a local socket from all its rooms.
func (a *Adapter) DelAll(id string) {
	rooms := a.local.SocketRooms(id)
	a.local.DelAll(id)
	a.roomsChanged(rooms)
}

// SocketRooms returns the rooms of a local socket, sorted, or nil.
func (a *Adapter) SocketRooms(id string) []string { return a.local.SocketRooms(id) }

// LocalSockets calls fn for every selected local socket until it returns
// false.
func (a *Adapter) LocalSockets(opts adapter.BroadcastOptions, fn func(adapter.Socket) bool) {
	a.local.LocalSockets(opts, fn)
}

// LocalRooms returns the local rooms, sorted.
func (a *Adapter) LocalRooms() []string { return a.local.LocalRooms() }

func (a *Adapter) roomsChanged(rooms []string) {
	if a.cfg.RoomsChanged != nil {
		a.cfg.RoomsChanged(rooms)
	}
}

func (a *Adapter) isClosed() bool {
	a.pend.Mu.Lock()
	defer a.pend.Mu.Unlock()
	return a.pend.Closed
}

// publish stamps out with the adapter's uid and namespace and hands it to
// the transport.
func (a *Adapter) publish(out *Out) error {
	if a.isClosed() {
		return adapter.ErrClosed
	}
	out.UID, out.Nsp = a.uid, a.name
	return a.cfg.Transport.Publish(out)
}

// ---------------------------------------------------------------- broadcasting

// Broadcast delivers p to the selected local sockets and, unless the Local
// flag is set, publishes it for the other nodes. An error means the other
// nodes were not reached.
func (a *Adapter) Broadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	var err error
	if !opts.Flags.Local {
		if err = a.publish(BroadcastOut("", p, opts)); err != nil {
			err = fmt.Errorf("redis: broadcast: %w", err)
		}
		a.pace(p)
	}
	_ = a.local.Broadcast(p, opts)
	return err
}

// pace makes a paced packet's sender wait while the way out is
// congested; Redis is never cut off, so slow does nothing.
func (a *Adapter) pace(p *adapter.Packet) {
	if p.Paced() {
		p.NoteCongested(a.cfg.Transport.Congestion(), func() {})
	}
}

// BroadcastWithAck delivers p to the selected sockets of every node: each
// other node reports its number of clients, then each client's answer.
// Answers are accepted until the broadcast's timeout (RequestsTimeout
// when it has none); the callbacks run on a receiving goroutine and must
// not block.
func (a *Adapter) BroadcastWithAck(p *adapter.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func([]parser.Raw)) error {
	var err error
	if !opts.Flags.Local {
		id := NewHexID()
		wait := opts.Flags.Timeout
		if wait <= 0 {
			wait = a.cfg.RequestsTimeout
		}
		req := &AckRequest{OnClientCount: onClientCount, OnAck: onAck}
		err = a.pend.TrackAck(id, req, wait, func() error { return a.publish(BroadcastOut(id, p, opts)) })
		a.pace(p)
	}
	_ = a.local.BroadcastWithAck(p, opts, onClientCount, onAck)
	return err
}

// ServerCount returns the number of nodes serving the namespace, this one
// included (at least 1).
func (a *Adapter) ServerCount(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestsTimeout)
	defer cancel()
	n, err := a.cfg.Transport.ServerCount(ctx)
	if err != nil {
		return 0, err
	}
	return max(n, 1), nil
}

// ---------------------------------------------------------------- fire-and-forget requests

// AddSockets makes the selected sockets join rooms.
func (a *Adapter) AddSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	var err error
	if !opts.Flags.Local {
		err = a.publish(RoomsOut(MsgSocketsJoin, opts, rooms))
	}
	_ = a.local.AddSockets(ctx, opts, rooms)
	a.roomsChanged(rooms)
	return err
}

// DelSockets makes the selected sockets leave rooms.
func (a *Adapter) DelSockets(ctx context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	var err error
	if !opts.Flags.Local {
		err = a.publish(RoomsOut(MsgSocketsLeave, opts, rooms))
	}
	_ = a.local.DelSockets(ctx, opts, rooms)
	a.roomsChanged(rooms)
	return err
}

// DisconnectSockets disconnects the selected sockets.
func (a *Adapter) DisconnectSockets(ctx context.Context, opts adapter.BroadcastOptions, close bool) error {
	var err error
	if !opts.Flags.Local {
		err = a.publish(DisconnectOut(opts, close))
	}
	_ = a.local.DisconnectSockets(ctx, opts, close)
	return err
}

// ---------------------------------------------------------------- requests with answers

// FetchSockets describes the selected sockets of every node. It waits for
// the answers of the other nodes for the operation's timeout
// (opts.Flags.Timeout, as Node's io.timeout(ms)) or RequestsTimeout, then
// fails with an *adapter.TimeoutError ("timeout reached: only X responses
// received out of Y").
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
	req := NewRequest(MsgFetchSockets, n-1)
	req.Sockets = local
	id, err := a.pend.AddRequest(req, NewHexID)
	if err != nil {
		return nil, err
	}
	wait := opts.Flags.Timeout
	if wait <= 0 {
		wait = a.cfg.RequestsTimeout
	}
	if err := a.pend.Await(ctx, id, req, wait, func() error { return a.publish(FetchOut(id, opts)) }); err != nil {
		if err == ErrTimedOut {
			return nil, timeoutReached(req)
		}
		return nil, err
	}
	return req.Sockets, nil
}

// timeoutReached is Node's error of a request whose answers did not all
// come; req's fields are the caller's.
func timeoutReached(req *Request) error {
	return &adapter.TimeoutError{Message: fmt.Sprintf("timeout reached: only %d responses received out of %d", req.Received, req.Expected)}
}

// AllRooms returns the local rooms only: Node's ClusterAdapter has no
// cluster-wide allRooms request, and a Go node asking a Node node would
// wait for an answer that never comes.
func (a *Adapter) AllRooms(ctx context.Context) ([]string, error) {
	return a.local.LocalRooms(), nil
}

// ServerSideEmit sends args (the event name, then its arguments, as JSON)
// to the listeners of this namespace on every other node. With wantAck it
// waits for one answer per other node (counted when the request is sent)
// and returns them; when some did not come within RequestsTimeout it
// returns those that did with an *adapter.TimeoutError ("timeout reached:
// only X responses received out of Y").
func (a *Adapter) ServerSideEmit(ctx context.Context, args []json.RawMessage, wantAck bool) ([]json.RawMessage, error) {
	data := AppendRawArray(nil, args)
	if !wantAck {
		return nil, a.publish(ServerSideEmitOut("", data))
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return []json.RawMessage{}, nil
	}
	req := NewRequest(MsgServerSideEmit, n-1)
	id, err := a.pend.AddRequest(req, NewHexID)
	if err != nil {
		return nil, err
	}
	err = a.pend.Await(ctx, id, req, a.cfg.RequestsTimeout, func() error { return a.publish(ServerSideEmitOut(id, data)) })
	res := req.Responses
	if res == nil {
		res = []json.RawMessage{}
	}
	if err == ErrTimedOut {
		return res, timeoutReached(req)
	}
	return res, err
}

// ---------------------------------------------------------------- closing

// Close ends the requests in flight with adapter.ErrClosed, forgets the
// broadcasts with acks it waits for, and releases what the transport
// holds for the namespace. It never waits for Redis. It is idempotent.
func (a *Adapter) Close() error {
	CloseAdapter(a)
	return nil
}

// CloseAdapter is Close, reporting whether this call closed a.
func CloseAdapter(a *Adapter) bool {
	if !a.pend.CloseAll() {
		return false
	}
	if a.cfg.Closed != nil {
		a.cfg.Closed()
	}
	_ = a.local.Close()
	return true
}
