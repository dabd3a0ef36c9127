package server

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

type socketState int

const (
	stateConnecting socketState = iota
	stateConnected
	stateClosing // disconnect decided, handlers not yet run
	stateClosed
)

type anyListener struct {
	id ListenerID
	h  AnyHandler
}

type outListener struct {
	id ListenerID
	h  OutgoingHandler
}

// Socket is one client's connection to one namespace.
//
// Handlers registered on a socket (events, acks with callbacks, timeouts,
// disconnection) run one at a time, in order, on a goroutine of the socket's
// own; a handler that blocks delays only this socket. All methods are safe
// for concurrent use.
type Socket struct {
	id        string
	nsp       *Namespace
	client    *client
	auth      json.RawMessage // the CONNECT payload, for Handshake
	born      int64           // creation time, Unix nanoseconds, for Handshake
	exec      serial
	hasOut    atomic.Bool   // outgoing listeners present
	leaving   atomic.Bool   // disconnection started: broadcasts skip it
	pid       string        // private session id, with connection state recovery on
	recovered bool          // restored from a session (set before the socket is shared)
	holding   atomic.Bool   // restoring: live deliveries wait in held (recovery.go)
	through   atomic.Uint64 // restored: logged packets up to this Seq were in the log the restore read

	mu        sync.Mutex
	state     socketState
	ctx       context.Context    // made on the first Context call
	cancel    context.CancelFunc // of ctx
	ended     bool               // the socket is gone: its context is done
	dataSet   bool               // data was set: nil is then nil, not the empty map
	data      any
	handlers  listenerMap  // made on the first On: most sockets use the namespace's
	hooks     *socketHooks // made on the first registration: most sockets have none
	acks      map[uint64]*pendingAck
	held      []heldPacket // while holding
	heldBytes int64

	sessMu  sync.Mutex // orders session snapshots (recovery.go)
	sessVer uint64     // version of the last snapshot, under sessMu
}

func newSocket(ns *Namespace, c *client, auth json.RawMessage) *Socket {
	s := &Socket{
		id:     newID(),
		nsp:    ns,
		client: c,
		auth:   auth,
		born:   time.Now().UnixNano(),
	}
	s.exec.group = &ns.srv.handlers
	s.exec.log = ns.srv.log
	return s
}

// socketHooks are a socket's own catch-all listeners, middlewares and
// disconnect and error handlers, kept apart because most sockets have
// none: six slice headers less per socket.
type socketHooks struct {
	anyIn           []anyListener
	anyOut          []outListener
	middlewares     []PacketMiddleware
	onDisconnecting []DisconnectHandler
	onDisconnect    []DisconnectHandler
	onError         []ErrorHandler
}

// noHooks is what a socket without hooks reads; never written.
var noHooks socketHooks

// hk returns the socket's hooks to change, making them. The caller holds
// s.mu.
func (s *Socket) hk() *socketHooks {
	if s.hooks == nil {
		s.hooks = new(socketHooks)
	}
	return s.hooks
}

// hooksOrNone returns the socket's hooks to read. The caller holds s.mu
// and copies what it needs before releasing it.
func (s *Socket) hooksOrNone() *socketHooks {
	if s.hooks == nil {
		return &noHooks
	}
	return s.hooks
}

// ID returns the socket's id: 20 characters, a new one per namespace
// connection, also the name of the room the socket is always in.
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake returns the details of the connection's first request, built
// at each call from what the connection keeps of its request: a socket
// holds no copy of them (most are read once, at connection). Keep the
// result rather than calling it in a loop.
func (s *Socket) Handshake() *Handshake { return s.buildHandshake() }

// buildHandshake returns a new Handshake of s.
func (s *Socket) buildHandshake() *Handshake {
	return newHandshake(s.client.conn.Request(), s.auth, time.Unix(0, s.born))
}

// ConnID returns the Engine.IO session id of the underlying connection.
func (s *Socket) ConnID() string { return s.client.conn.ID() }

// Transport returns the current transport: "polling" or "websocket".
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// Context returns a context canceled when the socket disconnects.
func (s *Socket) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		// Made on demand: most sockets are never asked, and a context
		// with its cancel func is a few hundred bytes per socket.
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.ended {
			s.cancel()
		}
	}
	return s.ctx
}

// endContext marks the socket gone: its context, made or to be made, is
// done.
func (s *Socket) endContext() {
	s.mu.Lock()
	s.ended = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected
}

// Data returns the application state attached to the socket (Node's
// socket.data), an empty map[string]any until SetData.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dataSet {
		// Made when first asked for: most sockets are never asked.
		s.data, s.dataSet = map[string]any{}, true
	}
	return s.data
}

// SetData replaces the application state attached to the socket. It is
// what FetchSockets reports, on any node.
//
// With connection state recovery on the Redis adapter, SetData on a
// connected socket returns once the socket's session is stored with the new
// data, so that another node recovers it even if this one dies next; if it
// could not be stored, the data is set all the same and the error matches
// ErrNotStored. Without, it returns nil.
func (s *Socket) SetData(v any) error {
	s.mu.Lock()
	s.data, s.dataSet = v, true
	s.mu.Unlock()
	return s.saveSession()
}

// DecodeData decodes the socket's data into v through its JSON form —
// exactly as RemoteSocket.DecodeData does on any node — so that code
// reading a socket's data works the same on local and fetched sockets. It
// fails with a *DecodeError (ErrDecode). Data returns the value itself.
func (s *Socket) DecodeData(v any) error {
	b, err := nodeJSON(s.Data())
	if err != nil {
		return parser.WrapDecodeError(-1, v, err)
	}
	return parser.WrapDecodeError(-1, v, json.Unmarshal(b, v))
}

// On adds a listener of an event for this socket, as Node's socket.on: every
// listener of the event runs, those of the namespace (Namespace.On) first,
// then the socket's in the order they were added. They share the Event:
// only the first Ack is sent. The ID removes it (Off).
func (s *Socket) On(event string, h EventHandler) ListenerID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handlers.add(event, h)
}

// Off removes the given listeners of an event added with On, or all of the
// socket's listeners of the event when no id is given. The namespace's
// listeners stay.
func (s *Socket) Off(event string, ids ...ListenerID) {
	s.mu.Lock()
	s.handlers.remove(event, ids)
	s.mu.Unlock()
}

// OnDisconnecting registers a handler called when the socket is about to
// disconnect; its rooms are still there.
func (s *Socket) OnDisconnecting(h DisconnectHandler) {
	s.mu.Lock()
	x := s.hk()
	x.onDisconnecting = append(x.onDisconnecting, h)
	s.mu.Unlock()
}

// OnDisconnect registers a handler called once the socket disconnected.
func (s *Socket) OnDisconnect(h DisconnectHandler) {
	s.mu.Lock()
	x := s.hk()
	x.onDisconnect = append(x.onDisconnect, h)
	s.mu.Unlock()
}

// OnError registers a handler for errors of the packet middlewares.
func (s *Socket) OnError(h ErrorHandler) {
	s.mu.Lock()
	x := s.hk()
	x.onError = append(x.onError, h)
	s.mu.Unlock()
}

// Use adds a packet middleware, run for every incoming event after the
// catch-all listeners and before the event's handler.
func (s *Socket) Use(mw PacketMiddleware) {
	s.mu.Lock()
	x := s.hk()
	x.middlewares = append(x.middlewares, mw)
	s.mu.Unlock()
}

// OnAny adds a catch-all listener for incoming events, called before the
// packet middlewares and the event's handler.
func (s *Socket) OnAny(h AnyHandler) ListenerID {
	s.mu.Lock()
	x := s.hk()
	defer s.mu.Unlock()
	id := newListenerID()
	x.anyIn = append(x.anyIn[:len(x.anyIn):len(x.anyIn)], anyListener{id, h})
	return id
}

// PrependAny adds a catch-all listener called before the others.
func (s *Socket) PrependAny(h AnyHandler) ListenerID {
	s.mu.Lock()
	x := s.hk()
	defer s.mu.Unlock()
	id := newListenerID()
	x.anyIn = append([]anyListener{{id, h}}, x.anyIn...)
	return id
}

// OffAny removes the given catch-all listeners, or all of them when none
// is given.
func (s *Socket) OffAny(ids ...ListenerID) {
	s.mu.Lock()
	x := s.hk()
	defer s.mu.Unlock()
	if len(ids) == 0 {
		x.anyIn = nil
		return
	}
	kept := x.anyIn[:0:0]
	for _, l := range x.anyIn {
		if !slices.Contains(ids, l.id) {
			kept = append(kept, l)
		}
	}
	x.anyIn = kept
}

// OnAnyOutgoing adds a catch-all listener for outgoing events: every emit
// to this socket and every broadcast it receives.
func (s *Socket) OnAnyOutgoing(h OutgoingHandler) ListenerID {
	s.mu.Lock()
	x := s.hk()
	defer s.mu.Unlock()
	id := newListenerID()
	x.anyOut = append(x.anyOut[:len(x.anyOut):len(x.anyOut)], outListener{id, h})
	s.hasOut.Store(true)
	return id
}

// PrependAnyOutgoing adds an outgoing catch-all listener called first.
func (s *Socket) PrependAnyOutgoing(h OutgoingHandler) ListenerID {
	s.mu.Lock()
	x := s.hk()
	defer s.mu.Unlock()
	id := newListenerID()
	x.anyOut = append([]outListener{{id, h}}, x.anyOut...)
	s.hasOut.Store(true)
	return id
}

// OffAnyOutgoing removes the given outgoing listeners, or all of them.
func (s *Socket) OffAnyOutgoing(ids ...ListenerID) {
	s.mu.Lock()
	x := s.hk()
	defer s.mu.Unlock()
	if len(ids) == 0 {
		x.anyOut = nil
	} else {
		kept := x.anyOut[:0:0]
		for _, l := range x.anyOut {
			if !slices.Contains(ids, l.id) {
				kept = append(kept, l)
			}
		}
		x.anyOut = kept
	}
	s.hasOut.Store(len(x.anyOut) > 0)
}

// Join adds the socket to rooms. Once the socket is disconnected it does
// nothing and returns ErrDisconnected (ErrClosed after Server.Close).
//
// With connection state recovery on the Redis adapter, Join (and Leave)
// returns once the socket's session is stored with its new rooms; if it
// could not be stored, the rooms are changed on this node all the same and
// the error matches ErrNotStored.
func (s *Socket) Join(rooms ...string) error {
	if err := s.roomsErr(); err != nil {
		return err
	}
	s.nsp.adapter.AddAll(s.seam(), rooms)
	return s.saveSession()
}

// Leave removes the socket from rooms. Once the socket is disconnected it
// has no rooms left, and Leave returns ErrDisconnected (ErrClosed after
// Server.Close).
func (s *Socket) Leave(rooms ...string) error {
	if err := s.roomsErr(); err != nil {
		return err
	}
	for _, r := range rooms {
		s.nsp.adapter.Del(s.id, r)
	}
	return s.saveSession()
}

// roomsErr is nil while the socket's rooms may change: connected, or
// disconnecting (its disconnecting handlers still see and change them).
func (s *Socket) roomsErr() error {
	s.mu.Lock()
	ok := s.state == stateConnected || s.state == stateClosing
	s.mu.Unlock()
	if !ok {
		return s.goneErr()
	}
	return nil
}

// goneErr is the error of a call on a socket that is no longer connected.
func (s *Socket) goneErr() error {
	if s.nsp.srv.isClosed() {
		return ErrClosed
	}
	return ErrDisconnected
}

// Rooms returns the socket's rooms, sorted; its own id is among them until
// it leaves that room. Empty once disconnected.
func (s *Socket) Rooms() []string {
	r := s.nsp.adapter.SocketRooms(s.id)
	if r == nil {
		return []string{}
	}
	sort.Strings(r)
	return r
}

// Disconnect disconnects the socket from its namespace (the client sees
// "io server disconnect"); with close, every namespace of the connection is
// disconnected and the connection closed.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.disconnectAll()
		return
	}
	s.disconnect()
}

// disconnect sends DISCONNECT and closes the socket.
func (s *Socket) disconnect() {
	s.closeWith(ReasonServerNamespaceDisconnect, func() {
		s.client.send(&parser.Packet{Type: parser.Disconnect, Nsp: s.nsp.name})
	})
}

// onClose starts the disconnection: the socket stops taking part at once,
// and its handlers run on its goroutine: disconnecting (rooms intact), then
// the rooms are left, then disconnect.
func (s *Socket) onClose(reason string) { s.closeWith(reason, nil) }

// closeWith is onClose, calling tell (when not nil) once the reason is
// decided and before anything else: the DISCONNECT packet goes out only
// then, so the client's reaction to it (closing its transport, read here
// as "transport close") cannot take the place of the server's reason.
func (s *Socket) closeWith(reason string, tell func()) {
	s.mu.Lock()
	if s.state != stateConnected {
		s.mu.Unlock()
		return
	}
	s.state = stateClosing
	s.leaving.Store(true)
	s.nsp.srv.closing.add() // done when the disconnect handlers returned
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
	if tell != nil {
		tell()
	}
	// Release handlers blocked on the socket before queueing the
	// disconnection handlers behind them.
	s.endContext()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
	s.client.unregister(s)
	s.exec.do(func() { s.finishClose(reason) })
}

func (s *Socket) finishClose(reason string) {
	defer s.nsp.srv.closing.done()
	s.mu.Lock()
	hs := s.hooksOrNone().onDisconnecting
	s.mu.Unlock()
	for _, h := range hs {
		h(s, reason)
	}
	sess := s.session(reason) // its rooms before it leaves them, as on Node
	s.nsp.adapter.DelAll(s.id)
	s.nsp.remove(s)
	if sess != nil {
		// Only now that the id is gone from the adapter and the namespace:
		// a restore of the session, which may follow at once, must not
		// find this socket there.
		s.nsp.recoverer().PersistSession(sess)
	} else if st := s.nsp.sessionStore(); st != nil && s.pid != "" {
		st.DiscardSession(s.pid) // it left for good
	}

	s.mu.Lock()
	s.state = stateClosed
	hs = s.hooksOrNone().onDisconnect
	s.mu.Unlock()
	for _, h := range hs {
		h(s, reason)
	}
}

// onPacket handles a packet for this socket, on the connection's read path.
func (s *Socket) onPacket(p *parser.Packet) {
	switch p.Type {
	case parser.Event, parser.BinaryEvent:
		ev, err := s.newEvent(p)
		if err != nil {
			s.client.close(ReasonForcedServerClose)
			return
		}
		// Counted until its handlers return; the read path waits when the
		// connection is over its budget (inbox.go).
		ev.size = packetSize(p)
		s.client.acquire(ev.size)
		s.exec.doOnReader(ev, s.client.conn)
	case parser.Ack, parser.BinaryAck:
		args, err := parser.NewRawArgs(p.Data, p.Attachments)
		if err != nil {
			s.client.close(ReasonForcedServerClose)
			return
		}
		s.resolveAck(p.ID, args)
	case parser.Disconnect:
		s.onClose(ReasonClientNamespaceDisconnect)
	}
}

func (s *Socket) newEvent(p *parser.Packet) (*Event, error) {
	raws, err := parser.NewRawArgs(p.Data, p.Attachments)
	if err != nil {
		return nil, err
	}
	return &Event{
		Name:    eventName(raws[0].JSON),
		Args:    Args(raws[1:]),
		sock:    s,
		ackID:   p.ID,
		wantAck: p.HasID,
	}, nil
}

// eventName returns the name of an event from its first element (valid
// JSON, checked by the decoder): the text of a string, and the JSON of
// anything else (a numeric event name).
func eventName(j []byte) string {
	if len(j) >= 2 && j[0] == '"' && j[len(j)-1] == '"' && bytes.IndexByte(j, '\\') < 0 {
		return string(j[1 : len(j)-1])
	}
	var name string
	if err := json.Unmarshal(j, &name); err != nil {
		return string(j)
	}
	return name
}

// dispatch runs on the socket's goroutine: catch-all listeners, packet
// middlewares, then the handler.
func (s *Socket) dispatch(ev *Event) {
	s.mu.Lock()
	if s.state != stateConnected {
		s.mu.Unlock()
		return
	}
	hooks := s.hooksOrNone()
	anyIn := hooks.anyIn
	mws := hooks.middlewares
	own := s.handlers[ev.Name]
	s.mu.Unlock()
	shared := s.nsp.listeners(ev.Name)
	for _, l := range anyIn {
		l.h(s, ev)
	}
	for _, mw := range mws {
		if err := mw(s, ev); err != nil {
			s.mu.Lock()
			ehs := s.hooksOrNone().onError
			s.mu.Unlock()
			for _, eh := range ehs {
				eh(s, err)
			}
			return
		}
	}
	for _, l := range shared {
		l.h(s, ev)
	}
	for _, l := range own {
		l.h(s, ev)
	}
}

// deliver queues a broadcast packet (adapter.Socket.Deliver).
func (s *Socket) deliver(p *adapter.Packet, flags adapter.Flags, ack adapter.AckFunc) {
	if s.leaving.Load() {
		return // it is still in its rooms until its disconnecting handlers ran
	}
	if t := s.through.Load(); t != 0 && p.Seq != 0 && p.Seq <= t {
		// Recovered: the restore read this packet from the log; the
		// subscription brings it late (recovery.go).
		return
	}
	if s.holding.Load() && s.hold(p, flags, ack) {
		return // restoring: queued after the missed packets (goLive)
	}
	s.deliverNow(p, flags, ack)
}

// deliverNow queues a broadcast packet on the connection.
func (s *Socket) deliverNow(p *adapter.Packet, flags adapter.Flags, ack adapter.AckFunc) {
	if ack != nil {
		if !s.addAck(p.ID, &pendingAck{bcast: ack}, 0) {
			return
		}
	}
	if s.hasOut.Load() {
		// Decoded once per packet, whatever the number of listeners.
		if event, args, err := p.Args(); err == nil {
			s.notifyOutgoing(event, Args(args))
		}
	}
	drained, _ := s.client.write(packetFrames(p), flags.Volatile, p.Paced(), true)
	if drained != nil {
		p.NoteCongested(drained, s.client.conn.CloseSlow)
	}
}

func (s *Socket) notifyOutgoing(event string, args Args) {
	s.mu.Lock()
	ls := s.hooksOrNone().anyOut
	s.mu.Unlock()
	for _, l := range ls {
		l.h(s, event, args)
	}
}

// info describes the socket for FetchSockets (adapter.Socket.Info).
func (s *Socket) info() adapter.SocketInfo {
	hs, _ := json.Marshal(s.buildHandshake())
	data, err := nodeJSON(s.Data())
	if err != nil {
		data = json.RawMessage("null")
	}
	return adapter.SocketInfo{ID: s.id, Handshake: hs, Rooms: s.Rooms(), Data: data, Local: s.seam()}
}
