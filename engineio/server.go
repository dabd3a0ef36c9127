package engineio

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Server is an Engine.IO v4 server. It is an http.Handler: every request
// routed to it is treated as an Engine.IO request (the caller matches the
// path, e.g. "/engine.io/"). All methods are safe for concurrent use.
type Server struct {
	cfg    Config
	accept func(c *Conn) Handler
	log    *slog.Logger

	polling     bool // polling transport enabled
	websocket   bool // websocket transport enabled
	upgrades    bool // polling sessions may upgrade to WebSocket
	corsAny     bool
	corsOrigins map[string]struct{}

	upgrader websocket.Upgrader

	mu     sync.RWMutex
	conns  map[string]*Conn // open sessions by id
	closed bool

	// idle watches the sockets of idle WebSockets (idle.go), from the
	// first WebSocket on; idleFailed says it could not be created.
	idle       *idlePoll
	idleFailed bool

	// refusing is set by RefuseHandshakes: new sessions get 503 while the
	// open ones are still served.
	refusing atomic.Bool

	// wg counts every goroutine, armed timer and in-flight request of the
	// server; Close waits for it. Add is only called from a counted
	// context, or under Conn.mu of an open connection (see the
	// repository's LOCKING.md).
	wg sync.WaitGroup

	slots   writeSlots  // paces the WebSocket writers of their own
	writers *writerPool // the server's WebSocket writers (writers.go)
	lend    *lender     // replaces readers busy with a Runner (lend.go)
	hb      *pingWheel  // the connections' heartbeat deadlines (pingwheel.go)
}

// NewServer returns a Server configured by cfg (zero fields take their
// defaults). accept is called once per new session, synchronously, before
// any of its messages is read; it returns the Handler that receives the
// connection's events. A nil Handler ignores every event.
func NewServer(cfg Config, accept func(c *Conn) Handler) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		accept: accept,
		log:    cfg.Logger,
		conns:  make(map[string]*Conn),
		slots:  newWriteSlots(),
	}
	s.writers = newWriterPool(s)
	s.lend = newLender(s)
	s.hb = newPingWheel(s)
	for _, t := range cfg.Transports {
		switch t {
		case TransportPolling:
			s.polling = true
		case TransportWebSocket:
			s.websocket = true
		}
	}
	s.upgrades = s.websocket && !cfg.DisableUpgrades
	if cfg.CORS != nil {
		s.corsOrigins = make(map[string]struct{}, len(cfg.CORS.AllowedOrigins))
		for _, o := range cfg.CORS.AllowedOrigins {
			if o == "*" {
				s.corsAny = true
			}
			s.corsOrigins[o] = struct{}{}
		}
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout:  cfg.UpgradeTimeout,
		ReadBufferSize:    128, // gorilla's least (a control frame); the gate (readgate.go) buffers the socket
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       s.checkOrigin,
		EnableCompression: cfg.PerMessageDeflate,
	}
	return s
}

// Count returns the number of open sessions.
func (s *Server) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// Close closes every connection (reason "forced close": a WebSocket's
// queued messages are flushed first, within a short grace period; a held
// polling GET gets the close packet alone, as from Node, and what is still
// queued is dropped), refuses new requests
// (503), and returns only when every goroutine, timer callback and held HTTP
// request of the server has finished. It is idempotent; later calls wait
// the same way.
func (s *Server) Close() {
	s.mu.Lock()
	var conns []*Conn
	if !s.closed {
		s.closed = true
		conns = make([]*Conn, 0, len(s.conns))
		for _, c := range s.conns {
			conns = append(conns, c)
		}
	}
	idle := s.idle
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(ReasonForcedClose, nil)
		c.endLinger()
	}
	if idle != nil {
		idle.stop() // the idle sockets are closing: their writers hang up
	}
	s.lend.close()          // the readers it would replace are closing
	s.hb.close()            // the connections are closed: no more pings
	s.writers.stopWriters() // once the listed connections are written
	s.wg.Wait()
}

// idlePoller returns the server's idle poller, starting it with the first
// WebSocket, or nil where there is none (or once closed).
func (s *Server) idlePoller() *idlePoll {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.idleFailed {
		return nil
	}
	if s.idle == nil {
		p, err := newIdlePoll()
		if err != nil {
			s.idleFailed = true
			s.log.Debug("engineio: no idle poller: every WebSocket keeps a reader goroutine", "err", err)
			return nil
		}
		s.idle = p
		s.wg.Add(1) // under s.mu while open (LOCKING.md)
		go func() {
			defer s.wg.Done()
			p.run()
		}()
	}
	return s.idle
}

// RefuseHandshakes makes every later handshake fail with 503 while the
// open sessions go on being served: a draining server sets it before it
// starts closing its clients, so that none arrives in between.
func (s *Server) RefuseHandshakes() { s.refusing.Store(true) }

// ServeHTTP handles one Engine.IO request: a handshake, a polling GET or
// POST, or a WebSocket (new session or upgrade of an existing one).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "engineio: server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	if s.headerTooLarge(w, r) {
		return
	}

	q := parseQuery(r.URL.RawQuery)
	upgrade := q.transport == TransportWebSocket && websocket.IsWebSocketUpgrade(r)
	if !upgrade && s.cfg.CORS != nil && s.applyCORS(w, r) {
		return // preflight answered
	}

	// The order of checks is Node's: verify() then handshake().
	if !s.transportEnabled(q.transport) {
		writeError(w, codeTransportUnknown, "", upgrade)
		return
	}
	if !validHeaderValue(r.Header.Get("Origin")) {
		writeError(w, codeBadRequest, "", upgrade)
		return
	}
	if q.sid != "" {
		c := s.lookup(q.sid)
		if c == nil {
			writeError(w, codeUnknownSID, "", upgrade)
			return
		}
		if upgrade {
			s.serveUpgrade(w, r, c)
			return
		}
		if q.transport != TransportPolling || c.Transport() != TransportPolling {
			writeError(w, codeBadRequest, "", false)
			return
		}
		switch r.Method {
		case http.MethodGet:
			c.servePoll(w, r)
		case http.MethodPost:
			c.servePost(w, r)
		default:
			writeStatus(w, http.StatusInternalServerError)
		}
		return
	}
	if s.refusing.Load() {
		http.Error(w, "engineio: server closed", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, codeBadHandshakeMethod, "", upgrade)
		return
	}
	if q.transport == TransportWebSocket && !upgrade {
		writeError(w, codeBadRequest, "", false)
		return
	}
	if s.cfg.AllowRequest != nil {
		if err := s.cfg.AllowRequest(r); err != nil {
			writeError(w, codeForbidden, err.Error(), upgrade)
			return
		}
	}
	if q.eio != "4" {
		writeError(w, codeUnsupportedVersion, "", upgrade)
		return
	}
	if upgrade {
		s.handshakeWebSocket(w, r)
	} else {
		s.handshakePolling(w, r)
	}
}

// enter counts a request in s.wg unless the server is closed. Taking the
// read lock orders every such Add before Close's Wait.
func (s *Server) enter() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) transportEnabled(t string) bool {
	switch t {
	case TransportPolling:
		return s.polling
	case TransportWebSocket:
		return s.websocket
	}
	return false
}

func (s *Server) lookup(sid string) *Conn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.conns[sid]
}

// register adds c to the open sessions unless the server is closed.
func (s *Server) register(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c.id] = c
	return true
}

// unregister removes c from the open sessions (if it is there).
func (s *Server) unregister(c *Conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
}

// checkOrigin is the Upgrader's origin check (see Config.CheckOrigin).
func (s *Server) checkOrigin(r *http.Request) bool {
	if s.cfg.CheckOrigin != nil {
		return s.cfg.CheckOrigin(r)
	}
	if s.cfg.CORS == nil || s.corsAny || len(s.corsOrigins) == 0 {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	_, ok := s.corsOrigins[origin]
	return ok
}

// closeGrace bounds the socket writes of a closing WebSocket; a forced close
// gets longer, to flush what was queued.
const (
	closeGrace       = 100 * time.Millisecond
	forcedCloseGrace = time.Second
)

// query holds the Engine.IO query parameters.
type query struct {
	eio, transport, sid string
}

// parseQuery extracts the Engine.IO parameters without building a
// url.Values map. As with url.Values.Get, the first occurrence wins.
func parseQuery(raw string) query {
	var q query
	var seenEIO, seenTransport, seenSID bool
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		var dst *string
		switch k {
		case "EIO":
			if seenEIO {
				continue
			}
			seenEIO, dst = true, &q.eio
		case "transport":
			if seenTransport {
				continue
			}
			seenTransport, dst = true, &q.transport
		case "sid":
			if seenSID {
				continue
			}
			seenSID, dst = true, &q.sid
		default:
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			}
		}
		*dst = v
	}
	return q
}

// validHeaderValue reports whether v holds only the characters Node accepts
// in a header value (tab, printable ASCII, and bytes ≥ 0x80).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b != '\t' && (b < 0x20 || b == 0x7f) {
			return false
		}
	}
	return true
}
