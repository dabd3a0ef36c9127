package engine

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
)

// Transport names, as in the "transport" query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Close reasons reported by Conn.Reason: the JS client's.
const (
	ReasonForcedClose    = "forced close"
	ReasonTransportClose = "transport close"
	ReasonTransportError = "transport error"
	ReasonPingTimeout    = "ping timeout"
	ReasonParseError     = "parse error"
)

// Bounds of the send queue: past either, Send returns ErrQueueFull. They
// match the server's defaults (engineio.DefaultMaxQueued*).
const (
	MaxQueuedMessages = 4096
	MaxQueuedBytes    = 16 << 20
)

// MaxIncoming bounds what the server can make a Conn buffer: one polling
// response body, or one WebSocket message. The server's maxPayload bounds
// only what the client sends (Node's server does not apply it to its own
// packets), so it cannot serve here; this is the server's default queue
// bound (16 MiB) with room for base64.
const MaxIncoming = 32 << 20

// closeGrace bounds the best-effort flush of a client-initiated close.
const closeGrace = time.Second

// Errors.
var (
	// ErrClosed is returned by Send once the connection is closed.
	ErrClosed = errors.New("engine: closed")
	// ErrQueueFull is returned by Send when the queue would exceed
	// MaxQueuedMessages or MaxQueuedBytes; nothing is queued.
	ErrQueueFull = errors.New("engine: send queue full")
	// ErrHandshake is wrapped by Dial's errors that come from the server's
	// answer (an HTTPError, or an invalid open packet).
	ErrHandshake = errors.New("engine: handshake failed")
	// errTooLarge: a response or message over MaxIncoming.
	errTooLarge = errors.New("engine: incoming data over MaxIncoming")
	// errProbe: the WebSocket did not answer the probe.
	errProbe = errors.New("engine: upgrade probe failed")
)

// HTTPError is a non-success answer of the server to a request: the
// handshake (also wrapped with ErrHandshake), a poll or a post. Body is the
// start of the answer (Engine.IO errors are JSON: {"code":1,"message":"..."}).
type HTTPError struct {
	StatusCode int
	Body       string
}

func (e *HTTPError) Error() string {
	return "engine: HTTP " + http.StatusText(e.StatusCode) + ": " + e.Body
}

// Options configures Dial. The zero value connects with polling, then
// upgrades to WebSocket, on path "/engine.io/".
type Options struct {
	// Path is the Engine.IO endpoint path; a trailing slash is added when
	// missing, as the JS client does. Empty means "/engine.io/".
	Path string
	// Transports lists the transports allowed, the first one opening the
	// session. Nil means {"polling", "websocket"}: open with polling, then
	// upgrade to WebSocket, as the JS client.
	Transports []string
	// Upgrade, if false, keeps a polling session on polling. Nil means true.
	Upgrade *bool
	// Query is added to every request, along with EIO=4, transport, sid and
	// t (which it cannot override).
	Query url.Values
	// Header is added to every request and to the WebSocket handshake.
	Header http.Header
	// HTTPClient sends the polling requests; its Jar also serves the
	// WebSocket handshake. It must not have a Timeout shorter than the
	// server's pingInterval (a GET is a long poll). Nil means a client of
	// the Conn's own, with http.DefaultTransport's settings, whose idle
	// connections are closed with the Conn.
	HTTPClient *http.Client
	// Dialer opens WebSockets. Nil means a dialer with
	// http.ProxyFromEnvironment, and the TLS configuration of HTTPClient's
	// transport when it is an *http.Transport.
	Dialer *websocket.Dialer
	// OnMessage receives every "message" packet, in order, on the
	// connection's reader goroutine: text without the leading '4', or the
	// raw bytes of a binary message. The callee owns data. It must not block
	// long: nothing else is read meanwhile, pings included (a call that
	// outlasts pingInterval+pingTimeout ends the connection with "ping
	// timeout"). It is not called once the close is decided, but for the
	// call already under way. It may call Send and Close.
	OnMessage func(data []byte, binary bool)
}

// Message is one message packet to send.
type Message struct {
	Data   []byte
	Binary bool
}
