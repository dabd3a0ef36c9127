package server

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/internal/smallmap"
	"github.com/ioswarm/ioswarm/parser"
)

// client is one Engine.IO connection and the namespace sockets on it. Its
// OnMessage runs on the connection's read path, one message at a time.
type client struct {
	srv  *Server
	conn *engineio.Conn
	dec  parser.Decoder // used only by OnMessage
	in   inbox          // what waits for handlers (inbox.go)

	mu sync.Mutex
	// sockets holds the client's sockets by namespace name, and nil for a
	// namespace whose middlewares are running (connecting).
	sockets      smallmap.Map[string, *Socket]
	closed       bool
	connectTimer *time.Timer
}

func newClient(s *Server, conn *engineio.Conn) *client {
	c := &client{
		srv:  s,
		conn: conn,
		dec:  parser.Decoder{MaxAttachments: s.cfg.MaxAttachments},
	}
	c.mu.Lock() // the timer's callback reads connectTimer
	c.connectTimer = time.AfterFunc(s.cfg.ConnectTimeout, c.onConnectTimeout)
	c.mu.Unlock()
	return c
}

func (c *client) onConnectTimeout() {
	c.mu.Lock()
	idle := c.connectedLocked() == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.close(ReasonForcedServerClose)
	}
}

// OnMessage implements engineio.Handler.
func (c *client) OnMessage(data []byte, binary bool) {
	pkt, err := c.dec.Add(data, binary)
	if err != nil {
		// As on Node: a decoding error closes the Engine.IO connection,
		// whose sockets then see "forced close".
		c.srv.log.Debug("server: invalid packet", "sid", c.conn.ID(), "err", err)
		c.conn.Close()
		return
	}
	if pkt != nil {
		c.onPacket(pkt)
		c.awaitBudget()
	}
}

func (c *client) onPacket(pkt *parser.Packet) {
	c.mu.Lock()
	s, known := c.sockets.Get(pkt.Nsp)
	busy := known && s == nil // connecting
	closed := c.closed
	if pkt.Type == parser.Connect && !known && !closed {
		c.sockets.Set(pkt.Nsp, nil)
	}
	c.mu.Unlock()
	if closed {
		return
	}
	switch {
	case pkt.Type == parser.Connect && s == nil && !busy:
		c.connect(pkt.Nsp, pkt.Data)
	case s != nil && pkt.Type != parser.Connect && pkt.Type != parser.ConnectError:
		s.onPacket(pkt)
	default:
		// A second CONNECT, a packet for a namespace not (yet) joined, or
		// a CONNECT_ERROR from the client: a protocol violation.
		c.close(ReasonForcedServerClose)
	}
}

func (c *client) connect(name string, auth json.RawMessage) {
	if len(auth) == 0 {
		auth = json.RawMessage("{}")
	}
	ns, err := c.srv.lookup(name, auth)
	if ns == nil {
		if err != nil {
			c.srv.log.Error("server: create namespace", "nsp", name, "err", err)
		}
		c.unmarkConnecting(name)
		c.sendConnectError(name, "Invalid namespace", nil)
		return
	}
	s, restored := c.restore(ns, auth)
	if s == nil {
		s = newSocket(ns, c, auth)
		if c.srv.cfg.ConnectionStateRecovery != nil {
			s.pid = newID()
		}
	}
	n := int64(len(auth))
	c.acquire(n)
	s.exec.do(func() {
		defer c.release(n)
		ns.add(s, restored)
	})
}

func (c *client) unmarkConnecting(name string) {
	c.mu.Lock()
	c.doneConnectingLocked(name)
	c.mu.Unlock()
}

// doneConnectingLocked forgets that name is connecting.
func (c *client) doneConnectingLocked(name string) {
	if s, ok := c.sockets.Get(name); ok && s == nil {
		c.sockets.Delete(name)
	}
}

// connectedLocked counts the connected sockets.
func (c *client) connectedLocked() int {
	n := 0
	for _, s := range c.sockets.All {
		if s != nil {
			n++
		}
	}
	return n
}

// refuse answers a CONNECT whose middlewares failed.
func (c *client) refuse(s *Socket, err error) {
	c.unmarkConnecting(s.nsp.name)
	var data any
	var ce *ConnectError
	if errors.As(err, &ce) {
		data = ce.Data
	}
	c.sendConnectError(s.nsp.name, err.Error(), data)
}

func (c *client) sendConnectError(nsp, msg string, data any) {
	type connectError struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	payload, atts, err := parser.AppendValue(nil, nil, connectError{msg, data})
	if err != nil {
		payload, atts, _ = parser.AppendValue(nil, nil, connectError{Message: msg})
	}
	c.send(&parser.Packet{Type: parser.ConnectError, Nsp: nsp, Data: payload, Attachments: atts})
}

// register makes s a connected socket of the client: it joins its own
// room and the CONNECT reply is sent. A recovered socket gets the packets it
// missed first, and the deliveries held while it was restored after it. It
// returns false when the client is gone.
func (c *client) register(s *Socket, restored adapter.Restored) bool {
	c.mu.Lock()
	c.doneConnectingLocked(s.nsp.name)
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.sockets.Set(s.nsp.name, s)
	c.mu.Unlock()
	c.stopConnectTimer()

	s.mu.Lock()
	s.state = stateConnected
	s.mu.Unlock()
	if !s.recovered {
		s.nsp.adapter.AddAll(s.seam(), []string{s.id})
		// Stored before the client learns its pid: a node that dies from
		// now on loses nothing of it. If Redis does not answer, the socket
		// connects all the same (it cannot be recovered elsewhere).
		if err := s.saveSession(); err != nil {
			c.srv.log.Warn("server: session not stored for recovery", "nsp", s.nsp.name, "id", s.id, "err", err)
		}
	}
	// Node writes the missed packets before the CONNECT reply; the official
	// client buffers them until it is connected, and keeps that buffer if
	// the connection breaks first — then replays it on top of the packets
	// its next recovery brings: duplicates. After the reply, each packet it
	// takes moves its offset, so a break anywhere loses and repeats nothing.
	c.send(&parser.Packet{Type: parser.Connect, Nsp: s.nsp.name, Data: s.connectReply()})
	s.sendMissed(restored.Missed)
	if s.recovered {
		s.goLive(restored)
	}
	return true
}

// unregister forgets a socket that left its namespace.
func (c *client) unregister(s *Socket) {
	c.mu.Lock()
	if cur, _ := c.sockets.Get(s.nsp.name); cur == s {
		c.sockets.Delete(s.nsp.name)
	}
	c.mu.Unlock()
}

// send encodes a protocol packet (CONNECT reply, CONNECT_ERROR,
// DISCONNECT) and queues it on the connection; it never waits.
func (c *client) send(p *parser.Packet) error {
	_, err := c.write(packetMessages(p), false, false, false)
	return err
}

// emit queues the messages of an EVENT or ACK of the application, pacing
// the caller while the connection's queue is congested (see write).
func (c *client) emit(msgs []*engineio.Message, volatile bool) error {
	drained, err := c.write(msgs, volatile, true, false)
	if drained != nil {
		c.awaitDrained(drained)
	}
	return err
}

// packetMessages encodes p: its text message, then one binary message per
// attachment.
func packetMessages(p *parser.Packet) []*engineio.Message {
	msgs := make([]*engineio.Message, 0, 1+len(p.Attachments))
	msgs = append(msgs, engineio.NewMessage(parser.AppendEncode(nil, p), false))
	for _, a := range p.Attachments {
		msgs = append(msgs, engineio.NewMessage(a, true))
	}
	return msgs
}

// write queues msgs on the connection. Volatile messages are dropped when
// the connection cannot take them at once. Otherwise, with paced, it
// returns the channel to wait for when the connection's queue is congested
// (engineio.Conn.SendPaced): the caller should wait before sending more.
// A broadcast (bcast) leaves the writing to engineio's writers
// (engineio.Conn.Enqueue); a packet for this client alone is written by
// the calling goroutine when the connection is idle.
func (c *client) write(msgs []*engineio.Message, volatile, paced, bcast bool) (<-chan struct{}, error) {
	if volatile {
		c.conn.SendVolatile(msgs...)
		return nil, nil
	}
	var drained <-chan struct{}
	var err error
	switch {
	case paced && bcast:
		drained, err = c.conn.EnqueuePaced(msgs...)
	case paced:
		drained, err = c.conn.SendPaced(msgs...)
	case bcast:
		err = c.conn.Enqueue(msgs...)
	default:
		err = c.conn.Send(msgs...)
	}
	if errors.Is(err, engineio.ErrClosed) {
		// The connection closed under the socket: callers see the server's
		// sentinels, not the transport's.
		err = ErrDisconnected
		if c.srv.isClosed() {
			err = ErrClosed
		}
	}
	return drained, err
}

// awaitDrained waits, at most the write timeout, until the connection's
// congested queue has been taken by its writer; a client that does not take
// it in that time is disconnected as a slow consumer.
func (c *client) awaitDrained(drained <-chan struct{}) {
	t := time.NewTimer(c.srv.writeTimeout())
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		c.conn.CloseSlow()
	}
}

// snapshot returns the client's sockets and marks the client closed when
// closing is set.
func (c *client) snapshot(closing bool) []*Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	if closing {
		c.closed = true
	}
	out := make([]*Socket, 0, c.sockets.Len())
	for _, s := range c.sockets.All {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// closeSockets disconnects every socket with reason, sending nothing.
func (c *client) closeSockets(reason string) {
	for _, s := range c.snapshot(true) {
		s.onClose(reason)
	}
}

// close ends the client from the server side: its sockets see reason and
// the connection is closed.
func (c *client) close(reason string) {
	c.closeSockets(reason)
	c.stopConnectTimer()
	c.conn.Close()
}

// disconnectAll implements Socket.Disconnect(true): every socket is told
// (DISCONNECT packet) then the connection is closed once they are written.
func (c *client) disconnectAll() {
	for _, s := range c.snapshot(true) {
		s.disconnect()
	}
	c.stopConnectTimer()
	c.conn.Close()
}

// stopConnectTimer stops the connect timeout, and lets the timer go.
func (c *client) stopConnectTimer() {
	c.mu.Lock()
	t := c.connectTimer
	c.connectTimer = nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
}

// OnClose implements engineio.Handler.
func (c *client) OnClose(reason string, _ error) {
	c.stopConnectTimer()
	c.closeSockets(reason)
	c.srv.removeClient(c)
}
