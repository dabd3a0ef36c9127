package engineio

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPollingEcho(t *testing.T) {
	tests := []struct {
		name, post, want string
	}{
		{"text", "4hello", "4hello"},
		{"batch", "4test1\x1e4test2\x1e4test3", "4test1\x1e4test2\x1e4test3"},
		{"binary", "4hello\x1ebAQIDBA==", "4hello\x1ebAQIDBA=="},
		{"utf8", "4é😀", "4é😀"},
		{"empty message", "4", "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, quietConfig(), nil)
			sid := e.handshake(t)
			r := e.post(t, sid, tt.post)
			if r.status != 200 || r.body != "ok" {
				t.Fatalf("POST: %d %q", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/html" {
				t.Errorf("POST Content-Type = %q", ct)
			}
			g := e.poll(t, sid)
			if g.status != 200 || g.body != tt.want {
				t.Fatalf("GET: %d %q, want %q", g.status, g.body, tt.want)
			}
			if ct := g.header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
				t.Errorf("GET Content-Type = %q", ct)
			}
		})
	}
}

func TestPollingLongPoll(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	ch := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	select {
	case r := <-ch:
		t.Fatalf("GET answered early: %q", r.body)
	case <-time.After(50 * time.Millisecond):
	}
	c := e.rec(t, sid).conn
	if err := c.Send(NewMessage([]byte("a"), false), NewMessage([]byte{0xff}, true)); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, ch); r.body != "4a\x1eb/w==" {
		t.Fatalf("GET = %q", r.body)
	}
}

func TestPollingInvalidPacket(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	if r := e.post(t, sid, "abc"); r.status != 400 {
		t.Errorf("POST abc: %d", r.status)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonParseError || ev.err == nil {
		t.Errorf("close = %+v", ev)
	}
	checkErrorResponse(t, e.poll(t, sid), 400, 1, "Session ID unknown")
}

func TestPollingMessagesBeforeInvalidPacket(t *testing.T) {
	e := newEnv(t, quietConfig(), func(r *recorder) { r.onMessage = func(*recorder, []byte, bool) {} })
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	e.post(t, sid, "4one\x1e4two\x1e9bad\x1e4three")
	rec.waitClose(t)
	if got := strings.Join(rec.msgs, ","); got != "t:one,t:two" {
		t.Errorf("messages %q", got)
	}
}

func TestPollingDuplicateGET(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	first := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	second := e.poll(t, sid)
	if second.status != 400 {
		t.Errorf("second GET: %d", second.status)
	}
	if r := recv(t, first); r.status != 200 || r.body != "1" {
		t.Errorf("first GET: %d %q, want 200 \"1\"", r.status, r.body)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonTransportError {
		t.Errorf("close = %+v", ev)
	}
	checkErrorResponse(t, e.poll(t, sid), 400, 1, "Session ID unknown")
}

func TestPollingClosePacket(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	get := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	if r := e.post(t, sid, "1"); r.status != 200 || r.body != "ok" {
		t.Errorf("POST 1: %d %q", r.status, r.body)
	}
	if r := recv(t, get); r.status != 200 || r.body != "6" {
		t.Errorf("pending GET: %d %q, want 200 \"6\"", r.status, r.body)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonTransportClose || ev.err != nil {
		t.Errorf("close = %+v", ev)
	}
	checkErrorResponse(t, e.poll(t, sid), 400, 1, "Session ID unknown")
}

func TestPollingForcedClose(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	get := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	rec.conn.Close()
	rec.conn.Close()
	if r := recv(t, get); r.body != "1" {
		t.Errorf("pending GET = %q, want \"1\"", r.body)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonForcedClose || ev.err != nil {
		t.Errorf("close = %+v", ev)
	}
	if err := rec.conn.Send(NewMessage([]byte("x"), false)); err != ErrClosed {
		t.Errorf("Send after close = %v", err)
	}
	if rec.closeCount() != 1 {
		t.Errorf("OnClose called %d times", rec.closeCount())
	}
}

func TestPollingCloseFromHandler(t *testing.T) {
	// A handler that sends a goodbye and closes from inside OnMessage: the
	// goodbye reaches the parked GET before the close packet.
	e := newEnv(t, quietConfig(), func(r *recorder) {
		r.onMessage = func(r *recorder, data []byte, _ bool) {
			_ = r.conn.Send(NewMessage([]byte("bye"), false))
			r.conn.Close()
			if r.closeCount() != 0 {
				panic("OnClose ran inside OnMessage")
			}
		}
	})
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	get := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	// Hold the GET's wake-up until after the close by sending nothing else.
	e.post(t, sid, "4x")
	r := recv(t, get)
	if r.body != "4bye" && r.body != "4bye\x1e1" {
		t.Errorf("GET = %q", r.body)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonForcedClose {
		t.Errorf("close = %+v", ev)
	}
}

func TestPollingMaxPayload(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxPayload = 100
	e := newEnv(t, cfg, nil)
	sid := e.handshake(t)
	if o := parseOpen(t, e.do(t, "GET", "EIO=4&transport=polling", "", nil).body); o.MaxPayload != 100 {
		t.Errorf("maxPayload = %d", o.MaxPayload)
	}
	if r := e.post(t, sid, "4"+strings.Repeat("a", 100)); r.status != 413 {
		t.Errorf("POST 101 bytes: %d", r.status)
	}
	// Chunked (no Content-Length): still bounded.
	req, _ := http.NewRequest("POST", e.url("EIO=4&transport=polling&sid="+sid), struct{ *strings.Reader }{strings.NewReader("4" + strings.Repeat("a", 1000))})
	req.ContentLength = -1
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked POST: %d", resp.StatusCode)
	}
	// Exactly MaxPayload is fine and the session is still open.
	if r := e.post(t, sid, "4"+strings.Repeat("a", 99)); r.status != 200 {
		t.Errorf("POST 100 bytes: %d", r.status)
	}
	if r := e.poll(t, sid); r.body != "4"+strings.Repeat("a", 99) {
		t.Errorf("GET = %q", r.body)
	}
}

func TestPollingBinaryContentType(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	r := e.do(t, "POST", "EIO=4&transport=polling&sid="+sid, "4hello", http.Header{"Content-Type": {"application/octet-stream"}})
	if r.status != 400 {
		t.Errorf("status %d", r.status)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonTransportError {
		t.Errorf("close = %+v", ev)
	}
}

func TestPollingConcurrentPOST(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	e := newEnv(t, quietConfig(), func(r *recorder) {
		r.onMessage = func(*recorder, []byte, bool) {
			entered <- struct{}{}
			<-release
		}
	})
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	first := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.url("EIO=4&transport=polling&sid="+sid), strings.NewReader("4slow"))
		resp, err := e.client.Do(req)
		if err != nil {
			first <- response{status: -1}
			return
		}
		resp.Body.Close()
		first <- response{status: resp.StatusCode}
	}()
	<-entered
	if r := e.post(t, sid, "4second"); r.status != 400 {
		t.Errorf("second POST: %d", r.status)
	}
	// OnClose waits for the running OnMessage.
	select {
	case <-rec.closed:
		t.Fatal("OnClose ran while OnMessage was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if ev := rec.waitClose(t); ev.reason != ReasonTransportError {
		t.Errorf("close = %+v", ev)
	}
	recv(t, first)
}

func TestPollingClientAbortsGET(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url("EIO=4&transport=polling&sid="+sid), nil)
		if resp, err := e.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	cancel()
	<-done
	if ev := rec.waitClose(t); ev.reason != ReasonTransportError {
		t.Errorf("close = %+v", ev)
	}
	waitFor(t, "GET handler to return", func() bool {
		rec.conn.mu.Lock()
		defer rec.conn.mu.Unlock()
		return !rec.conn.getActive
	})
}

func TestPollingClientPing(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	e.post(t, sid, "2")
	if ev := rec.waitClose(t); ev.reason != ReasonTransportError || ev.err != errClientPing {
		t.Errorf("close = %+v", ev)
	}
}

func TestPollingAfterUpgradeFields(t *testing.T) {
	// Packets ignored on the active transport: open, upgrade, noop.
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	if r := e.post(t, sid, "6\x1e5\x1e0\x1e4still"); r.status != 200 {
		t.Fatalf("POST: %d", r.status)
	}
	if r := e.poll(t, sid); r.body != "4still" {
		t.Errorf("GET = %q", r.body)
	}
}

// TestPollingServerCloseSendsCloseAlone: a GET held when the server closes
// gets the close packet alone, never after messages queued in the same
// payload. socket.io-client would handle the close first and the messages
// on its next tick, after "transport close": it keeps them for its next
// session, and a recovering client, whose offset they did not move, also
// gets them in what its recovery replays (a duplicate in TestRollingRestart).
// The state is made under the connection's lock, as Server.Close leaves it
// when its end of the linger comes before the held GET wakes: a message
// queued, the session closed and no longer lingering.
func TestPollingServerCloseSendsCloseAlone(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	get := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	c := rec.conn
	c.mu.Lock()
	c.pushLocked(NewMessage([]byte("last"), false))
	op := c.closeLocked(ReasonForcedClose, nil)
	c.lingering = false // endLinger, before the GET takes the lock
	lt := c.lingerTimer
	c.lingerTimer = nil
	c.mu.Unlock()
	stopTimer(c.srv, lt)
	op.run()
	c.srv.unregister(c)
	if r := recv(t, get); r.body != "1" {
		t.Errorf("held GET = %q, want the close packet alone", r.body)
	}
}
