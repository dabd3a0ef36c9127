package engineio

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

var sidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{20}$`)

func TestHandshakePolling(t *testing.T) {
	e := newEnv(t, suiteConfig(), nil)
	r := e.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	// Exactly these keys, in this order.
	want := regexp.MustCompile(`^0\{"sid":"[A-Za-z0-9_-]{20}","upgrades":\["websocket"\],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000\}$`)
	if !want.MatchString(r.body) {
		t.Fatalf("open packet %q", r.body)
	}
	o := parseOpen(t, r.body)
	if !sidPattern.MatchString(o.SID) {
		t.Errorf("sid %q", o.SID)
	}
	if e.srv.Count() != 1 {
		t.Errorf("Count = %d, want 1", e.srv.Count())
	}
	if got := e.rec(t, o.SID).conn.Transport(); got != TransportPolling {
		t.Errorf("Transport = %q", got)
	}
}

func TestHandshakeDefaults(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	r := e.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil)
	o := parseOpen(t, r.body)
	if o.PingInterval != 25000 || o.PingTimeout != 20000 || o.MaxPayload != 1000000 {
		t.Errorf("defaults %+v", o)
	}
}

func TestHandshakeUpgradesOffered(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"default", Config{}, []string{"websocket"}},
		{"disabled", Config{DisableUpgrades: true}, []string{}},
		{"polling only", Config{Transports: []string{"polling"}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg, nil)
			o := parseOpen(t, e.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil).body)
			if strings.Join(o.Upgrades, ",") != strings.Join(tt.want, ",") || o.Upgrades == nil {
				t.Errorf("upgrades = %#v, want %#v", o.Upgrades, tt.want)
			}
		})
	}
}

func TestHandshakeWebSocket(t *testing.T) {
	e := newEnv(t, suiteConfig(), nil)
	ws, sid := e.openWS(t)
	if !sidPattern.MatchString(sid) {
		t.Errorf("sid %q", sid)
	}
	r := e.rec(t, sid)
	if r.conn.Transport() != TransportWebSocket {
		t.Errorf("Transport = %q", r.conn.Transport())
	}
	if got := r.conn.Request().URL.Query().Get("transport"); got != "websocket" {
		t.Errorf("Request().URL transport = %q", got)
	}
	_ = ws
}

func TestHandshakeErrors(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		query   string
		hdr     http.Header
		status  int
		code    int // -1: no JSON body expected
		message string
	}{
		{"missing transport", "GET", "EIO=4", nil, 400, 0, "Transport unknown"},
		{"invalid transport", "GET", "EIO=4&transport=abc", nil, 400, 0, "Transport unknown"},
		{"invalid transport, no EIO", "GET", "transport=abc", nil, 400, 0, "Transport unknown"},
		{"missing EIO", "GET", "transport=polling", nil, 400, 5, "Unsupported protocol version"},
		{"EIO 3", "GET", "EIO=3&transport=polling", nil, 400, 5, "Unsupported protocol version"},
		{"invalid EIO", "GET", "EIO=abc&transport=polling", nil, 400, 5, "Unsupported protocol version"},
		{"POST handshake", "POST", "EIO=4&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"OPTIONS without CORS", "OPTIONS", "EIO=4&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=abcdefghijklmnopqrst", nil, 400, 1, "Session ID unknown"},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", nil, 400, 3, "Bad request"},
		{"POST handshake with bad EIO", "POST", "EIO=3&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"polling disabled", "GET", "EIO=4&transport=polling", nil, 400, 0, "Transport unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{}
			if tt.name == "polling disabled" {
				cfg.Transports = []string{"websocket"}
			}
			e := newEnv(t, cfg, nil)
			r := e.do(t, tt.method, tt.query, "", tt.hdr)
			checkErrorResponse(t, r, tt.status, tt.code, tt.message)
		})
	}
}

// checkErrorResponse checks an Engine.IO JSON error response.
func checkErrorResponse(t *testing.T, r response, status, code int, message string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %q)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body struct {
		Code    *int    `json:"code"`
		Message *string `json:"message"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Code == nil || body.Message == nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if *body.Code != code || *body.Message != message {
		t.Errorf("body = %q, want code %d message %q", r.body, code, message)
	}
}

func TestSessionRequestErrors(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)

	// A known sid with another method: 500, empty body.
	for _, m := range []string{"PUT", "DELETE", "PATCH", "HEAD"} {
		r := e.do(t, m, "EIO=4&transport=polling&sid="+sid, "", nil)
		if r.status != 500 || r.body != "" {
			t.Errorf("%s: %d %q, want 500 and empty", m, r.status, r.body)
		}
	}
	// Transport mismatch: a polling session asked over transport=websocket
	// without an Upgrade.
	r := e.do(t, "GET", "EIO=4&transport=websocket&sid="+sid, "", nil)
	checkErrorResponse(t, r, 400, 3, "Bad request")
	// Invalid Origin characters (sent directly: net/http clients refuse them).
	req := httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "http://a\x01b")
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	checkErrorResponse(t, response{w.Code, w.Header(), w.Body.String()}, 400, 3, "Bad request")
	if e.srv.Count() != 1 {
		t.Errorf("Count = %d, want 1", e.srv.Count())
	}
}

func TestAllowRequest(t *testing.T) {
	cfg := quietConfig()
	cfg.AllowRequest = func(r *http.Request) error {
		if r.Header.Get("X-Token") != "secret" {
			return errors.New("Thou shall not pass")
		}
		return nil
	}
	e := newEnv(t, cfg, nil)
	r := e.do(t, "GET", "EIO=4&transport=polling", "", nil)
	checkErrorResponse(t, r, 403, 4, "Thou shall not pass")
	// AllowRequest is checked before the EIO version.
	r = e.do(t, "GET", "EIO=3&transport=polling", "", nil)
	checkErrorResponse(t, r, 403, 4, "Thou shall not pass")
	r = e.do(t, "GET", "EIO=4&transport=polling", "", http.Header{"X-Token": {"secret"}})
	if r.status != 200 {
		t.Fatalf("allowed handshake: %d %q", r.status, r.body)
	}
	// WebSocket handshakes are checked too.
	if _, resp, err := e.dial(t, "EIO=4&transport=websocket"); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("websocket handshake not rejected: %v", err)
	}
}

func TestWebSocketHandshakeErrors(t *testing.T) {
	e := newEnv(t, suiteConfig(), nil)
	tests := []struct{ name, query, body string }{
		{"missing EIO", "transport=websocket", "Unsupported protocol version"},
		{"invalid EIO", "EIO=abc&transport=websocket", "Unsupported protocol version"},
		{"unknown sid", "EIO=4&transport=websocket&sid=abcdefghijklmnopqrst", "Session ID unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, resp, err := e.dial(t, tt.query)
			if err == nil {
				ws.Close()
				t.Fatal("handshake succeeded")
			}
			if resp == nil || resp.StatusCode != 400 {
				t.Fatalf("response %v, err %v", resp, err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
	if e.srv.Count() != 0 {
		t.Errorf("Count = %d", e.srv.Count())
	}
}

func TestCookie(t *testing.T) {
	cfg := quietConfig()
	cfg.Cookie = DefaultCookie()
	e := newEnv(t, cfg, nil)
	r := e.do(t, "GET", "EIO=4&transport=polling", "", nil)
	sid := parseOpen(t, r.body).SID
	want := "io=" + sid + "; Path=/; HttpOnly; SameSite=Lax"
	if got := r.header.Get("Set-Cookie"); got != want {
		t.Errorf("Set-Cookie = %q, want %q", got, want)
	}
	// Only on the handshake.
	ch := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	if err := e.rec(t, sid).conn.Send(NewMessage([]byte("x"), false)); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ch).header.Get("Set-Cookie"); got != "" {
		t.Errorf("poll Set-Cookie = %q", got)
	}
	// WebSocket handshakes get it too.
	ws, resp, err := e.dial(t, "EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	_, data := wsRead(t, ws)
	if got, want := resp.Header.Get("Set-Cookie"), "io="+parseOpen(t, data).SID+"; Path=/; HttpOnly; SameSite=Lax"; got != want {
		t.Errorf("websocket Set-Cookie = %q, want %q", got, want)
	}
}

func TestAcceptCloses(t *testing.T) {
	var srvConn *Conn
	var rec *recorder
	s := NewServer(quietConfig(), func(c *Conn) Handler {
		srvConn = c
		rec = &recorder{conn: c, closed: make(chan struct{})}
		if err := c.Send(NewMessage([]byte("hi"), false)); err != nil {
			t.Error(err)
		}
		c.Close()
		if rec.closeCount() != 0 {
			t.Error("OnClose called before accept returned")
		}
		return rec
	})
	defer s.Close()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=polling", nil))
	if body := w.Body.String(); !strings.HasPrefix(body, "0{") || !strings.HasSuffix(body, "\x1e1") {
		t.Errorf("body %q", body)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonForcedClose {
		t.Errorf("reason %q", ev.reason)
	}
	if s.Count() != 0 {
		t.Errorf("Count = %d", s.Count())
	}
	select {
	case <-srvConn.Done():
	case <-time.After(time.Second):
		t.Error("Done not closed")
	}
}
