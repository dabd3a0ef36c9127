package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioswarm/ioswarm/engineio"
)

// Server is a Socket.IO v4 server. It is an http.Handler: mount it on any
// router at its Path (default "/socket.io/").
//
// The methods that emit or select sockets (Emit, To, In, Except, ...) act on
// the main namespace "/", like Node's io.emit; use Of for others. All
// methods are safe for concurrent use.
type Server struct {
	cfg Config
	eng *engineio.Server
	log *slog.Logger
	// handlers counts the goroutines running user handlers and cluster
	// requests, so Close can wait for them.
	handlers group

	mu      sync.RWMutex
	nsps    map[string]*Namespace
	parents []*ParentNamespace
	clients map[*client]struct{}
	waiting map[*ackCollector]struct{} // broadcasts waiting for acks
	closed  bool
	// closedFlag mirrors closed for isClosed, which every emit and cluster
	// operation calls: an atomic load instead of mu on the hot path.
	closedFlag atomic.Bool
	// draining is set by Shutdown: no new session or socket is accepted,
	// while the adapters still work for the disconnect handlers.
	draining bool
	onNew    []func(*Namespace)

	// closing counts the sockets whose disconnection is under way (from
	// the moment they leave the connected state until their disconnect
	// handlers have returned), so Shutdown can wait for them.
	closing pending

	main *Namespace
}

// New returns a server configured by cfg (the zero Config gives Node's
// defaults and the in-memory adapter).
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		nsps:    make(map[string]*Namespace),
		clients: make(map[*client]struct{}),
		waiting: make(map[*ackCollector]struct{}),
	}
	s.eng = engineio.NewServer(cfg.engineConfig(), s.accept)
	s.main = s.Of("/")
	return s
}

// ServeHTTP serves the Socket.IO endpoint; requests outside Path get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, s.cfg.Path) && r.URL.Path+"/" != s.cfg.Path {
		http.NotFound(w, r)
		return
	}
	s.eng.ServeHTTP(w, r)
}

// Path returns the path the server answers on.
func (s *Server) Path() string { return s.cfg.Path }

// accept wires a new Engine.IO connection to a Socket.IO client.
func (s *Server) accept(conn *engineio.Conn) engineio.Handler {
	c := newClient(s, conn)
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		conn.Close()
		return c
	}
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	return c
}

func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
}

func normalizeNsp(name string) string {
	if !strings.HasPrefix(name, "/") {
		return "/" + name
	}
	return name
}

// Of returns the namespace called name (a leading "/" is added when
// missing), creating it on first use. It panics if the adapter factory
// fails to create the namespace's adapter: namespaces are set up at start.
func (s *Server) Of(name string) *Namespace {
	ns, err := s.namespace(normalizeNsp(name), nil)
	if err != nil {
		panic(fmt.Sprintf("server: create namespace %q: %v", name, err))
	}
	return ns
}

// OfRegexp registers a parent of dynamic namespaces: a connection to an
// unknown namespace whose name matches re creates it (as a child that
// inherits the parent's middlewares and connection handlers).
func (s *Server) OfRegexp(re *regexp.Regexp) *ParentNamespace {
	return s.OfFunc(func(name string, _ json.RawMessage) bool { return re.MatchString(name) })
}

// OfFunc registers a parent of dynamic namespaces decided by accept, which
// receives the namespace name and the client's auth payload. Parents are
// tried in registration order.
func (s *Server) OfFunc(accept func(name string, auth json.RawMessage) bool) *ParentNamespace {
	p := newParent(s, accept)
	s.mu.Lock()
	s.parents = append(s.parents, p)
	s.mu.Unlock()
	return p
}

// OnNewNamespace registers fn to run for every namespace created after the
// main one (Node's "new_namespace" event).
func (s *Server) OnNewNamespace(fn func(*Namespace)) {
	s.mu.Lock()
	s.onNew = append(s.onNew, fn)
	s.mu.Unlock()
}

// namespace returns the namespace called name, creating it when missing;
// parent is set for dynamic children. Creation runs the adapter factory
// outside the server lock (a cluster adapter subscribes first); concurrent
// callers wait for it.
func (s *Server) namespace(name string, parent *ParentNamespace) (*Namespace, error) {
	s.mu.Lock()
	ns, ok := s.nsps[name]
	if !ok {
		ns = newNamespace(s, name, parent)
		s.nsps[name] = ns
	}
	s.mu.Unlock()
	if ok {
		<-ns.ready
		return ns, ns.initErr
	}
	ad, err := s.cfg.Adapter.Adapter(ns.seam())
	if err != nil {
		ns.initErr = err
		s.mu.Lock()
		delete(s.nsps, name)
		s.mu.Unlock()
		close(ns.ready)
		return nil, err
	}
	ns.adapter = ad
	if parent != nil {
		parent.adopt(ns)
	}
	close(ns.ready)
	s.mu.RLock()
	hooks := s.onNew
	s.mu.RUnlock()
	if name != "/" {
		for _, fn := range hooks {
			fn(ns)
		}
	}
	return ns, nil
}

// lookup finds the namespace a CONNECT asks for — an existing one, or a new
// child of the first parent that accepts the name — and counts the
// connecting socket in it (Namespace.enter). It returns nil when no
// namespace takes the name.
func (s *Server) lookup(name string, auth json.RawMessage) (*Namespace, error) {
	for {
		ns, err := s.find(name, auth)
		if ns == nil || err != nil {
			return nil, err
		}
		if ns.enter() {
			return ns, nil
		}
		// Removed as empty between the lookup and now: look again.
	}
}

func (s *Server) find(name string, auth json.RawMessage) (*Namespace, error) {
	s.mu.RLock()
	ns := s.nsps[name]
	parents := s.parents
	s.mu.RUnlock()
	if ns != nil {
		<-ns.ready
		if ns.initErr != nil {
			return nil, ns.initErr
		}
		return ns, nil
	}
	for _, p := range parents {
		if p.accept(name, auth) {
			return s.namespace(name, p)
		}
	}
	return nil, nil
}

// removeChild removes a dynamic child namespace that has no socket left,
// with its adapter (Node's cleanupEmptyChildNamespaces). A later CONNECT to
// the same name creates it anew.
func (s *Server) removeChild(ns *Namespace) {
	s.mu.Lock()
	ns.mu.Lock()
	if ns.members != 0 || ns.removed || s.closed || s.draining {
		ns.mu.Unlock()
		s.mu.Unlock()
		return
	}
	ns.removed = true
	if s.nsps[ns.name] == ns {
		delete(s.nsps, ns.name)
	}
	ns.mu.Unlock()
	s.mu.Unlock()
	ns.parent.forget(ns)
	if err := ns.adapter.Close(); err != nil {
		s.log.Warn("server: close adapter", "nsp", ns.name, "err", err)
	}
}

// Close disconnects every socket (reason "server shutting down", no packet
// is sent: clients see their transport close and reconnect), closes the
// adapters, the Engine.IO server and the adapter Factory (Config.Adapter;
// a Redis client given to it stays the caller's), and returns once every
// goroutine the server started has ended, or when ctx ends (handlers still
// running are then left behind). Every operation after Close returns
// ErrClosed. It is idempotent, and returns nil at once when Close or
// Shutdown has already started.
//
// Close does not wait for the disconnect handlers before closing the
// adapters: a broadcast they make may fail with ErrClosed. Shutdown does.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.closedFlag.Store(true)
	clients := s.clientList()
	s.mu.Unlock()

	for _, c := range clients {
		c.closeSockets(ReasonServerShuttingDown)
	}
	return s.closeRest(ctx)
}

// Shutdown stops the server gracefully, in this order:
//
//  1. New Engine.IO requests are refused at once (503 Service Unavailable,
//     as after Close), and so are new namespace connections.
//  2. Every socket is disconnected with reason "server shutting down" and
//     every connection is closed at the transport level — no DISCONNECT
//     packet is sent, so the official client sees "transport close" and
//     reconnects by itself (to another node, or to this address once a new
//     server listens). Pending long-polling GETs are answered at once, so
//     they do not hold an http.Server's Shutdown. With connection state
//     recovery, sessions are kept as for any "server shutting down"
//     disconnection.
//  3. It waits, within ctx, until the disconnect handlers (OnDisconnecting,
//     OnDisconnect) of every socket have returned. Meanwhile the adapters
//     and the Factory still work: a broadcast or ServerSideEmit made by a
//     disconnect handler reaches the other nodes.
//  4. It then closes as Close does: adapters, Factory, and a wait (within
//     ctx) for every goroutine the server started.
//
// When ctx ends before the disconnect handlers return, the adapters are
// closed anyway (the late handlers' cluster calls get ErrClosed) and the
// error wraps ctx's. Every operation after Shutdown returns ErrClosed; a
// Close or Shutdown called once either has started returns nil at once.
//
// With an http.Server, call io.Shutdown(ctx) and then hs.Shutdown(ctx):
// Shutdown ends the long-polling requests that would otherwise keep
// hs.Shutdown waiting (WebSocket connections are hijacked, it does not wait
// for them), and the requests that arrive meanwhile get 503.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		return nil
	}
	s.draining = true
	clients := s.clientList()
	s.mu.Unlock()
	// Before the first disconnect handler runs, so that no client gets a
	// session in between.
	s.eng.RefuseHandshakes()

	for _, c := range clients {
		c.closeSockets(ReasonServerShuttingDown)
	}
	// Refuses new requests, closes every connection (pending polls are
	// answered) and waits for the Engine.IO goroutines; the sockets'
	// handlers run on the server's own goroutines.
	s.eng.Close()
	var derr error
	select {
	case <-s.closing.idle():
	case <-ctx.Done():
		derr = fmt.Errorf("server: shutdown: disconnect handlers still running: %w", ctx.Err())
	}
	s.mu.Lock()
	s.closed = true
	s.closedFlag.Store(true)
	s.mu.Unlock()
	return errors.Join(derr, s.closeRest(ctx))
}

// clientList returns the connected clients; s.mu is held.
func (s *Server) clientList() []*client {
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	return clients
}

// closeRest is the end of Close and Shutdown, once s.closed is set and
// the sockets were disconnected: pending broadcast acks end, the adapters,
// the Engine.IO server and the Factory close, and the handlers are waited
// for.
func (s *Server) closeRest(ctx context.Context) error {
	// Broadcasts still waiting for acks end now, so that no timer of
	// theirs fires after Close.
	s.mu.Lock()
	waiting := make([]*ackCollector, 0, len(s.waiting))
	for c := range s.waiting {
		waiting = append(waiting, c)
	}
	nsps := make([]*Namespace, 0, len(s.nsps))
	for _, ns := range s.nsps {
		nsps = append(nsps, ns)
	}
	s.mu.Unlock()
	for _, c := range waiting {
		c.finish(ErrClosed)
	}
	for _, ns := range nsps {
		<-ns.ready
		if ns.adapter != nil {
			if err := ns.adapter.Close(); err != nil {
				s.log.Warn("server: close adapter", "nsp", ns.name, "err", err)
			}
		}
	}
	s.eng.Close()
	// The adapters are closed: cluster calls of handlers still running end
	// with ErrClosed, and the Factory's goroutines may stop.
	ferr := s.cfg.Adapter.Close(ctx)
	if ferr != nil {
		ferr = fmt.Errorf("server: close adapter factory: %w", ferr)
	}
	select {
	case <-s.handlers.wait():
		return ferr
	case <-ctx.Done():
		return errors.Join(ferr, fmt.Errorf("server: close: handlers still running: %w", ctx.Err()))
	}
}

// isClosed reports whether Close was called.
func (s *Server) isClosed() bool { return s.closedFlag.Load() }

// track registers a broadcast waiting for acks; false once closed.
func (s *Server) track(c *ackCollector) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.waiting[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *ackCollector) {
	s.mu.Lock()
	delete(s.waiting, c)
	s.mu.Unlock()
}

// Use adds a middleware to the main namespace.
func (s *Server) Use(mw Middleware) { s.main.Use(mw) }

// OnConnection registers a handler for sockets of the main namespace.
func (s *Server) OnConnection(h ConnectionHandler) { s.main.OnConnection(h) }

// Sockets returns the local sockets of the main namespace.
func (s *Server) Sockets() []*Socket { return s.main.Sockets() }

// Emit emits to every socket of the main namespace; see Namespace.Emit.
func (s *Server) Emit(event string, args ...any) error { return s.main.Emit(event, args...) }

// EmitWithAck emits to every socket of the main namespace and waits for
// their acknowledgements; see BroadcastOperator.EmitWithAck.
func (s *Server) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return s.main.EmitWithAck(ctx, event, args...)
}

// EmitWithAckFunc emits to every socket of the main namespace; ack receives
// their acknowledgements. See BroadcastOperator.EmitWithAckFunc.
func (s *Server) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	return s.main.EmitWithAckFunc(event, ack, args...)
}

// To selects the sockets in rooms of the main namespace.
func (s *Server) To(rooms ...string) *BroadcastOperator { return s.main.To(rooms...) }

// In is To.
func (s *Server) In(rooms ...string) *BroadcastOperator { return s.main.In(rooms...) }

// Except excludes the sockets in rooms of the main namespace.
func (s *Server) Except(rooms ...string) *BroadcastOperator { return s.main.Except(rooms...) }

// Local restricts a broadcast of the main namespace to this node.
func (s *Server) Local() *BroadcastOperator { return s.main.Local() }

// Volatile marks a broadcast of the main namespace as volatile.
func (s *Server) Volatile() *BroadcastOperator { return s.main.Volatile() }

// Timeout sets the ack timeout of a broadcast of the main namespace.
func (s *Server) Timeout(d time.Duration) *BroadcastOperator { return s.main.Timeout(d) }

// FetchSockets returns the sockets of the main namespace across the cluster.
func (s *Server) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return s.main.FetchSockets(ctx)
}

// SocketsJoin makes every socket of the main namespace join rooms.
func (s *Server) SocketsJoin(ctx context.Context, rooms ...string) error {
	return s.main.SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the main namespace leave rooms.
func (s *Server) SocketsLeave(ctx context.Context, rooms ...string) error {
	return s.main.SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the main namespace.
func (s *Server) DisconnectSockets(ctx context.Context, close bool) error {
	return s.main.DisconnectSockets(ctx, close)
}

// ServerSideEmit sends an event to the main namespace of the other nodes.
func (s *Server) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	return s.main.ServerSideEmit(ctx, event, args...)
}

// ServerSideEmitWithAck sends an event to the main namespace of the other
// nodes and collects one answer per node.
func (s *Server) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return s.main.ServerSideEmitWithAck(ctx, event, args...)
}

// OnServerSideEmit registers a listener of the main namespace for events
// sent by other nodes.
func (s *Server) OnServerSideEmit(event string, h ServerEventHandler) {
	s.main.OnServerSideEmit(event, h)
}
