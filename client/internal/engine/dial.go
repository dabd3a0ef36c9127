package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// handshake is the JSON of the open packet.
type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// endpoint builds the URLs of one server.
type endpoint struct {
	http, ws string // scheme://host/path, without query
	query    url.Values
}

// stamp makes the "t" parameter unique per request, as the JS client does, so
// that no cache between client and server answers a poll.
var stamp atomic.Uint64

func (e *endpoint) url(transport, sid string) string {
	q := make(url.Values, len(e.query)+4)
	for k, v := range e.query {
		q[k] = v
	}
	q.Set("EIO", "4")
	q.Set("transport", transport)
	if sid != "" {
		q.Set("sid", sid)
	} else {
		q.Del("sid")
	}
	q.Set("t", strconv.FormatUint(uint64(time.Now().UnixMilli()), 36)+"."+strconv.FormatUint(stamp.Add(1), 36))
	base := e.http
	if transport == TransportWebSocket {
		base = e.ws
	}
	return base + "?" + q.Encode()
}

func newEndpoint(rawURL string, opts *Options) (*endpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("engine: url: %w", err)
	}
	var hs, ws string
	switch u.Scheme {
	case "http", "ws":
		hs, ws = "http", "ws"
	case "https", "wss":
		hs, ws = "https", "wss"
	default:
		return nil, fmt.Errorf("engine: url %q: scheme must be http or https", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("engine: url %q: no host", rawURL)
	}
	path := opts.Path
	if path == "" {
		path = "/engine.io/"
	}
	// As the JS client (addTrailingSlash): "/rt" asks "/rt/", the path
	// servers match on.
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	// The URL's own query comes first; Options.Query overrides it.
	q := u.Query()
	for k, v := range opts.Query {
		q[k] = v
	}
	return &endpoint{
		http:  hs + "://" + u.Host + path,
		ws:    ws + "://" + u.Host + path,
		query: q,
	}, nil
}

// Dial opens an Engine.IO session at rawURL ("http(s)://host:port"; its
// path is ignored, Options.Path is used; its query is added to Options.Query).
// ctx bounds the handshake only. With polling allowed to upgrade, the
// upgrade to WebSocket continues in the background after Dial returns.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	ep, err := newEndpoint(rawURL, &opts)
	if err != nil {
		return nil, err
	}
	transports := opts.Transports
	if transports == nil {
		transports = []string{TransportPolling, TransportWebSocket}
	}
	if len(transports) == 0 || (transports[0] != TransportPolling && transports[0] != TransportWebSocket) {
		return nil, fmt.Errorf("engine: no usable transport in %q", transports)
	}
	c := newConn(ep, opts)
	var (
		hs       handshake
		first    []eio.Packet
		firstErr error
		ws       *websocket.Conn
	)
	if transports[0] == TransportWebSocket {
		ws, hs, err = c.handshakeWebSocket(ctx)
	} else {
		hs, first, firstErr, err = c.handshakePolling(ctx)
	}
	if err != nil {
		c.cancel()
		c.closeIdle()
		return nil, err
	}
	c.id = hs.SID
	c.pingInterval = time.Duration(hs.PingInterval) * time.Millisecond
	c.pingTimeout = time.Duration(hs.PingTimeout) * time.Millisecond
	c.maxPayload = int(hs.MaxPayload)
	upgrade := ws == nil && (opts.Upgrade == nil || *opts.Upgrade) &&
		slices.Contains(transports, TransportWebSocket) && slices.Contains(hs.Upgrades, TransportWebSocket)
	c.start(ws, first, firstErr, upgrade)
	return c, nil
}

// handshakePolling opens the session with a GET; the packets that follow
// the open packet in the same payload are returned for the reader, with the
// parse error that ended them, if any: the reader processes them, then closes
// with "parse error".
func (c *Conn) handshakePolling(ctx context.Context) (hs handshake, rest []eio.Packet, perr, err error) {
	body, err := c.get(ctx, "")
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) {
			err = fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return hs, nil, nil, err
	}
	pkts, perr := eio.DecodePayload(body, nil)
	if len(pkts) == 0 {
		return hs, nil, nil, fmt.Errorf("%w: %w", ErrHandshake, perr)
	}
	if hs, err = parseOpen(pkts[0]); err != nil {
		return hs, nil, nil, err
	}
	return hs, pkts[1:], perr, nil
}

// handshakeWebSocket opens the session on a WebSocket: the first frame is
// the open packet.
func (c *Conn) handshakeWebSocket(ctx context.Context) (*websocket.Conn, handshake, error) {
	ws, err := c.dialWebSocket(ctx, "")
	if err != nil {
		return nil, handshake{}, err
	}
	// ctx bounds the wait for the open packet too.
	stop := context.AfterFunc(ctx, func() { _ = ws.NetConn().Close() })
	mt, data, err := ws.ReadMessage()
	if !stop() || err != nil {
		_ = ws.NetConn().Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, handshake{}, fmt.Errorf("engine: read open packet: %w", err)
	}
	var hs handshake
	if mt != websocket.TextMessage {
		err = fmt.Errorf("%w: binary open packet", ErrHandshake)
	} else {
		var p eio.Packet
		if p, err = eio.DecodePacket(data); err == nil {
			hs, err = parseOpen(p)
		} else {
			err = fmt.Errorf("%w: %w", ErrHandshake, err)
		}
	}
	if err != nil {
		_ = ws.NetConn().Close()
		return nil, handshake{}, err
	}
	return ws, hs, nil
}

func parseOpen(p eio.Packet) (handshake, error) {
	var hs handshake
	if p.Type != eio.Open || p.Binary {
		return hs, fmt.Errorf("%w: first packet is not open", ErrHandshake)
	}
	if err := json.Unmarshal(p.Data, &hs); err != nil {
		return hs, fmt.Errorf("%w: open packet: %w", ErrHandshake, err)
	}
	if hs.SID == "" || hs.PingInterval <= 0 || hs.PingTimeout <= 0 {
		return hs, fmt.Errorf("%w: open packet lacks sid or heartbeat", ErrHandshake)
	}
	if hs.MaxPayload <= 0 {
		hs.MaxPayload = 1_000_000 // a v4 server before maxPayload: Node's default
	}
	return hs, nil
}

// dialWebSocket opens a WebSocket for the session sid ("" to open one).
func (c *Conn) dialWebSocket(ctx context.Context, sid string) (*websocket.Conn, error) {
	ws, resp, err := c.dialer.DialContext(ctx, c.ep.url(TransportWebSocket, sid), c.opts.Header)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			err = fmt.Errorf("%w: %w", ErrHandshake, httpError(resp))
		}
		return nil, fmt.Errorf("engine: websocket: %w", err)
	}
	ws.SetReadLimit(MaxIncoming)
	return ws, nil
}

// httpError reads the start of a failed answer's body.
func httpError(resp *http.Response) *HTTPError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &HTTPError{StatusCode: resp.StatusCode, Body: string(b)}
}

// defaultDialer: proxies from the environment, TLS and cookies as the
// polling client has them.
func defaultDialer(hc *http.Client) *websocket.Dialer {
	d := &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 45 * time.Second}
	if t, ok := hc.Transport.(*http.Transport); ok {
		d.TLSClientConfig = t.TLSClientConfig
		if t.Proxy != nil {
			d.Proxy = t.Proxy
		}
	}
	d.Jar = hc.Jar
	return d
}
