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
	defer c.mu.Unlock()
	if c.pingTimer.t != nil || len(c.queue) != 0 {
		t.Errorf("timer %v, queue %d after close", c.pingTimer.t, len(c.queue))
	}
}

func TestPingDelayAligns(t *testing.T) {
	// Pings of connections armed at different instants fall on the same
	// tick, never earlier than the interval, never later by a tick or more.
	base := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	interval := 25 * time.Second
	due := map[time.Time]bool{}
	for _, off := range []time.Duration{time.Nanosecond, time.Millisecond, 37 * time.Millisecond, 99 * time.Millisecond, pingTick} {
		now := base.Add(off)
		d := pingDelay(now, interval, pingTick)
		if d < interval || d >= interval+pingTick {
			t.Fatalf("armed at +%v: delay %v, want in [%v, %v)", off, d, interval, interval+pingTick)
		}
		due[now.Add(d)] = true
	}
	if len(due) != 1 {
		t.Fatalf("pings armed within one tick fall on %d instants, want 1: %v", len(due), due)
	}
}
