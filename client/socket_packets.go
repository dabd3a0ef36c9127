package client

import (
	"encoding/json"
	"fmt"

	"github.com/ioswarm/ioswarm/parser"
)

// What a socket does with its connection's events: the CONNECT it sends
// on a new connection, and the packets of its namespace, handled on the
// connection's reader goroutine (never blocking: handlers are queued on the
// socket's handler goroutine).

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
	s.early, s.earlyLen = nil, 0
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
	reg := s.reg
	acks := s.takeAcksLocked(nil)
	s.dropBufferLocked()
	s.notifyLocked(err)
	handlers := s.onConnectErr
	s.mu.Unlock()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
	s.queueConnectError(handlers, err)
	s.m.release(s, reg)
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
		if n := eventSize(ev); len(s.early) < maxEarlyEvents && s.earlyLen+n <= maxEarlyBytes {
			s.early = append(s.early, ev)
			s.earlyLen += n
		} else {
			s.m.opts.Logger.Warn("client: too many events before the CONNECT reply, dropped", "nsp", s.nsp, "event", name)
		}
		s.mu.Unlock()
		return
	}
	f := s.dispatchLocked(ev)
	s.mu.Unlock()
	n := eventSize(ev)
	s.in.acquire(n)
	s.exec.do(func() {
		defer s.in.release(n)
		f()
	})
	s.in.wait(c.done())
}

// maxEarlyEvents and maxEarlyBytes bound the events kept until the CONNECT
// reply (the server's default bound on a recovered session's missed
// packets).
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
	reg := s.reg
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
	s.m.release(s, reg)
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
	s.state, s.conn, s.id, s.early, s.earlyLen = stateConnecting, nil, "", nil, 0
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
