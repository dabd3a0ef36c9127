package client

import (
	"context"
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
	in   inbox // the events waiting for the handlers (inbox.go)

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
	reg       uint64       // counts the Connect calls that registered the socket with its manager
	early     []*Event     // received before the CONNECT reply
	earlyLen  int64        // their size

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
		s.reg++
	}
	reg := s.reg
	wait := make(chan error, 1)
	s.waiters = append(s.waiters, wait)
	s.mu.Unlock()
	if state != stateConnecting {
		if err := s.m.add(s, reg); err != nil {
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
	reg := s.reg
	acks := s.takeAcksLocked(nil)
	s.dropBufferLocked()
	s.notifyLocked(ErrDisconnected)
	s.mu.Unlock()
	for _, a := range acks {
		a.fail(s, ErrDisconnected)
	}
	if rs := s.m.release(s, reg); rs != nil {
		<-rs.done
		s.m.exec.waitIdle()
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
	reg := s.reg
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
	if rs := s.m.release(s, reg); rs != nil {
		<-rs.done
		s.m.exec.waitIdle()
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

// goneErrLocked is the error of a call on a socket that cannot send.
func (s *Socket) goneErrLocked() error {
	if s.state == stateClosed {
		return ErrClosed
	}
	return ErrDisconnected
}
