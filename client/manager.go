package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/parser"
)

// Manager is one Engine.IO connection to a server, shared by the sockets of
// any number of namespaces (the JS client's Manager): it opens the
// connection when its first socket needs it, reconnects after a transport
// loss with exponential backoff, and closes it when its last socket is
// closed. Every method is safe for concurrent use.
//
// Locks: Manager.mu and Socket.mu are never held together (a socket calls
// release after unlocking; the manager calls sockets after unlocking).
// Under Socket.mu, the socket may take its serial's lock and the engine's
// (send never blocks); the engine calls onMessage without its lock. No lock
// is held while user code runs.
type Manager struct {
	base string // scheme://host of the server, for the engine
	opts Options
	dial dialFunc
	rand func() float64 // jitter source, math/rand/v2's Float64

	mu      sync.Mutex
	sockets map[string]*Socket // the active sockets, by namespace
	regs    map[*Socket]uint64 // the Connect call (Socket.reg) each of them is registered by
	conn    conn               // the open connection, nil while none
	kill    chan string        // closes conn from its serve (see CloseTransport)
	run     *runState          // the connection goroutine, nil when none
	hooks   managerHooks
	exec    serial // runs the hooks
}

// runState is one life of the manager's connection goroutine: it opens the
// connection, waits for it to end, and reconnects, until no active socket
// is left.
type runState struct {
	ctx      context.Context // done when the goroutine must end
	stop     context.CancelFunc
	done     chan struct{} // closed once the goroutine has ended
	stopping bool          // stop was called (under Manager.mu)
}

// NewManager returns a Manager for the server at rawURL ("http://host:port",
// "https://…"; "ws" and "wss" are read as "http" and "https"). The URL's
// path is not used (namespaces are given to Socket); its query is sent to
// the server when opts.Query is nil. No connection is made until Socket.
func NewManager(rawURL string, opts Options) (*Manager, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("client: unsupported URL scheme %q in %q", u.Scheme, rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: no host in %q", rawURL)
	}
	if opts.Query == nil && u.RawQuery != "" {
		opts.Query = u.Query()
	}
	opts.Manager = nil
	m := &Manager{
		base:    u.Scheme + "://" + u.Host,
		opts:    opts.withDefaults(),
		dial:    dialEngine,
		rand:    rand.Float64,
		sockets: make(map[string]*Socket),
		regs:    make(map[*Socket]uint64),
	}
	m.exec.log = m.opts.Logger
	return m, nil
}

// Socket opens a socket on namespace nsp ("/" when empty) with auth as the
// CONNECT payload (see Options.Auth), opening the connection if needed, and
// returns once the server accepted it: NewSocket, then Connect. It fails
// with the server's refusal (a *ConnectError), the error of the first
// connection attempt, ctx's error, or ErrNamespaceInUse when the manager
// has an active socket on nsp.
func (m *Manager) Socket(ctx context.Context, nsp string, auth any) (*Socket, error) {
	s, err := m.NewSocket(nsp, auth)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// NewSocket returns a socket on namespace nsp ("/" when empty) that is not
// connected yet: add its listeners, then Connect. Listeners added before
// Connect see the events the server sends right at connection (a welcome
// message), which a socket returned connected by Socket or Dial may miss.
// Emits made before Connect are buffered and sent once connected.
func (m *Manager) NewSocket(nsp string, auth any) (*Socket, error) {
	if nsp == "" {
		nsp = "/"
	} else if !strings.HasPrefix(nsp, "/") {
		nsp = "/" + nsp
	}
	return newSocket(m, nsp, auth)
}

// Close closes every socket of the manager (see Socket.Close), and with
// the last one the connection. The manager may be used again.
func (m *Manager) Close() error {
	m.mu.Lock()
	socks := m.activeLocked()
	rs := m.run
	m.mu.Unlock()
	for _, s := range socks {
		_ = s.Close()
	}
	if rs != nil {
		<-rs.done
	}
	m.exec.waitIdle()
	return nil
}

// add registers an active socket for its Connect call number reg,
// starting the connection goroutine if there is none, and sends its
// CONNECT when the connection is open.
//
// The socket may still be registered by an earlier Connect: it went down
// (its state says so, which is why Connect came here) and its release is
// on its way, made after the socket unlocked. That release must not
// unregister the new registration, so it names the one it ends.
func (m *Manager) add(s *Socket, reg uint64) error {
	for {
		m.mu.Lock()
		if cur := m.sockets[s.nsp]; cur == s {
			m.regs[s] = reg
			c := m.conn
			m.mu.Unlock()
			if c != nil {
				s.onOpen(c)
			}
			return nil
		} else if cur != nil {
			m.mu.Unlock()
			return ErrNamespaceInUse
		}
		if rs := m.run; rs != nil && rs.stopping {
			// The last socket just left: let that goroutine end first.
			m.mu.Unlock()
			<-rs.done
			continue
		}
		m.sockets[s.nsp] = s
		m.regs[s] = reg
		c := m.conn
		if m.run == nil {
			ctx, stop := context.WithCancel(context.Background())
			m.run = &runState{ctx: ctx, stop: stop, done: make(chan struct{})}
			go m.loop(m.run)
		}
		m.mu.Unlock()
		if c != nil {
			s.onOpen(c)
		}
		return nil
	}
}

// release unregisters a socket that is no longer active, unless a later
// Connect registered it again (reg is the registration that ended). When
// it was the last one, the connection goroutine is told to end, and
// returned so that the caller may wait for it; release itself never waits
// (it runs on the connection's reader for a server's DISCONNECT).
func (m *Manager) release(s *Socket, reg uint64) *runState {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sockets[s.nsp] == s && m.regs[s] == reg {
		delete(m.sockets, s.nsp)
		delete(m.regs, s)
	}
	rs := m.run
	if len(m.sockets) > 0 || rs == nil {
		return nil
	}
	if !rs.stopping {
		rs.stopping = true
		rs.stop()
	}
	return rs
}

func (m *Manager) activeLocked() []*Socket {
	out := make([]*Socket, 0, len(m.sockets))
	for _, s := range m.sockets {
		out = append(out, s)
	}
	return out
}

func (m *Manager) active() []*Socket {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.activeLocked()
}

// loop is the connection goroutine: open, serve until the connection ends,
// wait, reopen — as the JS client's Manager reconnects.
func (m *Manager) loop(rs *runState) {
	defer func() {
		m.mu.Lock()
		if m.run == rs {
			m.run = nil
		}
		m.mu.Unlock()
		close(rs.done)
	}()
	bo := backoff{min: m.opts.ReconnectionDelay, max: m.opts.ReconnectionDelayMax, jitter: *m.opts.RandomizationFactor}
	attempt := 0 // the reconnection attempt under way; 0 for a first connection
	for {
		if attempt > 0 {
			m.hooks.attempt(m, attempt)
		}
		c, kill, err := m.open(rs)
		if err == nil {
			if attempt > 0 {
				m.hooks.reconnect(m, attempt)
			}
			attempt = 0
			bo.reset()
			if m.serve(rs, c, kill) {
				return
			}
		} else {
			if rs.ctx.Err() != nil {
				return
			}
			for _, s := range m.active() {
				s.onOpenError(err)
			}
			if attempt > 0 {
				m.hooks.reconnectError(m, err)
			}
		}
		if !m.opts.reconnection() {
			m.giveUp(rs)
			return
		}
		if m.opts.ReconnectionAttempts > 0 && bo.attempts >= m.opts.ReconnectionAttempts {
			m.hooks.reconnectFailed(m)
			m.giveUp(rs)
			return
		}
		if !rs.sleep(bo.duration(m.rand())) {
			return
		}
		attempt = bo.attempts
	}
}

// open dials the server, within Options.Timeout. kill receives a reason to
// close the connection with, from its reader (a packet that does not parse).
func (m *Manager) open(rs *runState) (conn, chan string, error) {
	ctx, cancel := context.WithTimeout(rs.ctx, m.opts.Timeout)
	defer cancel()
	var (
		c      conn
		ready  = make(chan struct{})
		kill   = make(chan string, 1)
		dec    parser.Decoder
		broken bool
	)
	onMessage := func(data []byte, binary bool) {
		<-ready // c is set
		if c == nil || broken {
			return
		}
		p, err := dec.Add(data, binary)
		if err != nil {
			broken = true
			kill <- ReasonParseError
			return
		}
		if p != nil {
			m.route(c, p)
		}
	}
	c, err := m.dial(ctx, m.base, &m.opts, onMessage)
	close(ready)
	if err != nil {
		return nil, nil, err
	}
	return c, kill, nil
}

// serve sends the CONNECT of every active socket on c, waits until c ends,
// and tells the sockets. It reports whether the goroutine must end.
func (m *Manager) serve(rs *runState, c conn, kill chan string) (stopped bool) {
	m.mu.Lock()
	m.conn, m.kill = c, kill
	socks := m.activeLocked()
	m.mu.Unlock()
	for _, s := range socks {
		s.onOpen(c)
	}
	var reason string
	select {
	case <-c.done():
		reason = c.reason()
	case reason = <-kill:
		_ = c.close()
	case <-rs.ctx.Done():
		_ = c.close()
		stopped = true
	}
	m.mu.Lock()
	m.conn, m.kill = nil, nil
	socks = m.activeLocked()
	m.mu.Unlock()
	if !stopped {
		for _, s := range socks {
			s.onClose(c, reason)
		}
	}
	return stopped || rs.ctx.Err() != nil
}

// Transport returns the transport of the open connection, "polling" or
// "websocket" (the JS client's socket.io.engine.transport.name), or ""
// while there is none.
func (m *Manager) Transport() string {
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	if c == nil {
		return ""
	}
	return c.transport()
}

// CloseTransport closes the open Engine.IO connection, if any, as a network
// failure would: no DISCONNECT packet is sent, the sockets see
// ReasonForcedClose and the manager reconnects them (unless reconnection is
// off), recovering their sessions where the server allows it. It is the
// JS client's socket.io.engine.close(), the way to exercise reconnection
// and connection state recovery. It does not wait: the manager's goroutine
// closes the connection, so it may be called from a handler.
func (m *Manager) CloseTransport() {
	m.mu.Lock()
	kill := m.kill
	m.mu.Unlock()
	if kill != nil {
		select {
		case kill <- ReasonForcedClose:
		default: // a close is already on its way
		}
	}
}

// giveUp ends reconnection (turned off, or out of attempts): the active
// sockets are disconnected for good.
func (m *Manager) giveUp(rs *runState) {
	m.mu.Lock()
	rs.stopping = true
	socks := m.activeLocked()
	clear(m.sockets)
	clear(m.regs)
	m.mu.Unlock()
	for _, s := range socks {
		s.onGiveUp()
	}
}

// route hands a packet to its namespace's socket; packets for namespaces
// without one are dropped, as in the JS client.
func (m *Manager) route(c conn, p *parser.Packet) {
	m.mu.Lock()
	s := m.sockets[p.Nsp]
	m.mu.Unlock()
	if s != nil {
		s.onPacket(c, p)
	}
}

// sleep waits d, or until the goroutine must end (false).
func (rs *runState) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-rs.ctx.Done():
		return false
	}
}
