package engineio

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestServerCloseLeavesNothingBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	var recs []*recorder
	func() {
		e := &testEnv{recs: make(map[string]*recorder)}
		e.srv = NewServer(quietConfig(), func(c *Conn) Handler {
			r := &recorder{conn: c, closed: make(chan struct{})}
			e.mu.Lock()
			e.recs[c.ID()] = r
			recs = append(recs, r)
			e.mu.Unlock()
			return r
		})
		e.ts = httptest.NewServer(e.srv)
		e.ts.URL += "/engine.io" // the server takes any path
		tr := &http.Transport{}
		e.client = &http.Client{Transport: tr}
		defer e.ts.Close()
		defer tr.CloseIdleConnections()
		defer e.srv.Close() // on failure; idempotent

		// Polling sessions with parked GETs.
		var gets []<-chan response
		for range 3 {
			sid := e.handshake(t)
			gets = append(gets, e.pollAsync(t, sid))
			waitFor(t, "pending GET", func() bool { return e.pending(sid) })
		}
		// WebSocket sessions, one upgrading, one upgraded.
		var sockets []*websocket.Conn
		for range 3 {
			ws, _ := e.openWS(t)
			sockets = append(sockets, ws)
		}
		sockets = append(sockets, e.probe(t, e.handshake(t)))
		up := e.probe(t, e.handshake(t))
		wsWrite(t, up, websocket.TextMessage, "5")
		sockets = append(sockets, up)
		if n := e.srv.Count(); n != 8 {
			for _, r := range recs {
				t.Logf("%s %s closes=%+v", r.conn.ID(), r.conn.Transport(), r.closes)
			}
			t.Fatalf("Count = %d, want 8", n)
		}

		e.srv.Close()
		if n := e.srv.Count(); n != 0 {
			t.Errorf("Count after Close = %d", n)
		}
		for _, g := range gets {
			if r := recv(t, g); r.body != "1" {
				t.Errorf("parked GET = %q, want \"1\"", r.body)
			}
		}
		for _, ws := range sockets {
			wsExpectClosed(t, ws)
			ws.Close()
		}
		e.srv.Close() // idempotent
		if r := e.do(t, "GET", "EIO=4&transport=polling", "", nil); r.status != http.StatusServiceUnavailable {
			t.Errorf("handshake after Close: %d", r.status)
		}
	}()
	for _, r := range recs {
		if n := r.closeCount(); n != 1 {
			t.Errorf("%s: OnClose called %d times", r.conn.ID(), n)
		} else if ev := r.closes[0]; ev.reason != ReasonForcedClose {
			t.Errorf("%s: reason %q", r.conn.ID(), ev.reason)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerCloseWaitsForHandlers(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	e := newEnv(t, quietConfig(), func(r *recorder) {
		r.onMessage = func(*recorder, []byte, bool) {
			close(entered)
			<-release
		}
	})
	ws, _ := e.openWS(t)
	wsWrite(t, ws, websocket.TextMessage, "4block")
	<-entered
	closed := make(chan struct{})
	go func() {
		e.srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while OnMessage was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

func TestOnCloseExactlyOnceUnderConcurrency(t *testing.T) {
	e := newEnv(t, suiteConfig(), nil)
	const n = 20
	var recs []*recorder
	for i := range n {
		var sid string
		if i%2 == 0 {
			_, sid = e.openWS(t)
		} else {
			sid = e.handshake(t)
		}
		recs = append(recs, e.rec(t, sid))
	}
	var wg sync.WaitGroup
	msg := NewMessage([]byte("x"), false)
	for _, r := range recs {
		for range 3 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for range 100 {
					_ = r.conn.Send(msg)
					_ = r.conn.SendVolatile(msg)
				}
			}()
			go func() {
				defer wg.Done()
				r.conn.Close()
			}()
		}
	}
	go e.srv.Close()
	wg.Wait()
	e.srv.Close()
	for _, r := range recs {
		r.waitClose(t)
		if c := r.closeCount(); c != 1 {
			t.Errorf("OnClose called %d times", c)
		}
		select {
		case <-r.conn.Done():
		default:
			t.Error("Done not closed")
		}
	}
}

func TestSlowConsumer(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxQueuedMessages = 32
	e := newEnv(t, cfg, nil)
	slowWS, slowSID := e.openWS(t) // never reads again
	_ = slowWS
	fastWS, fastSID := e.openWS(t)
	slow, fast := e.rec(t, slowSID), e.rec(t, fastSID)

	got := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := fastWS.ReadMessage(); err != nil {
				readErr <- err
				return
			}
			got <- struct{}{}
		}
	}()
	big := NewMessage(bytes.Repeat([]byte("x"), 256<<10), false)
	var slowErr error
	for i := 0; i < 5000 && slowErr == nil; i++ {
		slowErr = slow.conn.Send(big)
		if err := fast.conn.Send(big); err != nil {
			t.Fatalf("fast consumer: %v", err)
		}
		select {
		case <-got:
		case err := <-readErr:
			t.Fatalf("fast consumer: read after %d messages: %v", i, err)
		case <-time.After(5 * time.Second):
			t.Fatal("fast consumer starved")
		}
	}
	if !errors.Is(slowErr, ErrSlowConsumer) {
		t.Fatalf("slow consumer never overflowed: %v", slowErr)
	}
	if ev := slow.waitClose(t); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrSlowConsumer) {
		t.Errorf("close = %+v", ev)
	}
	if err := slow.conn.Send(big); err != ErrClosed {
		t.Errorf("Send after overflow = %v", err)
	}
	// The other connection is unaffected.
	if err := fast.conn.Send(NewMessage([]byte("still"), false)); err != nil {
		t.Fatal(err)
	}
	<-got
	if fast.closeCount() != 0 || e.srv.Count() != 1 {
		t.Errorf("fast closes %d, Count %d", fast.closeCount(), e.srv.Count())
	}
}

func TestSlowConsumerPolling(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxQueuedMessages = 4
	e := newEnv(t, cfg, nil)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	m := NewMessage([]byte("x"), false)
	if err := rec.conn.Send(m, m, m); err != nil {
		t.Fatal(err)
	}
	// All or none: two more would overflow.
	if err := rec.conn.Send(m, m); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("Send = %v", err)
	}
	if ev := rec.waitClose(t); !errors.Is(ev.err, ErrSlowConsumer) {
		t.Errorf("close = %+v", ev)
	}
}

func TestSendVolatilePolling(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	c := e.rec(t, sid).conn
	if c.SendVolatile(NewMessage([]byte("dropped"), false)) {
		t.Error("queued without a pending GET")
	}
	get := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	if !c.SendVolatile(NewMessage([]byte("kept"), false)) {
		t.Error("dropped with a pending GET")
	}
	if r := recv(t, get); r.body != "4kept" {
		t.Errorf("GET = %q", r.body)
	}
}

func TestSendVolatileWebSocket(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	ws, sid := e.openWS(t)
	c := e.rec(t, sid).conn
	idle := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ws.owner == ownNone
	}
	waitFor(t, "idle writer", idle)
	if !c.SendVolatile(NewMessage([]byte("one"), false)) {
		t.Fatal("dropped on an idle connection")
	}
	// While the writer is busy (woken, not yet parked), volatile messages
	// are dropped.
	c.mu.Lock()
	busy := c.ws.owner != ownNone
	c.mu.Unlock()
	if busy && c.SendVolatile(NewMessage([]byte("two"), false)) {
		t.Error("queued while the writer was busy")
	}
	if _, data := wsRead(t, ws); data != "4one" {
		t.Fatalf("got %q", data)
	}
	waitFor(t, "idle writer", idle)
	// A non-empty queue also means not writable.
	c.mu.Lock()
	c.queue = append(c.queue, NewMessage([]byte("three"), false))
	c.mu.Unlock()
	if c.SendVolatile(NewMessage([]byte("four"), false)) {
		t.Error("queued behind a non-empty queue")
	}
	c.mu.Lock()
	c.wakeLocked()
	c.mu.Unlock()
	if _, data := wsRead(t, ws); data != "4three" {
		t.Fatalf("got %q", data)
	}
}

func TestCloseFromHandlerWebSocket(t *testing.T) {
	var onCloseInside atomic.Bool
	e := newEnv(t, quietConfig(), func(r *recorder) {
		r.onMessage = func(r *recorder, data []byte, binary bool) {
			_ = r.conn.Send(NewMessage([]byte("bye"), false))
			r.conn.Close()
			onCloseInside.Store(r.closeCount() != 0)
			if err := r.conn.Send(NewMessage([]byte("late"), false)); err != ErrClosed {
				panic("Send after Close did not fail")
			}
		}
	})
	ws, sid := e.openWS(t)
	rec := e.rec(t, sid)
	wsWrite(t, ws, websocket.TextMessage, "4hi")
	if _, data := wsRead(t, ws); data != "4bye" {
		t.Errorf("got %q", data)
	}
	wsExpectClosed(t, ws)
	if ev := rec.waitClose(t); ev.reason != ReasonForcedClose {
		t.Errorf("close = %+v", ev)
	}
	if onCloseInside.Load() {
		t.Error("OnClose ran inside OnMessage")
	}
}

// RefuseHandshakes turns new sessions away with 503 (both transports) while
// an open session goes on being served.
func TestRefuseHandshakes(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	e.srv.RefuseHandshakes()
	if r := e.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("polling handshake: %d", r.status)
	}
	if _, resp, err := e.dial(t, "EIO=4&transport=websocket"); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("websocket handshake: err %v", err)
	}
	if r := e.do(t, http.MethodPost, "EIO=4&transport=polling&sid="+sid, "4hello", nil); r.status != http.StatusOK {
		t.Errorf("POST to the open session: %d %q", r.status, r.body)
	}
}
