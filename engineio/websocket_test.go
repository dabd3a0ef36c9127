package engineio

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

func TestWebSocketEcho(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	ws, sid := e.openWS(t)
	// The three frames of the verified Node exchange: one text, two binary.
	wsWrite(t, ws, websocket.TextMessage, `452-["hello",{"_placeholder":true,"num":0}]`)
	wsWrite(t, ws, websocket.BinaryMessage, "\x01\x02\x03")
	wsWrite(t, ws, websocket.BinaryMessage, "\x04\x05\x06")
	want := []struct {
		mt   int
		data string
	}{
		{websocket.TextMessage, `452-["hello",{"_placeholder":true,"num":0}]`},
		{websocket.BinaryMessage, "\x01\x02\x03"},
		{websocket.BinaryMessage, "\x04\x05\x06"},
	}
	for i, w := range want {
		mt, data := wsRead(t, ws)
		if mt != w.mt || data != w.data {
			t.Errorf("frame %d = (%d, %q), want (%d, %q)", i, mt, data, w.mt, w.data)
		}
	}
	rec := e.rec(t, sid)
	rec.mu.Lock()
	got := strings.Join(rec.msgs, "|")
	rec.mu.Unlock()
	if want := "t:52-[\"hello\",{\"_placeholder\":true,\"num\":0}]|b:\x01\x02\x03|b:\x04\x05\x06"; got != want {
		t.Errorf("handler got %q", got)
	}
}

func TestWebSocketCloses(t *testing.T) {
	tests := []struct {
		name   string
		mt     int
		data   string
		reason string
	}{
		{"invalid packet", websocket.TextMessage, "abc", ReasonParseError},
		{"empty text frame", websocket.TextMessage, "", ReasonParseError},
		{"close packet", websocket.TextMessage, "1", ReasonTransportClose},
		{"client ping", websocket.TextMessage, "2", ReasonTransportError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, quietConfig(), nil)
			ws, sid := e.openWS(t)
			rec := e.rec(t, sid)
			wsWrite(t, ws, tt.mt, tt.data)
			wsExpectClosed(t, ws)
			if ev := rec.waitClose(t); ev.reason != tt.reason {
				t.Errorf("close = %+v, want %q", ev, tt.reason)
			}
			if e.srv.Count() != 0 {
				t.Errorf("Count = %d", e.srv.Count())
			}
		})
	}
}

func TestWebSocketClientCloses(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	ws, sid := e.openWS(t)
	rec := e.rec(t, sid)
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if ev := rec.waitClose(t); ev.reason != ReasonTransportClose || ev.err != nil {
		t.Errorf("close = %+v", ev)
	}
}

func TestWebSocketServerClose(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	ws, sid := e.openWS(t)
	rec := e.rec(t, sid)
	if err := rec.conn.Send(NewMessage([]byte("last words"), false)); err != nil {
		t.Fatal(err)
	}
	rec.conn.Close()
	// Queued messages are flushed; then a close frame without a status,
	// and no Engine.IO close packet.
	if _, data := wsRead(t, ws); data != "4last words" {
		t.Errorf("got %q", data)
	}
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNoStatusReceived) {
		t.Errorf("read after close: %v", err)
	}
	if ev := rec.waitClose(t); ev.reason != ReasonForcedClose {
		t.Errorf("close = %+v", ev)
	}
}

func TestWebSocketMaxPayload(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxPayload = 100
	e := newEnv(t, cfg, nil)
	ws, sid := e.openWS(t)
	rec := e.rec(t, sid)
	wsWrite(t, ws, websocket.TextMessage, "4"+strings.Repeat("a", 99))
	if _, data := wsRead(t, ws); len(data) != 100 {
		t.Fatalf("echo of 100 bytes: %d", len(data))
	}
	wsWrite(t, ws, websocket.TextMessage, "4"+strings.Repeat("a", 100))
	wsExpectClosed(t, ws)
	if ev := rec.waitClose(t); ev.reason != ReasonTransportError || ev.err != websocket.ErrReadLimit {
		t.Errorf("close = %+v", ev)
	}
}

// countingConn records the writes reaching the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func TestBufConnCoalesces(t *testing.T) {
	cc := &countingConn{}
	b := &bufConn{Conn: cc}
	if _, err := b.Write([]byte("direct")); err != nil {
		t.Fatal(err)
	}
	b.begin(nil)
	for _, s := range []string{"a", "bb", "ccc"} {
		if _, err := b.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if len(cc.writes) != 1 {
		t.Fatalf("%d writes before flush", len(cc.writes))
	}
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 2 || string(cc.writes[1]) != "abbccc" {
		t.Fatalf("writes = %q", cc.writes)
	}
	// A write too big for the buffer goes out with what was collected
	// (countingConn is not a buffersWriter, so net.Buffers writes each
	// slice in turn; a TCP socket would get one writev).
	big := bytes.Repeat([]byte("x"), coalesceLimit+1)
	b.begin(nil)
	_, _ = b.Write([]byte("y"))
	_, _ = b.Write(big)
	_, _ = b.Write([]byte("z"))
	_ = b.flush()
	var all []byte
	for _, w := range cc.writes[2:] {
		all = append(all, w...)
	}
	if string(all) != "y"+string(big)+"z" {
		t.Fatalf("order broken: %d bytes", len(all))
	}
}

func TestWebSocketBatchIsOneWrite(t *testing.T) {
	// Everything queued while the writer is parked goes out in one write.
	ln := &countingListener{}
	e := newEnvListener(t, quietConfig(), nil, func(l net.Listener) net.Listener {
		ln.Listener = l
		return ln
	})
	ws, sid := e.openWS(t)
	c := e.rec(t, sid).conn
	waitFor(t, "idle writer", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ws.owner == ownNone
	})
	fc := ln.last()
	fc.mu.Lock()
	before := len(fc.writes)
	fc.mu.Unlock()

	msgs := make([]*Message, 50)
	for i := range msgs {
		msgs[i] = NewMessage([]byte{byte('a' + i%26)}, false)
	}
	// Queue under the lock, so that the writer sees them all at once.
	c.mu.Lock()
	ok := c.pushLocked(msgs...)
	c.mu.Unlock()
	if !ok {
		t.Fatal("push failed")
	}
	for i := range msgs {
		if _, data := wsRead(t, ws); data != "4"+string(rune('a'+i%26)) {
			t.Fatalf("message %d = %q", i, data)
		}
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if n := len(fc.writes) - before; n != 1 {
		t.Errorf("%d socket writes for one batch, want 1", n)
	}
}

// countingListener wraps accepted connections in forwardConns.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*forwardConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &forwardConn{countingConn: &countingConn{Conn: c}}
	l.mu.Lock()
	l.conns = append(l.conns, fc)
	l.mu.Unlock()
	return fc, nil
}

func (l *countingListener) last() *forwardConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[len(l.conns)-1]
}

// forwardConn counts writes and forwards them to the real socket.
type forwardConn struct{ *countingConn }

func (f *forwardConn) Write(p []byte) (int, error) {
	_, _ = f.countingConn.Write(p)
	return f.countingConn.Conn.Write(p)
}

func TestWebSocketPerMessageDeflate(t *testing.T) {
	cfg := quietConfig()
	cfg.PerMessageDeflate = true
	e := newEnv(t, cfg, nil)
	d := websocketDialer()
	d.EnableCompression = true
	ws, resp, err := d.Dial(e.wsURL("EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if ext := resp.Header.Get("Sec-Websocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extension not negotiated: %q", ext)
	}
	wsRead(t, ws) // open
	for _, size := range []int{10, 5000} {
		msg := "4" + strings.Repeat("z", size)
		wsWrite(t, ws, websocket.TextMessage, msg)
		if _, data := wsRead(t, ws); data != msg {
			t.Fatalf("echo of %d bytes broken", size)
		}
	}
}

func TestWebSocketAcceptCloses(t *testing.T) {
	e := newEnv(t, quietConfig(), func(r *recorder) {
		_ = r.conn.Send(NewMessage([]byte("welcome"), false))
		r.conn.Close()
	})
	ws, _, err := e.dial(t, "EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	if _, data := wsRead(t, ws); !strings.HasPrefix(data, "0{") {
		t.Fatalf("first frame %q", data)
	}
	if _, data := wsRead(t, ws); data != "4welcome" {
		t.Fatalf("second frame %q", data)
	}
	wsExpectClosed(t, ws)
	waitFor(t, "no sessions", func() bool { return e.srv.Count() == 0 })
}
