package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Bad input at the HTTP and WebSocket level, with plain Go clients; other clients (the
// official socket.io-client over WebSocket) must be unharmed.

// maxHTTPBufferSize is the Socket.IO default the contract keeps.
const maxHTTPBufferSize = 1_000_000

// perTarget runs fn for every selected target with its own server and a client driver whose
// clients use WebSocket.
func perTarget(t *testing.T, fn func(e *env)) {
	t.Helper()
	t.Parallel()
	for _, tg := range selectedTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			fn(newEnv(t, tg, modes[0]))
		})
	}
}

func (e *env) engineURL(query string) string {
	return e.url + "/socket.io/?" + query
}

var httpClient = &http.Client{
	Timeout:   15 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256},
}

// do sends one request and returns status, content type and body.
func (e *env) do(method, query string, body []byte) (int, string, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx(), method, e.engineURL(query), bytes.NewReader(body))
	testkit.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := httpClient.Do(req)
	testkit.NoError(e.t, err, "%s %s", method, query)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	testkit.NoError(e.t, err, "%s %s: body", method, query)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// pollingHandshake opens a polling session and returns its sid.
func (e *env) pollingHandshake() string {
	e.t.Helper()
	status, _, body := e.do("GET", "EIO=4&transport=polling", nil)
	testkit.Equal(e.t, status, 200, "handshake: %s", body)
	return openSid(e.t, body)
}

// openSid checks an Engine.IO open packet and returns its sid.
func openSid(t *testing.T, packet string) string {
	t.Helper()
	testkit.True(t, strings.HasPrefix(packet, "0{"), "not an open packet: %q", packet)
	var open struct {
		Sid string `json:"sid"`
	}
	testkit.NoError(t, json.Unmarshal([]byte(packet[1:]), &open), "open packet %q", packet)
	testkit.True(t, idPattern.MatchString(open.Sid), "sid %q", open.Sid)
	return open.Sid
}

func TestHTTPErrors(t *testing.T) {
	perTarget(t, func(e *env) {
		for _, tc := range []struct {
			name, method, query string
			code                int
			message             string
		}{
			{"unknown sid", "GET", "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", 1, "Session ID unknown"},
			{"unknown sid on POST", "POST", "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", 1, "Session ID unknown"},
			{"EIO 3", "GET", "EIO=3&transport=polling", 5, "Unsupported protocol version"},
			{"EIO garbage", "GET", "EIO=abc&transport=polling", 5, "Unsupported protocol version"},
			{"no EIO", "GET", "transport=polling", 5, "Unsupported protocol version"},
			{"unknown transport", "GET", "EIO=4&transport=abc", 0, "Transport unknown"},
			{"unknown transport, no EIO", "GET", "transport=abc", 0, "Transport unknown"},
			{"no transport", "GET", "EIO=4", 0, "Transport unknown"},
			{"PUT handshake", "PUT", "EIO=4&transport=polling", 2, "Bad handshake method"},
			{"POST handshake", "POST", "EIO=4&transport=polling", 2, "Bad handshake method"},
			{"websocket without Upgrade", "GET", "EIO=4&transport=websocket", 3, "Bad request"},
		} {
			var body []byte
			if tc.method != "GET" {
				body = []byte("40")
			}
			status, ctype, got := e.do(tc.method, tc.query, body)
			testkit.Equal(e.t, status, 400, "%s: status (body %q)", tc.name, got)
			testkit.True(e.t, strings.HasPrefix(ctype, "application/json"), "%s: Content-Type %q", tc.name, ctype)
			testkit.JSONEqual(e.t, got, fmt.Sprintf(`{"code":%d,"message":%q}`, tc.code, tc.message), tc.name)
		}

		// A session still works after all that.
		c := e.connect()
		testkit.Equal(e.t, c.ack("echo", "ok"), list{"ok"})
	})
}

func TestOversizedPost(t *testing.T) {
	perTarget(t, func(e *env) {
		other := e.connect()
		sid := e.pollingHandshake()
		q := "EIO=4&transport=polling&sid=" + sid
		body := append([]byte("4"), bytes.Repeat([]byte("x"), maxHTTPBufferSize)...)
		status, _, got := e.do("POST", q, body)
		testkit.Equal(e.t, status, 413, "POST of %d bytes: %q", len(body), got)
		testkit.Equal(e.t, other.ack("echo", "unharmed"), list{"unharmed"})

		// Just under the limit is fine.
		sid = e.pollingHandshake()
		q = "EIO=4&transport=polling&sid=" + sid
		status, _, got = e.do("POST", q, []byte("40"))
		testkit.Equal(e.t, status, 200, "POST 40: %q", got)
		status, _, got = e.do("GET", q, nil)
		testkit.Equal(e.t, status, 200)
		testkit.True(e.t, strings.HasPrefix(got, `40{"sid":"`), "CONNECT reply: %q", got)
		payload := "42" + mustJSON(e.t, list{"echo-event", "big", strings.Repeat("y", maxHTTPBufferSize-100)})
		status, _, got = e.do("POST", q, []byte(payload))
		testkit.Equal(e.t, status, 200, "POST of %d bytes: %q", len(payload), got)
	})
}

// rawWS is a WebSocket speaking Engine.IO/Socket.IO by hand.
type rawWS struct {
	e    *env
	conn *websocket.Conn
	sid  string // Engine.IO sid
	id   string // socket id on "/" once connected
}

// dialWS opens a raw WebSocket session and reads the open packet.
func (e *env) dialWS() *rawWS {
	e.t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.DialContext(e.ctx(), "ws"+strings.TrimPrefix(e.engineURL("EIO=4&transport=websocket"), "http"), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	testkit.NoError(e.t, err, "websocket dial")
	e.t.Cleanup(func() { conn.Close() })
	r := &rawWS{e: e, conn: conn}
	r.sid = openSid(e.t, r.read())
	return r
}

// read returns the next text message, answering and skipping pings.
func (r *rawWS) read() string {
	r.e.t.Helper()
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(opTimeout))
		typ, b, err := r.conn.ReadMessage()
		testkit.NoError(r.e.t, err, "websocket read")
		if typ == websocket.TextMessage && string(b) == "2" {
			r.send("3")
			continue
		}
		return string(b)
	}
}

func (r *rawWS) send(s string) {
	r.e.t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(opTimeout))
	testkit.NoError(r.e.t, r.conn.WriteMessage(websocket.TextMessage, []byte(s)), "websocket write")
}

// connect joins "/" and reads the CONNECT reply and the welcome.
func (r *rawWS) connect() {
	r.e.t.Helper()
	r.send("40")
	reply := r.read()
	testkit.True(r.e.t, strings.HasPrefix(reply, "40{"), "CONNECT reply %q", reply)
	var c struct {
		Sid string `json:"sid"`
	}
	testkit.NoError(r.e.t, json.Unmarshal([]byte(reply[2:]), &c))
	r.id = c.Sid
	welcome := r.read()
	testkit.True(r.e.t, strings.HasPrefix(welcome, `42["welcome",`), "welcome %q", welcome)
}

// expectClosed waits for the server to close the connection.
func (r *rawWS) expectClosed(what string) {
	r.e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = r.conn.SetReadDeadline(deadline)
		typ, b, err := r.conn.ReadMessage()
		if err != nil {
			if time.Now().After(deadline) {
				r.e.t.Fatalf("%s: connection still open after 5 s", what)
			}
			return
		}
		if typ == websocket.TextMessage && string(b) == "2" {
			_ = r.conn.WriteMessage(websocket.TextMessage, []byte("3"))
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	testkit.NoError(t, err)
	return string(b)
}

func TestOversizedWebSocketFrame(t *testing.T) {
	perTarget(t, func(e *env) {
		other := e.connect()

		// Under the limit: echoed.
		r := e.dialWS()
		r.connect()
		big := strings.Repeat("z", maxHTTPBufferSize-1000)
		r.send(`421["echo","` + big + `"]`)
		testkit.Equal(e.t, r.read(), `431["`+big+`"]`, "ack of a large frame")

		// Over the limit: closed, server reason "transport error".
		r.send(`422["echo","` + strings.Repeat("z", maxHTTPBufferSize) + `"]`)
		r.expectClosed("frame over maxHttpBufferSize")
		testkit.Equal(e.t, other.ack("echo", "unharmed"), list{"unharmed"})
		want := obj{"id": r.id, "reason": "transport error", "rooms": list{r.id}}
		e.eventually("last-disconnect", func() (bool, any) {
			got := other.ack1("last-disconnect")
			return show(got) == show(want), got
		})
	})
}

func TestMalformedPacket(t *testing.T) {
	perTarget(t, func(e *env) {
		other := e.connect()
		for _, packet := range []string{`42{}`, `42abc["x"]`, `4abc`, `49`, `42["connect"]`, `42[]`, `42[1`} {
			r := e.dialWS()
			r.connect()
			r.send(packet)
			r.expectClosed(packet)
			testkit.Equal(e.t, other.ack("echo", packet), list{packet}, "after %q", packet)
		}
		// Before any CONNECT too.
		r := e.dialWS()
		r.send(`42{}`)
		r.expectClosed("before CONNECT")

		// Over polling: the session is closed.
		sid := e.pollingHandshake()
		q := "EIO=4&transport=polling&sid=" + sid
		status, _, _ := e.do("POST", q, []byte("40"))
		testkit.Equal(e.t, status, 200)
		_, _, got := e.do("GET", q, nil)
		testkit.True(e.t, strings.HasPrefix(got, "40{"), "CONNECT reply %q", got)
		req, err := http.NewRequestWithContext(e.ctx(), "POST", e.engineURL(q), strings.NewReader(`42{}`))
		testkit.NoError(e.t, err)
		if resp, err := httpClient.Do(req); err == nil { // the reference may abort the request
			resp.Body.Close()
		}
		closed := false
		for i := 0; i < 3 && !closed; i++ {
			status, _, got = e.do("GET", q, nil)
			closed = status == 400 || strings.Contains(got, "\x1e1") || strings.HasPrefix(got, "1")
		}
		testkit.True(e.t, closed, "polling session still open after a malformed packet (last: %d %q)", status, got)
		testkit.Equal(e.t, other.ack("echo", "end"), list{"end"})
	})
}

// TestConnectionFlood opens 200 connections at once (half polling handshakes, half
// WebSockets): each gets a handshake or a clean HTTP error, and an existing client carries
// on meanwhile.
func TestConnectionFlood(t *testing.T) {
	perTarget(t, func(e *env) {
		const n = 200
		other := e.connect()
		results := make([]floodOutcome, n)
		var wsConns sync.Map
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				if i%2 == 0 {
					results[i] = floodPolling(e)
					return
				}
				d := websocket.Dialer{HandshakeTimeout: 15 * time.Second}
				conn, resp, err := d.Dial("ws"+strings.TrimPrefix(e.engineURL("EIO=4&transport=websocket"), "http"), nil)
				if err != nil {
					if resp != nil {
						resp.Body.Close()
						results[i] = floodOutcome{err: fmt.Sprintf("HTTP %d", resp.StatusCode)}
						return
					}
					results[i] = floodOutcome{bad: err.Error()}
					return
				}
				wsConns.Store(i, conn)
				_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
				_, b, err := conn.ReadMessage()
				if err != nil || !strings.HasPrefix(string(b), "0{") {
					results[i] = floodOutcome{bad: fmt.Sprintf("open packet %q, %v", b, err)}
					return
				}
				var open struct {
					Sid string `json:"sid"`
				}
				_ = json.Unmarshal(b[1:], &open)
				results[i] = floodOutcome{sid: open.Sid}
			}(i)
		}
		close(start)
		// The existing client carries on during the flood.
		for i := 0; i < 5; i++ {
			testkit.Equal(e.t, other.ack("echo", i), list{float64(i)})
		}
		wg.Wait()
		defer wsConns.Range(func(_, v any) bool { v.(*websocket.Conn).Close(); return true })

		sids := map[string]bool{}
		ok, clean := 0, 0
		for i, r := range results {
			switch {
			case r.bad != "":
				e.t.Errorf("connection %d: %s", i, r.bad)
			case r.err != "":
				clean++
			default:
				testkit.True(e.t, idPattern.MatchString(r.sid), "connection %d: sid %q", i, r.sid)
				testkit.True(e.t, !sids[r.sid], "sid %s given twice", r.sid)
				sids[r.sid] = true
				ok++
			}
		}
		e.t.Logf("flood: %d handshakes, %d clean errors", ok, clean)
		testkit.Equal(e.t, other.ack("echo", "after"), list{"after"})
		fresh := e.connect()
		testkit.Equal(e.t, fresh.ack("echo", "fresh"), list{"fresh"})
	})
}

// floodOutcome is what one connection of TestConnectionFlood got.
type floodOutcome struct {
	sid string
	err string // a clean error
	bad string // neither a handshake nor a clean error
}

// floodPolling performs one polling handshake for TestConnectionFlood.
func floodPolling(e *env) (o floodOutcome) {
	resp, err := httpClient.Get(e.engineURL("EIO=4&transport=polling"))
	if err != nil {
		o.bad = err.Error()
		return o
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		o.bad = err.Error()
		return o
	}
	if resp.StatusCode != 200 {
		o.err = fmt.Sprintf("HTTP %d %s", resp.StatusCode, b)
		return o
	}
	if !strings.HasPrefix(string(b), "0{") {
		o.bad = fmt.Sprintf("handshake body %q", b)
		return o
	}
	var open struct {
		Sid string `json:"sid"`
	}
	_ = json.Unmarshal(b[1:], &open)
	o.sid = open.Sid
	return o
}
