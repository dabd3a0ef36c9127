package engineio

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHeartbeatPolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, suiteConfig(), nil)
	sid := e.handshake(t)
	start := time.Now()
	for i := range 3 {
		r := e.poll(t, sid)
		if r.status != 200 || r.body != "2" {
			t.Fatalf("round %d: GET %d %q, want ping", i, r.status, r.body)
		}
		if r := e.post(t, sid, "3"); r.status != 200 {
			t.Fatalf("round %d: POST pong %d", i, r.status)
		}
	}
	if d := time.Since(start); d < 850*time.Millisecond {
		t.Errorf("three pings in %v, want about 3×300ms", d)
	}
	if e.srv.Count() != 1 {
		t.Errorf("session closed")
	}
}

func TestHeartbeatPollingTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, suiteConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	time.Sleep(300*time.Millisecond + 200*time.Millisecond + 100*time.Millisecond)
	checkErrorResponse(t, e.poll(t, sid), 400, 1, "Session ID unknown")
	if ev := rec.waitClose(t); ev.reason != ReasonPingTimeout {
		t.Errorf("close = %+v", ev)
	}
}

func TestHeartbeatWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, suiteConfig(), nil)
	ws, sid := e.openWS(t)
	rec := e.rec(t, sid)
	for i := range 3 {
		if mt, data := wsRead(t, ws); mt != websocket.TextMessage || data != "2" {
			t.Fatalf("round %d: got %q, want ping", i, data)
		}
		wsWrite(t, ws, websocket.TextMessage, "3")
	}
	// Stop answering: closed about pingInterval+pingTimeout later.
	start := time.Now()
	wsExpectClosed(t, ws)
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
		t.Errorf("closed after %v, want about 500ms", d)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonPingTimeout {
		t.Errorf("close = %+v", ev)
	}
}

func TestHeartbeatUnsolicitedPong(t *testing.T) {
	t.Parallel()
	// A pong that answers no ping neither breaks nor delays the heartbeat.
	e := newEnv(t, suiteConfig(), nil)
	ws, _ := e.openWS(t)
	wsWrite(t, ws, websocket.TextMessage, "3")
	start := time.Now()
	if _, data := wsRead(t, ws); data != "2" {
		t.Fatalf("got %q", data)
	}
	if d := time.Since(start); d > 600*time.Millisecond {
		t.Errorf("first ping after %v", d)
	}
}

func TestTimersStopOnClose(t *testing.T) {
	e := newEnv(t, suiteConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	rec.conn.Close()
	rec.waitClose(t)
	time.Sleep(600 * time.Millisecond) // past ping interval and timeout
	if n := rec.closeCount(); n != 1 {
		t.Errorf("OnClose called %d times", n)
	}
	c := rec.conn
	c.mu.Lock()
	queued := len(c.queue)
	c.mu.Unlock()
	w := c.srv.hb
	w.mu.Lock()
	armed, buckets := c.hb.b != nil, len(w.buckets)
	w.mu.Unlock()
	if armed || buckets != 0 || queued != 0 {
		t.Errorf("in the wheel %v (%d buckets left), queue %d after close", armed, buckets, queued)
	}
}

func TestPingDelayAligns(t *testing.T) {
	// Deadlines armed at different instants within a tick fall on the same
	// tick, never earlier than asked, never later by a tick or more.
	interval := 25 * time.Second
	due := map[int64]bool{}
	base := 7 * time.Hour
	for _, off := range []time.Duration{time.Nanosecond, time.Millisecond, 37 * time.Millisecond, 99 * time.Millisecond, pingTick} {
		now := base + off
		n := dueTick(now, interval, pingTick)
		at := time.Duration(n) * pingTick
		if d := at - now; d < interval || d >= interval+pingTick {
			t.Fatalf("armed at +%v: delay %v, want in [%v, %v)", off, d, interval, interval+pingTick)
		}
		due[n] = true
	}
	if len(due) != 1 {
		t.Fatalf("deadlines armed within one tick fall on %d ticks, want 1: %v", len(due), due)
	}
}

// A client that keeps sending messages but does not answer pings is not
// closed while messages come (the reader may be behind them, and the pong
// with it); once it stops, it is closed within two PingTimeouts or so.
func TestHeartbeatTimeoutAfterMessagesStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, suiteConfig(), nil) // 300 ms interval, 200 ms timeout
	ws, sid := e.openWS(t)
	rec := e.rec(t, sid)
	talk := time.Now().Add(time.Second) // past interval + timeout twice
	for time.Now().Before(talk) {
		wsWrite(t, ws, websocket.TextMessage, "4hello")
		time.Sleep(50 * time.Millisecond)
	}
	if e.srv.Count() != 1 {
		t.Fatalf("closed while the client was sending")
	}
	stop := time.Now()
	ev := rec.waitClose(t)
	if ev.reason != ReasonPingTimeout {
		t.Errorf("close = %+v", ev)
	}
	if d := time.Since(stop); d > 2*time.Second {
		t.Errorf("closed %v after the client stopped", d)
	}
}
