package client

import (
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure a Manager (and Dial, which makes one unless Manager is
// set). Zero values select the JS client's defaults.
type Options struct {
	// Transports are the Engine.IO transports to use, in order: "polling"
	// and "websocket" (the JS option). Nil means both: polling first, then
	// an upgrade to WebSocket.
	Transports []string
	// Upgrade, when set to false, keeps the first transport (no upgrade
	// from polling to WebSocket). Nil means true.
	Upgrade *bool
	// Path is the server's Engine.IO path ("/rt" is sent as "/rt/", as the
	// JS client does); "" means "/socket.io/".
	Path string
	// Query is added to the query string of every Engine.IO request. Nil
	// means the query of the URL given to Dial or NewManager.
	Query url.Values
	// Header is added to every HTTP request and to the WebSocket handshake.
	Header http.Header
	// HTTPClient makes the long-polling requests (TLS, proxies, cookies);
	// nil means http.DefaultClient.
	HTTPClient *http.Client
	// Dialer opens WebSocket connections; nil means websocket.DefaultDialer.
	Dialer *websocket.Dialer

	// Auth is sent with the namespace CONNECT packet: a value that encodes
	// as a JSON object (a map, a struct), or nil. A func() any is called
	// before each connection attempt, for credentials that change; it may
	// run on the manager's connection goroutine, so it must not block long
	// nor close the socket.
	Auth any

	// Reconnection, when set to false, turns automatic reconnection off.
	// Nil means true.
	Reconnection *bool
	// ReconnectionAttempts bounds the reconnection attempts after a
	// connection is lost; 0 means unlimited.
	ReconnectionAttempts int
	// ReconnectionDelay is the first delay before reconnecting, doubled at
	// each attempt; 0 means 1s.
	ReconnectionDelay time.Duration
	// ReconnectionDelayMax bounds the delay; 0 means 5s.
	ReconnectionDelayMax time.Duration
	// RandomizationFactor is the jitter of each delay, between 0 and 1:
	// the delay is moved up or down by up to this fraction. Nil means 0.5.
	RandomizationFactor *float64
	// Timeout bounds each Engine.IO connection attempt (the handshake); 0
	// means 20s.
	Timeout time.Duration
	// AckTimeout, when positive, is the default timeout of the
	// acknowledgements asked for by EmitWithAck and EmitWithAckFunc (the
	// JS client's ackTimeout); Socket.Timeout overrides it.
	AckTimeout time.Duration

	// MaxBufferedEmits and MaxBufferedBytes bound what emits made while the
	// socket is disconnected may buffer until it reconnects; past them an
	// emit fails with ErrBufferFull. Zero means 1000 emits and 8 MiB (the
	// most: what is buffered must fit in the connection's send queue when
	// it is flushed; the attachments of the buffered emits count too, at
	// most 2048 messages in all).
	MaxBufferedEmits int
	MaxBufferedBytes int

	// Manager, when set, is the connection Dial opens its socket on
	// (multiplexing: several namespaces over one Engine.IO connection);
	// the Options of the Manager then apply, and only Auth is read here.
	Manager *Manager

	// Logger receives the errors of handlers that panicked; nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = "/socket.io/"
	}
	if o.ReconnectionDelay <= 0 {
		o.ReconnectionDelay = time.Second
	}
	if o.ReconnectionDelayMax <= 0 {
		o.ReconnectionDelayMax = 5 * time.Second
	}
	if o.RandomizationFactor == nil {
		f := 0.5
		o.RandomizationFactor = &f
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	if o.MaxBufferedEmits <= 0 {
		o.MaxBufferedEmits = 1000
	}
	if o.MaxBufferedBytes <= 0 || o.MaxBufferedBytes > maxBufferedBytes {
		o.MaxBufferedBytes = maxBufferedBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o *Options) reconnection() bool { return o.Reconnection == nil || *o.Reconnection }
