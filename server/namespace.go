package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// Namespace is a Socket.IO namespace: its own sockets, rooms, middlewares
// and handlers. All methods are safe for concurrent use.
type Namespace struct {
	srv     *Server
	name    string
	parent  *ParentNamespace
	adapter adapter.Adapter
	ready   chan struct{} // closed once adapter is set (or initErr)
	initErr error
	ackIDs  atomic.Uint64 // server-originated ack ids, shared by the namespace's sockets

	mu           sync.RWMutex
	middlewares  []Middleware
	onConnection []ConnectionHandler
	serverEvents map[string][]ServerEventHandler
	sockets      map[string]*Socket
	handlers     listenerMap // shared by every socket (On)
	// members counts the sockets connecting to or connected to the
	// namespace; a dynamic child is removed when it drops to zero (with
	// Config.CleanupEmptyChildNamespaces), and then marked removed so that
	// no socket joins it any more.
	members int
	removed bool
}

func newNamespace(s *Server, name string, parent *ParentNamespace) *Namespace {
	return &Namespace{
		srv:          s,
		name:         name,
		parent:       parent,
		ready:        make(chan struct{}),
		serverEvents: make(map[string][]ServerEventHandler),
		sockets:      make(map[string]*Socket),
	}
}

// Name returns the namespace name, e.g. "/" or "/admin".
func (n *Namespace) Name() string { return n.name }

// Adapter returns the namespace's adapter.
func (n *Namespace) Adapter() adapter.Adapter { return n.adapter }

// Server returns the server the namespace belongs to.
func (n *Namespace) Server() *Server { return n.srv }

// Use adds a middleware, run for every connection in registration order.
func (n *Namespace) Use(mw Middleware) {
	n.mu.Lock()
	n.middlewares = append(n.middlewares, mw)
	n.mu.Unlock()
}

// OnConnection registers a handler called for every socket that joins the
// namespace, after the client got the CONNECT reply. It runs on the
// socket's handler goroutine: register the socket's event handlers there.
func (n *Namespace) OnConnection(h ConnectionHandler) {
	n.mu.Lock()
	n.onConnection = append(n.onConnection, h)
	n.mu.Unlock()
}

// On adds a listener of an event for every socket of the namespace,
// present and future. A listener added once here costs nothing per socket,
// unlike Socket.On in a connection handler; it runs before the socket's own
// listeners of the event (see Socket.On). The ID removes it (Off).
func (n *Namespace) On(event string, h EventHandler) ListenerID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.handlers.add(event, h)
}

// Off removes the given listeners of an event added with Namespace.On, or
// all of them when no id is given.
func (n *Namespace) Off(event string, ids ...ListenerID) {
	n.mu.Lock()
	n.handlers.remove(event, ids)
	n.mu.Unlock()
}

func (n *Namespace) listeners(event string) []eventListener {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.handlers[event]
}

// OnServerSideEmit registers a listener for an event sent by other nodes
// with ServerSideEmit.
func (n *Namespace) OnServerSideEmit(event string, h ServerEventHandler) {
	n.mu.Lock()
	n.serverEvents[event] = append(n.serverEvents[event], h)
	n.mu.Unlock()
}

// Sockets returns the sockets of this namespace on this node.
func (n *Namespace) Sockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

// Socket returns the local socket with that id, or nil.
func (n *Namespace) Socket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

// nextAckID draws an ack id: they are per namespace, starting at 0, as on
// Node.
func (n *Namespace) nextAckID() uint64 { return n.ackIDs.Add(1) - 1 }

func (n *Namespace) operator() *BroadcastOperator { return &BroadcastOperator{nsp: n} }

// Emit emits to every socket of the namespace, across the cluster; see
// BroadcastOperator.Emit.
func (n *Namespace) Emit(event string, args ...any) error { return n.operator().Emit(event, args...) }

// EmitWithAck emits to every socket of the namespace and waits for their
// acknowledgements; see BroadcastOperator.EmitWithAck.
func (n *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return n.operator().EmitWithAck(ctx, event, args...)
}

// EmitWithAckFunc emits to every socket of the namespace; ack receives
// their acknowledgements. See BroadcastOperator.EmitWithAckFunc.
func (n *Namespace) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	return n.operator().EmitWithAckFunc(event, ack, args...)
}

// To selects the sockets in any of rooms.
func (n *Namespace) To(rooms ...string) *BroadcastOperator { return n.operator().To(rooms...) }

// In is To.
func (n *Namespace) In(rooms ...string) *BroadcastOperator { return n.operator().To(rooms...) }

// Except excludes the sockets in any of rooms.
func (n *Namespace) Except(rooms ...string) *BroadcastOperator {
	return n.operator().Except(rooms...)
}

// Local restricts the broadcast to this node.
func (n *Namespace) Local() *BroadcastOperator { return n.operator().Local() }

// Volatile drops the packet for clients that cannot take it at once.
func (n *Namespace) Volatile() *BroadcastOperator { return n.operator().Volatile() }

// Compress sets the compression hint.
func (n *Namespace) Compress(c bool) *BroadcastOperator { return n.operator().Compress(c) }

// Timeout sets the acknowledgement timeout.
func (n *Namespace) Timeout(d time.Duration) *BroadcastOperator { return n.operator().Timeout(d) }

// FetchSockets returns the sockets of the namespace across the cluster.
func (n *Namespace) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return n.operator().FetchSockets(ctx)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (n *Namespace) SocketsJoin(ctx context.Context, rooms ...string) error {
	return n.operator().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace leave rooms.
func (n *Namespace) SocketsLeave(ctx context.Context, rooms ...string) error {
	return n.operator().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace.
func (n *Namespace) DisconnectSockets(ctx context.Context, close bool) error {
	return n.operator().DisconnectSockets(ctx, close)
}

// nodeJSON encodes v as the JSON a Node.js peer would produce: []byte
// values become Node's Buffer JSON, {"type":"Buffer","data":[...]}. It is
// how values cross the cluster where Node uses JSON (serverSideEmit
// arguments, socket data).
func nodeJSON(v any) (json.RawMessage, error) {
	data, atts, err := parser.AppendValue(nil, nil, v)
	if err != nil || len(atts) == 0 {
		return data, err
	}
	return parser.Raw{JSON: data, Attachments: atts}.MarshalJSON()
}

// encodeServerSide turns an event and its arguments into the JSON array the
// cluster carries.
func encodeServerSide(event string, args []any) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, 1+len(args))
	name, _ := json.Marshal(event)
	out = append(out, name)
	for _, a := range args {
		b, err := nodeJSON(a)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// ServerSideEmit sends an event to this namespace's server-side listeners
// on every other node (never this one). Arguments travel as JSON.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if reservedServerSide[event] {
		return &ReservedEventError{Name: event}
	}
	if n.srv.isClosed() {
		return ErrClosed
	}
	data, err := encodeServerSide(event, args)
	if err != nil {
		return fmt.Errorf("server: serverSideEmit: %w", err)
	}
	_, err = n.adapter.ServerSideEmit(ctx, data, false)
	return err
}

// ServerSideEmitWithAck sends an event to the other nodes and waits for
// one answer per node (the first argument of each listener's ack), within
// the adapter's request timeout and ctx. When some nodes did not answer, it
// returns the answers that came with an error whose text is Node's
// ("timeout reached: only X responses received out of Y"). Alone in the
// cluster it returns no answers at once.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	if reservedServerSide[event] {
		return nil, &ReservedEventError{Name: event}
	}
	if n.srv.isClosed() {
		return nil, ErrClosed
	}
	data, err := encodeServerSide(event, args)
	if err != nil {
		return nil, fmt.Errorf("server: serverSideEmit: %w", err)
	}
	res, err := n.adapter.ServerSideEmit(ctx, data, true)
	out := make(Args, len(res))
	for i, r := range res {
		out[i] = parser.Raw{JSON: r}
	}
	return out, err
}

// handleServerSideEmit runs the listeners of an event received from another
// node (adapter.Namespace.HandleServerSideEmit), on the goroutine the
// adapter calls it on: see ServerEventHandler.
func (n *Namespace) handleServerSideEmit(args []json.RawMessage, ack func(json.RawMessage)) {
	if len(args) == 0 {
		return
	}
	var name string
	if err := json.Unmarshal(args[0], &name); err != nil {
		return
	}
	n.mu.RLock()
	hs := n.serverEvents[name]
	n.mu.RUnlock()
	if len(hs) == 0 {
		return
	}
	ev := &Event{Name: name, Args: make(Args, len(args)-1)}
	for i, a := range args[1:] {
		ev.Args[i] = parser.Raw{JSON: a}
	}
	if ack != nil {
		ev.ack = func(vals []any) error {
			if len(vals) == 0 {
				ack(json.RawMessage("null"))
				return nil
			}
			enc, err := encodeServerSide("", vals[:1])
			if err != nil {
				return err
			}
			ack(enc[1])
			return nil
		}
	}
	for _, h := range hs {
		h(ev)
	}
}

// add runs the middlewares for a new socket and, when they accept it,
// connects it. It runs on the socket's handler goroutine.
func (n *Namespace) add(s *Socket, restored adapter.Restored) {
	n.mu.RLock()
	mws := n.middlewares
	n.mu.RUnlock()
	if s.recovered && !n.srv.cfg.ConnectionStateRecovery.RunMiddlewares {
		mws = nil // Node's skipMiddlewares
	}
	for _, mw := range mws {
		if err := callMiddleware(mw, s); err != nil {
			s.endContext()
			s.unrestore()
			s.client.refuse(s, err)
			n.leave()
			return
		}
	}
	if !s.client.register(s, restored) {
		s.endContext() // the client went away while the middlewares ran
		s.unrestore()
		n.leave()
		return
	}
	n.mu.Lock()
	n.sockets[s.id] = s
	handlers := n.onConnection
	n.mu.Unlock()
	for _, h := range handlers {
		h(s)
	}
}

func callMiddleware(mw Middleware, s *Socket) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("server: middleware panicked: %v", r)
		}
	}()
	return mw(s)
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	delete(n.sockets, s.id)
	n.mu.Unlock()
	n.leave()
}

// enter counts a socket that starts connecting; false once the namespace
// was removed (the caller looks the name up again).
func (n *Namespace) enter() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.removed {
		return false
	}
	n.members++
	return true
}

// leave uncounts a socket that was refused or disconnected, and removes an
// empty dynamic child when the server is configured so.
func (n *Namespace) leave() {
	n.mu.Lock()
	n.members--
	empty := n.members == 0 && n.parent != nil && n.srv.cfg.CleanupEmptyChildNamespaces
	n.mu.Unlock()
	if empty {
		n.srv.removeChild(n)
	}
}
