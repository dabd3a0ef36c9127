package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ioswarm/ioswarm/parser"
)

// sockState is where a socket is in its life.
type sockState int

const (
	// stateIdle: not connected yet (NewSocket); emits are buffered.
	stateIdle sockState = iota
	// stateConnecting: active, waiting for the connection or for the
	// server's CONNECT reply (at first, and while reconnecting).
	stateConnecting
	stateConnected
	// stateDown: disconnected by the server, refused, out of reconnection
	// attempts, or a Connect that failed; Connect may try again.
	stateDown
	// stateClosed: Close was called.
	stateClosed
)

// Socket is a connection to one namespace of a server (the JS client's
// Socket), over its Manager's Engine.IO connection. Every method is safe
// for concurrent use. Its handlers run on one goroutine per socket, one at
// a time, in the order the packets arrived; see EventHandler.
type Socket struct {
	m    *Manager
	nsp  string
	auth any
	exec serial

	mu        sync.Mutex
	state     sockState
	conn      conn // the connection the CONNECT was sent on; nil when none
	id        string
	pid       string // the session's private id, for recovery
	offset    string // the offset of the last event received, for recovery
	hasOffset bool
	recovered bool
	acks      map[uint64]*pendingAck
	nextAckID uint64
	buf       []*outPacket // emits waiting for a reconnection
	bufBytes  int
	bufFrames int
	waiters   []chan error // Dial and Manager.Socket, until connected or failed
	early     []*Event     // received before the CONNECT reply

	events       map[string][]listener[EventHandler]
	anyIn        []listener[AnyHandler]
	anyOut       []listener[OutgoingHandler]
	onConnect    []ConnectHandler
	onDisconnect []DisconnectHandler
	onConnectErr []ConnectErrorHandler
}

func newSocket(m *Manager, nsp string, auth any) (*Socket, error) {
	if _, ok := auth.(func() any); !ok {
		if _, err := encodeAuth(auth); err != nil {
			return nil, err
		}
	}
	s := &Socket{m: m, nsp: nsp, auth: auth, acks: make(map[uint64]*pendingAck)}
	s.exec.log = m.opts.Logger
	return s, nil
}

// ID returns the socket's id, given by the server; "" while disconnected.
func (s *Socket) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() string { return s.nsp }

// Manager returns the socket's manager.
func (s *Socket) Manager() *Manager { return s.m }

// Connected reports whether the socket is connected to its namespace.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected
}

// Recovered reports whether the server restored the socket's session at
// the last (re)connection: same id, rooms and data, and the events missed
// while disconnected delivered (connection state recovery, on the server).
func (s *Socket) Recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

// On adds a listener of an event; every listener of the event runs, in the
// order they were added, and they share the Event: only the first Ack is
// sent. The ID removes it (Off).
func (s *Socket) On(event string, h EventHandler) ListenerID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.events == nil {
		s.events = make(map[string][]listener[EventHandler])
	}
	var id ListenerID
	s.events[event], id = appendListener(s.events[event], h)
	return id
}

// Off removes the given listeners of an event, or all of them when no id
// is given.
func (s *Socket) Off(event string, ids ...ListenerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ls := removeListeners(s.events[event], ids); len(ls) > 0 {
		s.events[event] = ls
	} else {
		delete(s.events, event)
	}
}

// OnAny adds a catch-all listener of incoming events, called before the
// event's own listeners.
func (s *Socket) OnAny(h AnyHandler) ListenerID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id ListenerID
	s.anyIn, id = appendListener(s.anyIn, h)
	return id
}

// OffAny removes the given catch-all listeners, or all of them.
func (s *Socket) OffAny(ids ...ListenerID) {
	s.mu.Lock()
	s.anyIn = removeListeners(s.anyIn, ids)
	s.mu.Unlock()
}

// OnAnyOutgoing adds a catch-all listener of outgoing events, called as
// each event is sent.
func (s *Socket) OnAnyOutgoing(h OutgoingHandler) ListenerID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id ListenerID
	s.anyOut, id = appendListener(s.anyOut, h)
	return id
}

// OffAnyOutgoing removes the given outgoing listeners, or all of them.
func (s *Socket) OffAnyOutgoing(ids ...ListenerID) {
	s.mu.Lock()
	s.anyOut = removeListeners(s.anyOut, ids)
	s.mu.Unlock()
}

// OnConnect registers a handler called at every connection to the
// namespace, reconnections included. A socket returned by Dial is
// connected already: the handler runs from the next reconnection on.
func (s *Socket) OnConnect(h ConnectHandler) {
	s.mu.Lock()
	s.onConnect = append(s.onConnect, h)
	s.mu.Unlock()
}

// OnDisconnect registers a handler called with the reason of every
// disconnection (one of the Reason constants).
func (s *Socket) OnDisconnect(h DisconnectHandler) {
	s.mu.Lock()
	s.onDisconnect = append(s.onDisconnect, h)
	s.mu.Unlock()
}

// OnConnectError registers a handler called when a connection attempt
// fails; see ConnectErrorHandler.
func (s *Socket) OnConnectError(h ConnectErrorHandler) {
	s.mu.Lock()
	s.onConnectErr = append(s.onConnectErr, h)
	s.mu.Unlock()
}

// Connect connects the socket to its namespace, opening the manager's
// connection if needed, and returns once the server accepted it. It
// returns nil at once for a connected socket, and ErrClosed after Close.
// A socket disconnected for good (by the server, refused, or out of
// reconnection attempts) may Connect again, as with the JS client's
// socket.connect(). It fails with the server's refusal (a *ConnectError),
// the error of the first connection attempt (not retried), or ctx's error;
// the socket then stays disconnected. On a socket that is reconnecting,
// Connect waits for the reconnection, which goes on whatever the wait
// gives.
func (s *Socket) Connect(ctx context.Context) error {
	s.mu.Lock()
	state := s.state
	switch state {
	case stateClosed:
		s.mu.Unlock()
		return ErrClosed
	case stateConnected:
		s.mu.Unlock()
		return nil
	case stateIdle, stateDown:
		s.state = stateConnecting
	}
	wait := make(chan error, 1)
	s.waiters = append(s.waiters, wait)
	s.mu.Unlock()
	if state != stateConnecting {
		if err := s.m.add(s); err != nil {
			s.abort()
			return err
		}
	}
	// A socket that was reconnecting already keeps reconnecting whatever
	// this wait gives; one that this call started stops on failure.
	select {
	case err := <-wait:
		if err != nil && state != stateConnecting {
			s.abort()
		}
		return err
	case <-ctx.Done():
		if state != stateConnecting {
			s.abort()
		}
		return ctx.Err()
	}
}

// abort ends a connection attempt that failed: the socket is down, and
// with the manager's last socket the connection goroutine ends.
func (s *Socket) abort() {
	s.mu.Lock()
	if s.state != stateConnecting {
		s.mu.Unlock()
		return
	}
	s.state, s.conn = stateDown, nil
	acks := s.takeAcksLocked(nil)
	s.dropBufferLocked()
	s.notifyLocked(ErrDisconnected)
	s.mu.Unlock()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
	if rs := s.m.release(s); rs != nil {
		<-rs.done
	}
}

// Close disconnects the socket from its namespace (the server sees
// "client namespace disconnect"), ends its pending acknowledgements with
// ErrClosed and drops its buffered emits; its disconnect handlers get
// "io client disconnect" when it was connected. With the manager's last
// socket, the connection is closed. Close returns once the socket's
// handlers have run and, if the connection was closed, its goroutines have
// ended — except for a Close called from one of the socket's own handlers,
// which does not wait for that handler. Later calls return nil.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return nil
	}
	was := s.state == stateConnected
	c := s.conn
	s.state, s.conn, s.id = stateClosed, nil, ""
	acks := s.takeAcksLocked(nil)
	s.dropBufferLocked()
	s.notifyLocked(ErrClosed)
	handlers := s.onDisconnect
	s.mu.Unlock()

	if was {
		_ = c.send(frame{data: parser.AppendEncode(nil, &parser.Packet{Type: parser.Disconnect, Nsp: s.nsp})})
		s.queueDisconnect(handlers, ReasonIOClientDisconnect)
	}
	for _, a := range acks {
		a.fail(s, ErrClosed)
	}
	if rs := s.m.release(s); rs != nil {
		<-rs.done
	}
	s.exec.closeAndWait()
	return nil
}

func (s *Socket) notifyLocked(err error) {
	for _, ch := range s.waiters {
		ch <- err
	}
	s.waiters = nil
}

// onOpen sends the socket's CONNECT on a new connection.
func (s *Socket) onOpen(c conn) {
	auth := s.auth
	if f, ok := auth.(func() any); ok {
		auth = f() // outside the lock: user code
	}
	s.mu.Lock()
	if s.state != stateConnecting {
		s.mu.Unlock()
		return
	}
	s.conn = c
	payload, err := encodeAuth(auth)
	if err == nil && s.pid != "" {
		payload = withSession(payload, s.pid, s.offset, s.hasOffset)
	}
	s.mu.Unlock()
	if err != nil {
		s.connectFailed(c, err)
		return
	}
	_ = c.send(frame{data: parser.AppendEncode(nil, &parser.Packet{Type: parser.Connect, Nsp: s.nsp, Data: payload})})
}

// encodeAuth encodes the CONNECT payload: a JSON object, or nothing.
func encodeAuth(auth any) (json.RawMessage, error) {
	if auth == nil {
		return nil, nil
	}
	data, atts, err := parser.AppendValue(nil, nil, auth)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAuth, err)
	}
	if string(data) == "null" {
		return nil, nil
	}
	if len(atts) > 0 || len(data) == 0 || data[0] != '{' {
		return nil, ErrInvalidAuth
	}
	return data, nil
}

// withSession puts pid and offset first in the CONNECT payload, as the JS
// client's Object.assign({pid, offset}, auth) does: a member of auth with
// the same name comes later and wins, in Go's decoder as in JavaScript's.
func withSession(auth json.RawMessage, pid, offset string, hasOffset bool) json.RawMessage {
	out := append([]byte(`{"pid":`), parser.AppendJSONString(nil, pid)...)
	if hasOffset {
		out = append(out, `,"offset":`...)
		out = parser.AppendJSONString(out, offset)
	}
	if len(auth) > 2 { // more than "{}"
		out = append(out, ',')
		out = append(out, auth[1:]...)
		return out
	}
	return append(out, '}')
}

// onPacket handles a packet of the socket's namespace, on the connection's
// reader goroutine: it must not block.
func (s *Socket) onPacket(c conn, p *parser.Packet) {
	switch p.Type {
	case parser.Connect:
		s.onConnectReply(c, p)
	case parser.ConnectError:
		s.connectFailed(c, connectError(p.Data))
	case parser.Event, parser.BinaryEvent:
		s.onEvent(c, p)
	case parser.Ack, parser.BinaryAck:
		args, err := parser.NewRawArgs(p.Data, p.Attachments)
		if err != nil {
			return
		}
		if a := s.takeAck(p.ID); a != nil {
			a.resolve(s, Args(args))
		}
	case parser.Disconnect:
		s.onServerDisconnect(c)
	}
}

// errV2 is the JS client's error for a CONNECT reply without a sid.
const errV2 = "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible (more information here: https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)"

func (s *Socket) onConnectReply(c conn, p *parser.Packet) {
	var reply struct {
		SID string `json:"sid"`
		PID string `json:"pid"`
	}
	if json.Unmarshal(p.Data, &reply) != nil || reply.SID == "" {
		s.connectFailed(c, &ConnectError{Message: errV2})
		return
	}
	s.mu.Lock()
	if s.state != stateConnecting || s.conn != c {
		s.mu.Unlock()
		return
	}
	s.state, s.id = stateConnected, reply.SID
	s.recovered = reply.PID != "" && reply.PID == s.pid
	s.pid = reply.PID
	early := make([]func(), len(s.early))
	for i, ev := range s.early {
		early[i] = s.dispatchLocked(ev)
	}
	s.early = nil
	sent := s.flushLocked(c)
	s.notifyLocked(nil)
	handlers, out := s.onConnect, s.anyOut
	s.mu.Unlock()
	for _, f := range early {
		s.exec.do(f)
	}
	s.queueOutgoing(out, sent)
	if len(handlers) > 0 {
		s.exec.do(func() {
			for _, h := range handlers {
				h()
			}
		})
	}
}

// connectFailed handles the server's refusal (or a CONNECT payload that
// could not be made): the socket is down for good, as in the JS client.
func (s *Socket) connectFailed(c conn, err error) {
	s.mu.Lock()
	if s.state != stateConnecting || s.conn != c {
		s.mu.Unlock()
		return
	}
	s.state, s.conn = stateDown, nil
	acks := s.takeAcksLocked(nil)
	s.dropBufferLocked()
	s.notifyLocked(err)
	handlers := s.onConnectErr
	s.mu.Unlock()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
	s.queueConnectError(handlers, err)
	s.m.release(s)
}

// connectError reads a CONNECT_ERROR payload: {"message": …, "data": …},
// or a bare string.
func connectError(data json.RawMessage) *ConnectError {
	var obj struct {
		Message string `json:"message"`
		Data    any    `json:"data"`
	}
	if json.Unmarshal(data, &obj) == nil {
		return &ConnectError{Message: obj.Message, Data: obj.Data}
	}
	var msg string
	_ = json.Unmarshal(data, &msg)
	return &ConnectError{Message: msg}
}

// onOpenError handles a failed connection attempt: a socket waiting for its
// first connection gets the error, and its connect_error handlers run.
func (s *Socket) onOpenError(err error) {
	s.mu.Lock()
	if s.state != stateConnecting {
		s.mu.Unlock()
		return
	}
	s.notifyLocked(err)
	handlers := s.onConnectErr
	s.mu.Unlock()
	s.queueConnectError(handlers, err)
}

func (s *Socket) onEvent(c conn, p *parser.Packet) {
	raws, err := parser.NewRawArgs(p.Data, p.Attachments)
	if err != nil || len(raws) == 0 {
		return
	}
	var name string
	if raws[0].Decode(&name) != nil {
		name = string(raws[0].JSON) // a numeric event name
	}
	ev := &Event{Name: name, Args: Args(raws[1:])}
	if p.HasID {
		id := p.ID
		ev.ack = func(args []any) error { return s.sendAck(c, id, args) }
	}
	s.mu.Lock()
	if s.conn != c || (s.state != stateConnected && s.state != stateConnecting) {
		s.mu.Unlock()
		return
	}
	// With a session, the last string argument is the event's offset in
	// the server's log (the JS client takes it the same way).
	if s.pid != "" && !p.HasID && len(raws) > 1 {
		if last := raws[len(raws)-1]; len(last.JSON) > 0 && last.JSON[0] == '"' && last.Decode(&s.offset) == nil {
			s.hasOffset = true
		}
	}
	if s.state == stateConnecting {
		// Before the CONNECT reply: the Node.js server sends the packets a
		// recovered session missed first. They are handled once connected,
		// as the JS client's receive buffer does.
		if len(s.early) < maxEarlyEvents {
			s.early = append(s.early, ev)
		} else {
			s.m.opts.Logger.Warn("client: too many events before the CONNECT reply, dropped", "nsp", s.nsp, "event", name)
		}
		s.mu.Unlock()
		return
	}
	f := s.dispatchLocked(ev)
	s.mu.Unlock()
	s.exec.do(f)
}

// maxEarlyEvents bounds the events kept until the CONNECT reply (the
// server's default bound on a recovered session's missed packets).
const maxEarlyEvents = 10000

// dispatchLocked returns what runs ev's listeners, those registered now.
func (s *Socket) dispatchLocked(ev *Event) func() {
	anyIn, ls := s.anyIn, s.events[ev.Name]
	return func() {
		for _, l := range anyIn {
			l.h(ev)
		}
		for _, l := range ls {
			l.h(ev)
		}
	}
}

func (s *Socket) onServerDisconnect(c conn) {
	s.mu.Lock()
	if s.conn != c || (s.state != stateConnected && s.state != stateConnecting) {
		s.mu.Unlock()
		return
	}
	was := s.state == stateConnected
	s.state, s.conn, s.id = stateDown, nil, ""
	acks := s.takeAcksLocked(nil)
	s.dropBufferLocked()
	s.notifyLocked(ErrDisconnected)
	handlers := s.onDisconnect
	s.mu.Unlock()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
	if was {
		s.queueDisconnect(handlers, ReasonIOServerDisconnect)
	}
	s.m.release(s)
}

// onClose handles the end of connection c: the socket waits for the
// reconnection. Acknowledgements of events already sent end with
// ErrDisconnected (their answer was lost with the connection); those of
// buffered events stay, as in the JS client.
func (s *Socket) onClose(c conn, reason string) {
	s.mu.Lock()
	if s.conn != c || (s.state != stateConnected && s.state != stateConnecting) {
		s.mu.Unlock()
		return
	}
	was := s.state == stateConnected
	s.state, s.conn, s.id, s.early = stateConnecting, nil, "", nil
	acks := s.takeAcksLocked(s.buf)
	handlers := s.onDisconnect
	s.mu.Unlock()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
	if was {
		s.queueDisconnect(handlers, reason)
	}
}

// onGiveUp handles the end of reconnection: the socket is down for good.
func (s *Socket) onGiveUp() {
	s.mu.Lock()
	if s.state != stateConnecting && s.state != stateConnected {
		s.mu.Unlock()
		return
	}
	s.state, s.conn, s.id = stateDown, nil, ""
	acks := s.takeAcksLocked(nil)
	s.dropBufferLocked()
	s.notifyLocked(ErrDisconnected)
	s.mu.Unlock()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
}

func (s *Socket) queueDisconnect(handlers []DisconnectHandler, reason string) {
	if len(handlers) == 0 {
		return
	}
	s.exec.do(func() {
		for _, h := range handlers {
			h(reason)
		}
	})
}

func (s *Socket) queueConnectError(handlers []ConnectErrorHandler, err error) {
	if len(handlers) == 0 {
		return
	}
	s.exec.do(func() {
		for _, h := range handlers {
			h(err)
		}
	})
}

// goneErrLocked is the error of a call on a socket that cannot send.
func (s *Socket) goneErrLocked() error {
	if s.state == stateClosed {
		return ErrClosed
	}
	return ErrDisconnected
}
