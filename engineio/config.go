package engineio

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults applied to zero-valued Config fields.
const (
	DefaultPingInterval      = 25 * time.Second
	DefaultPingTimeout       = 20 * time.Second
	DefaultUpgradeTimeout    = 10 * time.Second
	DefaultMaxPayload        = 1_000_000
	DefaultMaxQueuedMessages = 4096
	DefaultMaxQueuedBytes    = 16 << 20
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
)

// Transport names as they appear in the "transport" query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Config configures a Server. The zero value is usable: every zero field
// means the documented default, which matches the Node.js reference server.
type Config struct {
	// PingInterval is the time between two server pings. Zero means 25s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong after a ping
	// before closing the session ("ping timeout"). Zero means 20s.
	PingTimeout time.Duration
	// UpgradeTimeout bounds a polling → WebSocket upgrade: without the
	// client's "5" in time the new WebSocket is closed and the session stays
	// on polling. Zero means 10s.
	UpgradeTimeout time.Duration
	// MaxPayload is Node's maxHttpBufferSize, in bytes. A polling POST body
	// larger than this is answered 413; a WebSocket message larger than this
	// closes the connection ("transport error", close code 1009). For a
	// compressed WebSocket message the inflated size counts: it is never
	// inflated further. It is advertised to clients as "maxPayload". Zero
	// means 1e6.
	MaxPayload int64
	// Transports lists the enabled transports. Nil means
	// {"polling", "websocket"}. Unknown names are ignored.
	Transports []string
	// DisableUpgrades stops polling sessions from being offered (and from
	// performing) the upgrade to WebSocket: the handshake says "upgrades":[].
	DisableUpgrades bool
	// CORS enables CORS headers on every polling response and answers
	// OPTIONS preflights. Nil means no CORS headers, and OPTIONS is treated
	// like any other non-GET request.
	CORS *CORS
	// Cookie, if non-nil, is a template: a copy with Value set to the
	// session id is set on the handshake response (polling and WebSocket).
	Cookie *http.Cookie
	// AllowRequest, if non-nil, is called for every handshake request. A
	// non-nil error rejects it with 403 {"code":4,"message":err.Error()}.
	AllowRequest func(r *http.Request) error
	// CheckOrigin decides whether a WebSocket handshake's Origin is
	// acceptable. Nil means: if CORS lists explicit origins, only those (or
	// no Origin header at all); otherwise any origin, as Node does.
	CheckOrigin func(r *http.Request) bool
	// MaxQueuedMessages bounds each connection's send queue. When a Send
	// would exceed it the connection is closed ("transport error",
	// ErrSlowConsumer); SendVolatile drops instead. Zero means 4096.
	MaxQueuedMessages int
	// MaxQueuedBytes bounds each connection's send queue by the payload
	// bytes of the Messages in it, with the same policy as
	// MaxQueuedMessages: Send closes the connection (ErrSlowConsumer),
	// SendVolatile drops. A single Message larger than the bound is still
	// accepted by an empty queue. Zero means 16 MiB: sixteen messages of
	// the default MaxPayload, so that a burst of large messages to a client
	// that keeps up never trips it, while the 4096-message bound alone
	// would let one stalled client pin 4096 messages of any size. (NATS
	// allows 64 MB per client, but a server here holds many more clients:
	// a broadcast Message is shared, yet a stalled client still keeps
	// every one it was sent alive.)
	MaxQueuedBytes int64
	// WriteTimeout bounds one write to a client: a batch of WebSocket
	// frames, or a polling GET response. A write that has not completed in
	// time closes the connection ("transport error"); a client that
	// stops reading cannot hold a writer (and the queue behind it)
	// forever. Zero means 10s, as NATS's write_deadline.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the head of every Engine.IO request, counted
	// as Node's HTTP parser counts it: the bytes of the request target and
	// of each header name and value. A head that reaches it is answered
	// 431 Request Header Fields Too Large and its connection closed, as
	// Node does; a handshake's headers are what a session keeps for its
	// lifetime (Conn.Request). net/http's own limit
	// (http.Server.MaxHeaderBytes, 1 MB by default) applies first. Zero
	// means 16 KiB, Node's --max-http-header-size default.
	MaxHeaderBytes int
	// PerMessageDeflate enables WebSocket compression (RFC 7692, no context
	// takeover) for messages of at least 1024 bytes. Off by default, as in
	// Node. Compressed messages from clients are inflated only up to
	// MaxPayload bytes.
	PerMessageDeflate bool
	// Logger receives connection-level diagnostics at Debug level. Nil means
	// slog.Default(). Nothing is logged per message.
	Logger *slog.Logger
}

// CORS configures Cross-Origin Resource Sharing for polling requests,
// following the behaviour of the npm "cors" package that Node's engine.io
// uses.
type CORS struct {
	// AllowedOrigins lists the origins allowed to read responses. "*" allows
	// any origin: the response says "Access-Control-Allow-Origin: *", or
	// echoes the request's Origin when AllowCredentials is set (browsers
	// reject "*" with credentials). Otherwise a listed request Origin is
	// echoed back, with "Vary: Origin".
	AllowedOrigins []string
	// AllowCredentials adds "Access-Control-Allow-Credentials: true".
	AllowCredentials bool
	// AllowedHeaders is sent on preflights as Access-Control-Allow-Headers.
	// Empty means echo the request's Access-Control-Request-Headers.
	AllowedHeaders []string
	// ExposedHeaders is sent as Access-Control-Expose-Headers.
	ExposedHeaders []string
	// MaxAge, if positive, is sent on preflights as Access-Control-Max-Age
	// (whole seconds).
	MaxAge time.Duration
}

// withDefaults returns a copy of c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.Transports == nil {
		c.Transports = []string{TransportPolling, TransportWebSocket}
	}
	if c.MaxQueuedMessages <= 0 {
		c.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// DefaultCookie returns the cookie template of Node's `cookie: true`:
// io=<sid>; Path=/; HttpOnly; SameSite=Lax. Each call returns a new value.
func DefaultCookie() *http.Cookie {
	return &http.Cookie{Name: "io", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
}
