package engineio

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// probe opens the upgrade WebSocket for sid and completes the probe.
func (e *testEnv) probe(t *testing.T, sid string) *websocket.Conn {
	t.Helper()
	ws, _, err := e.dial(t, "EIO=4&transport=websocket&sid="+sid)
	if err != nil {
		t.Fatal(err)
	}
	wsWrite(t, ws, websocket.TextMessage, "2probe")
	if _, data := wsRead(t, ws); data != "3probe" {
		t.Fatalf("probe answer %q", data)
	}
	return ws
}

func TestUpgrade(t *testing.T) {
	e := newEnv(t, suiteConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	ws := e.probe(t, sid)
	// The next GET is answered with a noop while upgrading.
	if r := e.poll(t, sid); r.status != 200 || r.body != "6" {
		t.Fatalf("GET while upgrading: %d %q", r.status, r.body)
	}
	if got := rec.conn.Transport(); got != TransportPolling {
		t.Errorf("Transport before 5 = %q", got)
	}
	wsWrite(t, ws, websocket.TextMessage, "5")
	wsWrite(t, ws, websocket.TextMessage, "4hello")
	if _, data := wsRead(t, ws); data != "4hello" {
		t.Fatalf("echo over websocket: %q", data)
	}
	if got := rec.conn.Transport(); got != TransportWebSocket {
		t.Errorf("Transport after 5 = %q", got)
	}
	// Polling is over for this session.
	checkErrorResponse(t, e.poll(t, sid), 400, 3, "Bad request")
	checkErrorResponse(t, e.post(t, sid, "4x"), 400, 3, "Bad request")
	// A second WebSocket for the sid is closed at once.
	ws2, _, err := e.dial(t, "EIO=4&transport=websocket&sid="+sid)
	if err == nil {
		wsExpectClosed(t, ws2)
	}
	// The session is unaffected, heartbeat included.
	if _, data := wsRead(t, ws); data != "2" {
		t.Fatalf("ping over websocket: %q", data)
	}
	wsWrite(t, ws, websocket.TextMessage, "3")
	wsWrite(t, ws, websocket.TextMessage, "4again")
	if _, data := wsRead(t, ws); data != "4again" {
		t.Fatalf("echo: %q", data)
	}
	if rec.closeCount() != 0 {
		t.Errorf("session closed: %+v", rec.closes)
	}
}

func TestUpgradePendingGETGetsNoop(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	get := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	ws := e.probe(t, sid)
	if r := recv(t, get); r.body != "6" {
		t.Fatalf("pending GET = %q", r.body)
	}
	wsWrite(t, ws, websocket.TextMessage, "5")
	wsWrite(t, ws, websocket.TextMessage, "4x")
	if _, data := wsRead(t, ws); data != "4x" {
		t.Fatalf("echo %q", data)
	}
}

func TestUpgradeSwitchReleasesGET(t *testing.T) {
	// A GET still parked when "5" arrives is answered with a noop; the
	// queue then goes to the WebSocket.
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	ws := e.probe(t, sid)
	get := e.pollAsync(t, sid)
	if r := recv(t, get); r.body != "6" { // the 100 ms check
		t.Fatalf("GET = %q", r.body)
	}
	get = e.pollAsync(t, sid)
	c := e.rec(t, sid).conn
	c.mu.Lock()
	stopTimer(c.srv, c.checkTimer.detach()) // no more checks: only the switch can release it
	c.mu.Unlock()
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	wsWrite(t, ws, websocket.TextMessage, "5")
	if r := recv(t, get); r.body != "6" {
		t.Fatalf("GET at switch = %q", r.body)
	}
	if err := c.Send(NewMessage([]byte("after"), false)); err != nil {
		t.Fatal(err)
	}
	if _, data := wsRead(t, ws); data != "4after" {
		t.Fatalf("got %q", data)
	}
}

func TestUpgradeAborted(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		act  func(t *testing.T, ws *websocket.Conn)
	}{
		{"timeout", func(c *Config) { c.UpgradeTimeout = 150 * time.Millisecond }, func(*testing.T, *websocket.Conn) {}},
		{"message before 5", nil, func(t *testing.T, ws *websocket.Conn) {
			wsWrite(t, ws, websocket.TextMessage, "4hello")
		}},
		{"plain ping", nil, func(t *testing.T, ws *websocket.Conn) {
			wsWrite(t, ws, websocket.TextMessage, "2")
		}},
		{"binary", nil, func(t *testing.T, ws *websocket.Conn) {
			wsWrite(t, ws, websocket.BinaryMessage, "\x01")
		}},
		{"client closes", nil, func(t *testing.T, ws *websocket.Conn) { ws.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := quietConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e := newEnv(t, cfg, nil)
			sid := e.handshake(t)
			rec := e.rec(t, sid)
			ws := e.probe(t, sid)
			tt.act(t, ws)
			wsExpectClosed(t, ws)
			waitFor(t, "upgrade cancelled", func() bool {
				rec.conn.mu.Lock()
				defer rec.conn.mu.Unlock()
				return rec.conn.probe == nil
			})
			// The session goes on over polling.
			if r := e.post(t, sid, "4still here"); r.status != 200 {
				t.Fatalf("POST: %d", r.status)
			}
			if r := e.poll(t, sid); r.body != "4still here" {
				t.Fatalf("GET = %q", r.body)
			}
			if rec.conn.Transport() != TransportPolling || rec.closeCount() != 0 {
				t.Errorf("transport %q, closes %d", rec.conn.Transport(), rec.closeCount())
			}
			// And may upgrade again.
			ws = e.probe(t, sid)
			wsWrite(t, ws, websocket.TextMessage, "5")
			wsWrite(t, ws, websocket.TextMessage, "4up")
			if _, data := wsRead(t, ws); data != "4up" {
				t.Fatalf("echo %q", data)
			}
		})
	}
}

func TestUpgradeSecondWebSocketWhileUpgrading(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	ws := e.probe(t, sid)
	ws2, _, err := e.dial(t, "EIO=4&transport=websocket&sid="+sid)
	if err == nil {
		wsExpectClosed(t, ws2)
	}
	// The first upgrade still completes.
	wsWrite(t, ws, websocket.TextMessage, "5")
	wsWrite(t, ws, websocket.TextMessage, "4ok")
	if _, data := wsRead(t, ws); data != "4ok" {
		t.Fatalf("echo %q", data)
	}
}

func TestUpgradeDisabled(t *testing.T) {
	cfg := quietConfig()
	cfg.DisableUpgrades = true
	e := newEnv(t, cfg, nil)
	sid := e.handshake(t)
	ws, _, err := e.dial(t, "EIO=4&transport=websocket&sid="+sid)
	if err == nil {
		wsExpectClosed(t, ws)
	}
	if r := e.post(t, sid, "4x"); r.status != 200 {
		t.Errorf("POST: %d", r.status)
	}
}

func TestUpgradeSessionClosedDuringProbe(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	ws := e.probe(t, sid)
	rec.conn.Close()
	wsExpectClosed(t, ws)
	if ev := rec.waitClose(t); ev.reason != ReasonForcedClose {
		t.Errorf("close = %+v", ev)
	}
}

// TestUpgradeKeepsOrder sends a numbered sequence from another goroutine
// while a client upgrades the way the JS client does (probe, pause polling,
// "5"); every message must arrive exactly once and in order, some over
// polling and the rest over the WebSocket.
func TestUpgradeKeepsOrder(t *testing.T) {
	const n = 3000
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	c := e.rec(t, sid).conn

	var got []int
	var gotMu sync.Mutex
	add := func(pkt string) {
		if !strings.HasPrefix(pkt, "4") {
			return // noop, ping
		}
		i, err := strconv.Atoi(pkt[1:])
		if err != nil {
			t.Errorf("bad packet %q", pkt)
			return
		}
		gotMu.Lock()
		got = append(got, i)
		gotMu.Unlock()
	}

	// The poller: GETs in a loop until paused; the GET in flight when the
	// pause is requested completes first.
	var paused atomic.Bool
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		for !paused.Load() {
			r := e.poll(t, sid)
			if r.status != 200 {
				t.Errorf("GET: %d %q", r.status, r.body)
				return
			}
			for _, p := range strings.Split(r.body, "\x1e") {
				add(p)
			}
		}
	}()

	var polled int
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for i := range n {
			if err := c.Send(NewMessage([]byte(strconv.Itoa(i)), false)); err != nil {
				t.Errorf("Send %d: %v", i, err)
				return
			}
			if i%20 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	time.Sleep(20 * time.Millisecond)
	ws := e.probe(t, sid)
	paused.Store(true)
	<-pollerDone
	gotMu.Lock()
	polled = len(got)
	gotMu.Unlock()
	wsWrite(t, ws, websocket.TextMessage, "5")

	for {
		gotMu.Lock()
		have := len(got)
		gotMu.Unlock()
		if have >= n {
			break
		}
		_, data := wsRead(t, ws)
		add(data)
	}
	<-sendDone
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d is %d (polled %d before the switch)", i, v, polled)
		}
	}
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	t.Logf("%d of %d messages arrived over polling, the rest over the WebSocket", polled, n)
}
