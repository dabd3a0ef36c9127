package server

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
)

// RecoveryConfig turns on connection state recovery (Node's
// connectionStateRecovery option): a client that lost its connection for a
// transport reason and comes back within MaxDisconnectionDuration gets its
// socket back — same id, rooms and data, Socket.Recovered true — and the
// packets broadcast to it meanwhile, in order, before anything live.
//
// The zero value is Node's defaults when the option is given:
// &RecoveryConfig{} means a window of 2 minutes and middlewares skipped for
// a recovered socket. Node's skipMiddlewares defaults to true, so the Go
// field says the opposite, RunMiddlewares, to keep false the default.
//
// Unlike Node, what is kept is bounded, per namespace, in count and bytes;
// the oldest entries go first. A client whose offset or session was pushed
// out gets a new session, as after the window.
//
// As on Node, with recovery on Socket.Emit (without ack, not volatile) goes
// through the adapter to the socket's own room, so that it is logged: a
// socket that left its own room gets none, and Emit no longer reports a
// connection that closed under it.
type RecoveryConfig struct {
	// MaxDisconnectionDuration is how long a disconnected socket's session
	// and the broadcast packets are kept (Node's maxDisconnectionDuration).
	// Zero means 2 minutes.
	MaxDisconnectionDuration time.Duration
	// RunMiddlewares runs the namespace's middlewares for a recovered
	// socket too (Node's skipMiddlewares: false). By default they are
	// skipped (Node's skipMiddlewares: true).
	RunMiddlewares bool
	// MaxPackets bounds the packet log of a namespace; zero means 10000.
	MaxPackets int
	// MaxPacketBytes bounds the same log in bytes (JSON, attachments and
	// rooms); zero means 32 MiB. The newest packet is kept even if it
	// alone is larger.
	MaxPacketBytes int64
	// MaxSessions bounds the sessions a namespace keeps; zero means 10000.
	MaxSessions int
	// MaxSessionBytes bounds them in bytes (ids, rooms, data as JSON);
	// zero means 16 MiB.
	MaxSessionBytes int64
}

func (c RecoveryConfig) withDefaults() RecoveryConfig {
	if c.MaxDisconnectionDuration <= 0 {
		c.MaxDisconnectionDuration = 2 * time.Minute
	}
	if c.MaxPackets <= 0 {
		c.MaxPackets = 10000
	}
	if c.MaxPacketBytes <= 0 {
		c.MaxPacketBytes = 32 << 20
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 10000
	}
	if c.MaxSessionBytes <= 0 {
		c.MaxSessionBytes = 16 << 20
	}
	return c
}

// recoverableReasons are the disconnect reasons after which a session is
// kept (Node's RECOVERABLE_DISCONNECT_REASONS): the transport went away, not
// the client or the application.
var recoverableReasons = map[string]bool{
	ReasonTransportError:     true,
	ReasonTransportClose:     true,
	ReasonForcedClose:        true,
	ReasonPingTimeout:        true,
	ReasonServerShuttingDown: true,
	ReasonForcedServerClose:  true,
}

// Recovery implements adapter.RecoveryNamespace.
func (n *nsSeam) Recovery() *adapter.RecoveryOptions {
	c := n.srv.cfg.ConnectionStateRecovery
	if c == nil {
		return nil
	}
	return &adapter.RecoveryOptions{
		MaxDisconnectionDuration: c.MaxDisconnectionDuration,
		MaxSessions:              c.MaxSessions,
		MaxSessionBytes:          c.MaxSessionBytes,
		MaxPackets:               c.MaxPackets,
		MaxPacketBytes:           c.MaxPacketBytes,
	}
}

// recoverer returns the namespace's adapter as a Recoverer, nil when
// recovery is off or the adapter cannot recover.
func (n *Namespace) recoverer() adapter.Recoverer {
	if n.srv.cfg.ConnectionStateRecovery == nil {
		return nil
	}
	r, _ := n.adapter.(adapter.Recoverer)
	return r
}

// sessionStore returns the namespace's adapter as a SessionStore (the
// sessions of connected sockets are stored outside the node), nil when
// recovery is off or the adapter keeps sessions in the node.
func (n *Namespace) sessionStore() adapter.SessionStore {
	if n.srv.cfg.ConnectionStateRecovery == nil {
		return nil
	}
	st, _ := n.adapter.(adapter.SessionStore)
	return st
}

// Recovered reports whether the socket's state was recovered after a
// temporary disconnection (Node's socket.recovered): it has its former id,
// rooms and data, and the packets it missed were sent before anything else.
func (s *Socket) Recovered() bool { return s.recovered }

// recoveryAuth is what the client adds to its CONNECT auth to recover:
// both must be strings.
type recoveryAuth struct {
	PID    *string `json:"pid"`
	Offset *string `json:"offset"`
}

// restore tries to recover the session named by auth. It returns the
// socket, holding its live deliveries, and what the restore found; nil when
// there is nothing to recover (a new socket is then made as usual). With a
// SessionStore it waits for the store (the adapter bounds the wait).
func (c *client) restore(ns *Namespace, auth json.RawMessage) (*Socket, adapter.Restored) {
	rec := ns.recoverer()
	if rec == nil {
		return nil, adapter.Restored{}
	}
	var ra recoveryAuth
	if json.Unmarshal(auth, &ra) != nil || ra.PID == nil || ra.Offset == nil {
		return nil, adapter.Restored{}
	}
	var s *Socket
	restored, ok := rec.RestoreSession(context.Background(), *ra.PID, *ra.Offset, func(sess *adapter.Session) adapter.Socket {
		if s != nil {
			s.endContext() // an earlier attempt of the adapter's
		}
		s = newSocket(ns, c, auth)
		s.id, s.pid, s.data, s.dataSet = sess.SID, sess.PID, sess.Data, true
		s.sessVer = sess.Version
		s.recovered = true
		s.holding.Store(true)
		return s.seam()
	})
	if !ok {
		if s != nil {
			s.endContext() // attached, then the restore failed: dropped
		}
		return nil, adapter.Restored{}
	}
	// Held until now, a late delivery of a packet the restore read is
	// dropped by goLive; from now on, by deliver: the subscription that
	// brings it may lag behind the restore by any time.
	s.through.Store(restored.Through)
	return s, restored
}

// unrestore makes a recovered socket that was refused (by a middleware, or
// because its client went away) leave the rooms it was restored into; its
// session is used up, as on Node.
func (s *Socket) unrestore() {
	if s.recovered {
		s.nsp.adapter.DelAll(s.id)
		if st := s.nsp.sessionStore(); st != nil {
			st.DiscardSession(s.pid)
		}
	}
}

// session returns what is kept of a socket closing for a recoverable
// reason, nil otherwise; called before it leaves its rooms, and persisted
// once it is gone (finishClose).
func (s *Socket) session(reason string) *adapter.Session {
	if !recoverableReasons[reason] || s.nsp.recoverer() == nil {
		return nil
	}
	return s.snapshot()
}

// snapshot returns the socket's session as it is now, with a version
// higher than every earlier snapshot's: a store given two snapshots in the
// wrong order keeps the newer. Nil when the socket has no session.
func (s *Socket) snapshot() *adapter.Session {
	if s.pid == "" {
		return nil
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	s.sessVer++
	data := s.Data()
	b, err := nodeJSON(data)
	if err != nil {
		b = json.RawMessage("null") // as FetchSockets reports data it cannot encode
	}
	return &adapter.Session{
		SID: s.id, PID: s.pid, Rooms: s.nsp.adapter.SocketRooms(s.id),
		Data: data, DataJSON: b, DataBytes: int64(len(b)), Version: s.sessVer,
	}
}

// saveSession stores the session of a connected socket when the adapter
// keeps sessions outside the node, and returns once it is stored. A
// failure matches ErrNotStored: the socket goes on, but a node that
// recovers it would not see the change.
func (s *Socket) saveSession() error {
	st := s.nsp.sessionStore()
	if st == nil || s.pid == "" {
		return nil
	}
	s.mu.Lock()
	connected := s.state == stateConnected
	s.mu.Unlock()
	if !connected {
		return nil // connecting: stored at connect; leaving: persisted then
	}
	if err := st.SaveSession(s.Context(), s.snapshot()); err != nil {
		return fmt.Errorf("%w: %w", ErrNotStored, err)
	}
	return nil
}

// heldPacket is a live delivery that came while a recovered socket was
// being restored.
type heldPacket struct {
	p     *adapter.Packet
	flags adapter.Flags
	ack   adapter.AckFunc
}

// hold keeps a live delivery while the socket is restoring; false once it
// is live (the caller delivers). The held packets are bounded like the
// connection's queue: past its limits the client is cut off as a slow
// consumer.
func (s *Socket) hold(p *adapter.Packet, flags adapter.Flags, ack adapter.AckFunc) bool {
	s.mu.Lock()
	if !s.holding.Load() {
		s.mu.Unlock()
		return false
	}
	n := int64(len(p.Data))
	for _, a := range p.Attachments {
		n += int64(len(a))
	}
	if len(s.held) >= s.nsp.srv.maxQueued() || s.heldBytes+n > s.nsp.srv.maxQueuedBytes() {
		s.mu.Unlock()
		s.client.conn.CloseSlow()
		return true
	}
	s.held = append(s.held, heldPacket{p, flags, ack})
	s.heldBytes += n
	s.mu.Unlock()
	return true
}

// maxQueued and maxQueuedBytes bound the deliveries held while a recovered
// socket is restored (the time its middlewares run, at most) as the
// connection's queue is bounded: held, they would be queued there.
func (s *Server) maxQueued() int {
	if n := s.cfg.MaxQueuedMessages; n > 0 {
		return n
	}
	return 4096
}

func (s *Server) maxQueuedBytes() int64 {
	if n := s.cfg.MaxQueuedBytes; n > 0 {
		return n
	}
	return 16 << 20
}

// sendMissed queues the packets a recovered socket missed, oldest first.
func (s *Socket) sendMissed(missed []*adapter.Packet) {
	for _, p := range missed {
		s.deliverNow(p, adapter.Flags{}, nil)
	}
}

// goLive queues every delivery held while the socket was restored, in
// order, until none is left, and only then lets deliveries through. A
// delivery that comes while the held ones are written is held too and
// written in the next round, so the order is the adapter's. A held packet
// the restore read from the log was among the missed ones, or not for the
// socket: it is dropped.
func (s *Socket) goLive(r adapter.Restored) {
	for {
		s.mu.Lock()
		batch := s.held
		s.held, s.heldBytes = nil, 0
		if len(batch) == 0 {
			s.holding.Store(false)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, h := range batch {
			if !r.Covers(h.p) {
				s.deliverNow(h.p, h.flags, h.ack)
			}
		}
	}
}

// connectReply is the CONNECT reply: sid, and pid when recovery is on.
func (s *Socket) connectReply() json.RawMessage {
	type reply struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}
	b, _ := json.Marshal(reply{s.id, s.pid})
	return b
}

// logEmit sends an emit to this socket through the adapter, as Node does
// with recovery on: it is logged and gets an offset, so the client can
// resume after it. Only EVENTs without ack that are not volatile.
func (s *Socket) logEmit(data json.RawMessage, atts [][]byte) error {
	p := adapter.NewPacket(s.nsp.name, data, atts)
	p.EnablePacing()
	// A store logs across the cluster only what it publishes: the emit
	// goes to the socket's room on every node then (the socket is on one).
	local := s.nsp.sessionStore() == nil
	err := s.nsp.adapter.Broadcast(p, adapter.BroadcastOptions{Rooms: []string{s.id}, Flags: adapter.Flags{Local: local}})
	p.WaitPaced(s.nsp.srv.writeTimeout())
	return err
}
