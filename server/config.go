package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/memory"
	"github.com/ioswarm/ioswarm/engineio"
)

// Config configures a Server. The zero value is the Node.js server's
// defaults; every field documents its own.
type Config struct {
	// Path is where the server answers; zero means "/socket.io/". A
	// trailing slash is added when missing, and requests whose path starts
	// with it are served.
	Path string
	// PingInterval is the time between server pings; zero means 25s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for a pong; zero means 20s.
	PingTimeout time.Duration
	// UpgradeTimeout bounds the polling → WebSocket upgrade; zero means 10s.
	UpgradeTimeout time.Duration
	// ConnectTimeout closes a connection that has joined no namespace by
	// then; zero means 45s.
	ConnectTimeout time.Duration
	// MaxHTTPBufferSize bounds a message (a polling POST body or a
	// WebSocket frame); zero means 1e6 bytes.
	MaxHTTPBufferSize int64
	// MaxAttachments bounds the binary attachments of one packet; zero
	// means 10.
	MaxAttachments int
	// Transports lists the enabled transports; nil means polling and
	// websocket.
	Transports []string
	// DisableUpgrades keeps polling sessions on polling.
	DisableUpgrades bool
	// CORS enables CORS headers; nil sends none (same-origin pages and
	// non-browser clients need none).
	CORS *engineio.CORS
	// Cookie, when set, is a template for the cookie set on the handshake
	// response, its value being the session id (for sticky sessions);
	// engineio.DefaultCookie gives Node's io=<sid>; Path=/; HttpOnly;
	// SameSite=Lax.
	Cookie *http.Cookie
	// AllowRequest may refuse a handshake: a non-nil error answers 403.
	AllowRequest func(r *http.Request) error
	// CheckOrigin checks the Origin of WebSocket handshakes; nil accepts
	// what CORS allows, or any origin without CORS, as Node does.
	CheckOrigin func(r *http.Request) bool
	// MaxQueuedMessages bounds the packets waiting to be written to one
	// connection; a client that lets more pile up is disconnected (volatile
	// packets are dropped instead). Zero means 4096.
	MaxQueuedMessages int
	// MaxQueuedBytes bounds the same queue in bytes, with the same effect.
	// Zero means 16 MiB.
	MaxQueuedBytes int64
	// WriteTimeout bounds one write to a client (a batch of WebSocket
	// frames, a polling response): a client that stops reading for longer
	// is disconnected. Zero means 10s.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the request headers of a handshake (431 beyond
	// it), and so what a session keeps of them. Zero means 16 KiB, Node's
	// limit.
	MaxHeaderBytes int
	// MaxPendingEvents bounds the packets of one connection waiting for
	// (or running in) their socket's handlers. When a client sends faster
	// than its handlers keep up, the server stops reading from it once
	// this many wait, and TCP slows the client down: it is never
	// disconnected for being fast. Zero means 1024.
	MaxPendingEvents int
	// MaxPendingBytes bounds the same packets in bytes (their JSON and
	// binary attachments); one packet is always taken, whatever its size
	// (MaxHTTPBufferSize bounds it). Zero means 1 MiB.
	MaxPendingBytes int64
	// PerMessageDeflate enables WebSocket compression (off by default, as
	// on Node).
	PerMessageDeflate bool
	// CleanupEmptyChildNamespaces removes a namespace created by a parent
	// (OfRegexp, OfFunc) once its last socket leaves, with its adapter and
	// the adapter's cluster subscriptions, as Node's option of the same
	// name does; a later connection to the name creates it again. Off by
	// default, as on Node; turn it on when clients choose namespace names,
	// or every name ever visited keeps its memory.
	CleanupEmptyChildNamespaces bool
	// ConnectionStateRecovery, when set, turns on connection state recovery
	// (Node's connectionStateRecovery); nil leaves it off, as on Node. See
	// RecoveryConfig: &RecoveryConfig{} is Node's defaults.
	ConnectionStateRecovery *RecoveryConfig
	// Adapter creates the adapter of every namespace; nil means the
	// in-memory adapter (a single node). The server owns it from New on:
	// Close closes it, after the sockets are gone. A Factory serves one
	// server.
	Adapter adapter.Factory
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = "/socket.io/"
	}
	if !strings.HasPrefix(c.Path, "/") {
		c.Path = "/" + c.Path
	}
	if !strings.HasSuffix(c.Path, "/") {
		c.Path += "/"
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 45 * time.Second
	}
	if c.MaxAttachments == 0 {
		c.MaxAttachments = 10
	}
	if c.MaxPendingEvents <= 0 {
		c.MaxPendingEvents = 1024
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 1 << 20
	}
	if c.ConnectionStateRecovery != nil {
		rc := c.ConnectionStateRecovery.withDefaults()
		c.ConnectionStateRecovery = &rc
	}
	if c.Adapter == nil {
		c.Adapter = memory.New()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) engineConfig() engineio.Config {
	return engineio.Config{
		PingInterval:      c.PingInterval,
		PingTimeout:       c.PingTimeout,
		UpgradeTimeout:    c.UpgradeTimeout,
		MaxPayload:        c.MaxHTTPBufferSize,
		Transports:        c.Transports,
		DisableUpgrades:   c.DisableUpgrades,
		CORS:              c.CORS,
		Cookie:            c.Cookie,
		AllowRequest:      c.AllowRequest,
		CheckOrigin:       c.CheckOrigin,
		MaxQueuedMessages: c.MaxQueuedMessages,
		MaxQueuedBytes:    c.MaxQueuedBytes,
		WriteTimeout:      c.WriteTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		PerMessageDeflate: c.PerMessageDeflate,
		Logger:            c.Logger,
	}
}
