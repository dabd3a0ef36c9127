package engineio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestMain fails the run if a goroutine of the library outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if stacks := libraryGoroutines(5 * time.Second); stacks != "" {
			fmt.Fprintf(os.Stderr, "leaked library goroutines:\n%s\n", stacks)
			code = 1
		}
	}
	os.Exit(code)
}

// libraryGoroutines waits up to d for every goroutine running library code
// (not test code) to exit, and returns the stacks of those left.
func libraryGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "ioswarm/engineio.(*") && !strings.Contains(g, "_test.go") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// suiteConfig is the configuration the engine.io-protocol test suite
// expects: 300/200 ms heartbeat, 1e6 max payload, CORS origin "*".
func suiteConfig() Config {
	return Config{
		PingInterval: 300 * time.Millisecond,
		PingTimeout:  200 * time.Millisecond,
		CORS:         &CORS{AllowedOrigins: []string{"*"}},
	}
}

// quietConfig has a heartbeat slow enough not to interfere with a test.
func quietConfig() Config {
	return Config{PingInterval: time.Minute, PingTimeout: time.Minute}
}

type closeEvent struct {
	reason string
	err    error
}

// recorder is a Handler that records events and, by default, echoes every
// message back like the suite's reference server.
type recorder struct {
	conn      *Conn
	onMessage func(r *recorder, data []byte, binary bool) // nil means echo

	mu     sync.Mutex
	msgs   []string // "t:"+text or "b:"+bytes
	closes []closeEvent
	closed chan struct{}
}

func (r *recorder) OnMessage(data []byte, binary bool) {
	r.mu.Lock()
	kind := "t:"
	if binary {
		kind = "b:"
	}
	r.msgs = append(r.msgs, kind+string(data))
	r.mu.Unlock()
	if r.onMessage != nil {
		r.onMessage(r, data, binary)
		return
	}
	_ = r.conn.Send(NewMessage(data, binary))
}

func (r *recorder) OnClose(reason string, err error) {
	r.mu.Lock()
	r.closes = append(r.closes, closeEvent{reason, err})
	n := len(r.closes)
	r.mu.Unlock()
	if n == 1 {
		close(r.closed)
	}
}

// waitClose waits for OnClose and returns its event.
func (r *recorder) waitClose(t *testing.T) closeEvent {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(20 * time.Second): // generous: some tests first queue 32 MiB under -race
		t.Fatal("OnClose not called")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closes[0]
}

func (r *recorder) closeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.closes)
}

// testEnv is a Server behind an httptest.Server, with raw HTTP and
// WebSocket clients.
type testEnv struct {
	srv    *Server
	ts     *httptest.Server
	client *http.Client

	mu   sync.Mutex
	recs map[string]*recorder
}

// newEnv starts a server; setup, if non-nil, customizes each recorder.
func newEnv(t *testing.T, cfg Config, setup func(*recorder)) *testEnv {
	t.Helper()
	return newEnvListener(t, cfg, setup, nil)
}

// newEnvListener is newEnv with the server's listener wrapped by wrap.
func newEnvListener(t *testing.T, cfg Config, setup func(*recorder), wrap func(net.Listener) net.Listener) *testEnv {
	t.Helper()
	e := &testEnv{recs: make(map[string]*recorder)}
	e.srv = NewServer(cfg, func(c *Conn) Handler {
		r := &recorder{conn: c, closed: make(chan struct{})}
		if setup != nil {
			setup(r)
		}
		e.mu.Lock()
		e.recs[c.ID()] = r
		e.mu.Unlock()
		return r
	})
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", e.srv)
	e.ts = httptest.NewUnstartedServer(mux)
	if wrap != nil {
		e.ts.Listener = wrap(e.ts.Listener)
	}
	e.ts.Start()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	e.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		e.srv.Close()
		tr.CloseIdleConnections()
		e.ts.Close()
	})
	return e
}

func (e *testEnv) rec(t *testing.T, sid string) *recorder {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.recs[sid]
	if r == nil {
		t.Fatalf("no session %q", sid)
	}
	return r
}

func (e *testEnv) url(query string) string { return e.ts.URL + "/engine.io/?" + query }

func (e *testEnv) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/engine.io/?" + query
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a raw HTTP request to the Engine.IO endpoint.
func (e *testEnv) do(t *testing.T, method, query, body string, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, e.url(query), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" && body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (e *testEnv) poll(t *testing.T, sid string) response {
	t.Helper()
	return e.do(t, http.MethodGet, "EIO=4&transport=polling&sid="+sid, "", nil)
}

func (e *testEnv) post(t *testing.T, sid, body string) response {
	t.Helper()
	return e.do(t, http.MethodPost, "EIO=4&transport=polling&sid="+sid, body, nil)
}

// pollAsync starts a GET and returns a channel for its response.
func (e *testEnv) pollAsync(t *testing.T, sid string) <-chan response {
	t.Helper()
	ch := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, e.url("EIO=4&transport=polling&sid="+sid), nil)
		resp, err := e.client.Do(req)
		if err != nil {
			ch <- response{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- response{resp.StatusCode, resp.Header, string(b)}
	}()
	return ch
}

func recv(t *testing.T, ch <-chan response) response {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no response")
		return response{}
	}
}

type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func parseOpen(t *testing.T, body string) openPacket {
	t.Helper()
	if !strings.HasPrefix(body, "0{") {
		t.Fatalf("not an open packet: %q", body)
	}
	var o openPacket
	dec := json.NewDecoder(strings.NewReader(body[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("open packet %q: %v", body, err)
	}
	return o
}

// handshake opens a polling session and returns its id.
func (e *testEnv) handshake(t *testing.T) string {
	t.Helper()
	r := e.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("handshake: %d %q", r.status, r.body)
	}
	return parseOpen(t, r.body).SID
}

func (e *testEnv) dial(t *testing.T, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(e.wsURL(query), nil)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// openWS opens a WebSocket-first session and returns it with its id.
func (e *testEnv) openWS(t *testing.T) (*websocket.Conn, string) {
	t.Helper()
	ws, _, err := e.dial(t, "EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	_, data := wsRead(t, ws)
	o := parseOpen(t, data)
	if len(o.Upgrades) != 0 {
		t.Fatalf("upgrades = %v, want []", o.Upgrades)
	}
	return ws, o.SID
}

// wsRead reads one message within 5 s.
func wsRead(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	return mt, string(data)
}

func wsWrite(t *testing.T, ws *websocket.Conn, mt int, data string) {
	t.Helper()
	if err := ws.WriteMessage(mt, []byte(data)); err != nil {
		t.Fatalf("websocket write: %v", err)
	}
}

// wsExpectClosed reads until the socket fails, skipping up to a few
// messages (e.g. a ping), and fails if it stays open.
func wsExpectClosed(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 16 {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("websocket still open")
			}
			return
		}
	}
	t.Fatal("websocket still open")
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pending reports whether the session's polling GET is parked.
func (e *testEnv) pending(sid string) bool {
	c := e.srv.lookup(sid)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getPending
}

func websocketDialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
}

// relay is a recorder callback that sends every message it receives to
// every connection of the environment, the sender included: a broadcast.
func (e *testEnv) relay(_ *recorder, data []byte, binary bool) {
	e.mu.Lock()
	recs := make([]*recorder, 0, len(e.recs))
	for _, r := range e.recs {
		recs = append(recs, r)
	}
	e.mu.Unlock()
	m := NewMessage(data, binary)
	for _, r := range recs {
		_ = r.conn.Send(m)
	}
}

// allocatedBytes returns the bytes the process has allocated on the heap
// so far: growth over an attack bounds its peak memory, whatever was freed.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// liveHeap returns the bytes of live heap objects, after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// wsExpectCloseCode reads until the server's close frame and checks its
// status code.
func wsExpectCloseCode(t *testing.T, ws *websocket.Conn, code int) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 16 {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read error %v, want close frame %d", err, code)
		}
		if ce.Code != code {
			t.Fatalf("close code %d, want %d", ce.Code, code)
		}
		return
	}
	t.Fatal("websocket still open")
}

// expectEcho checks that a healthy WebSocket client still gets its
// messages echoed.
func expectEcho(t *testing.T, ws *websocket.Conn, text string) {
	t.Helper()
	wsWrite(t, ws, websocket.TextMessage, "4"+text)
	for range 16 { // skip pings
		_, data := wsRead(t, ws)
		if data == "2" {
			continue
		}
		if data != "4"+text {
			t.Fatalf("healthy client got %q, want %q", data, "4"+text)
		}
		return
	}
	t.Fatal("healthy client got no echo")
}

// peer is a well-behaved WebSocket client: it reads everything, answers
// pings, and hands the messages it gets to the test.
type peer struct {
	ws    *websocket.Conn
	msgs  chan string
	pongs atomic.Int32

	wmu sync.Mutex // serializes writes: the reader answers pings
}

// send writes a text frame.
func (p *peer) send(t *testing.T, text string) {
	t.Helper()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	wsWrite(t, p.ws, websocket.TextMessage, text)
}

// expectText waits for the next message and checks it.
func (p *peer) expectText(t *testing.T, want string) {
	t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok || m != want {
			t.Fatalf("client got %q (open %v), want %q", m, ok, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("client did not get %q", want)
	}
}

func startPeer(t *testing.T, ws *websocket.Conn) *peer {
	t.Helper()
	p := &peer{ws: ws, msgs: make(chan string, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(p.msgs)
		for {
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if string(data) == "2" {
				p.wmu.Lock()
				err := ws.WriteMessage(websocket.TextMessage, []byte("3"))
				p.wmu.Unlock()
				if err != nil {
					return
				}
				p.pongs.Add(1)
				continue
			}
			p.msgs <- string(data)
		}
	}()
	t.Cleanup(func() { ws.Close(); wg.Wait() })
	return p
}

// expect waits for the next message and checks its length.
func (p *peer) expect(t *testing.T, n int) {
	t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok {
			t.Fatal("healthy client disconnected")
		}
		if len(m) != n {
			t.Fatalf("healthy client got %d bytes, want %d", len(m), n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("healthy client starved")
	}
}

// dialSmallBuffer opens a WebSocket session whose socket has a small,
// fixed receive buffer, so that a client that stops reading stalls the
// server's writes after a few kilobytes rather than megabytes.
func dialSmallBuffer(t *testing.T, e *testEnv) (*websocket.Conn, string) {
	t.Helper()
	d := websocketDialer()
	d.NetDialContext = smallBufferDial
	ws, _, err := d.Dial(e.wsURL("EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_, open := wsRead(t, ws)
	return ws, parseOpen(t, open).SID
}

func smallBufferDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
	}
	return c, err
}

// blindPongs makes ws answer the heartbeat without reading: it sends a pong
// every 20 ms (pongs that answer no ping are ignored), so only the send
// queue's bounds and the write timeout can tell it is not reading.
func blindPongs(t *testing.T, ws *websocket.Conn) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if ws.WriteMessage(websocket.TextMessage, []byte("3")) != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
