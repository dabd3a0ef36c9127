//go:build linux

package engineio

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readers counts the goroutines reading a WebSocket of this package.
func readers() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "engineio.(*Conn).readPackets") {
			n++
		}
	}
	return n
}

// waitReaders waits until at most n readers run.
func waitReaders(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for readers() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d WebSocket readers, want at most %d", readers(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Idle WebSockets hold no reader goroutine; what a client sends later is
// read, in order, by a reader the poller starts, which parks again.
func TestIdleWebSocketsHoldNoReader(t *testing.T) {
	e := newEnv(t, quietConfig(), nil) // echoes
	const n = 30
	sockets := make([]*websocket.Conn, n)
	for i := range sockets {
		sockets[i], _ = e.openWS(t)
	}
	waitReaders(t, 0)

	for i, ws := range sockets {
		for j := 0; j < 20; j++ {
			wsWrite(t, ws, websocket.TextMessage, "4"+strconv.Itoa(i)+"-"+strconv.Itoa(j))
		}
	}
	for i, ws := range sockets {
		for j := 0; j < 20; j++ {
			if _, got := wsRead(t, ws); got != "4"+strconv.Itoa(i)+"-"+strconv.Itoa(j) {
				t.Fatalf("socket %d: echo %d is %q", i, j, got)
			}
		}
	}
	waitReaders(t, 0)
}

// Many frames in one TCP segment, small and large, text and binary: the
// gate hands them to gorilla one frame at a time, and a reader resumed
// from idle reads them all.
func TestIdleResumeReadsBatchedFrames(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	ws, _ := e.openWS(t)
	waitReaders(t, 0)
	nc := ws.NetConn()
	var batch bytes.Buffer
	var want []string
	for i, size := range []int{0, 1, 125, 126, 127, 4000, 65535, 65536, 70000, 3} {
		payload := "4" + strings.Repeat(strconv.Itoa(i%10), size)
		batch.Write(maskedFrame(websocket.TextMessage, []byte(payload)))
		want = append(want, payload)
	}
	batch.Write(maskedFrame(websocket.BinaryMessage, []byte{1, 2, 3}))
	if _, err := nc.Write(batch.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if _, got := wsRead(t, ws); got != w {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(w))
		}
	}
	if mt, got := wsRead(t, ws); mt != websocket.BinaryMessage || got != "\x01\x02\x03" {
		t.Fatalf("binary frame: %d %q", mt, got)
	}
	waitReaders(t, 0)
}

// maskedFrame encodes one final client frame (masked, as RFC 6455 asks).
func maskedFrame(op int, payload []byte) []byte {
	b := []byte{0x80 | byte(op)}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	key := [4]byte{1, 2, 3, 4}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// A frame that arrives in pieces, across idle periods, is read whole.
func TestIdleFrameInPieces(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	ws, _ := e.openWS(t)
	waitReaders(t, 0)
	frame := maskedFrame(websocket.TextMessage, []byte("4"+strings.Repeat("x", 300)))
	nc := ws.NetConn()
	for _, cut := range [][2]int{{0, 1}, {1, 3}, {3, 8}, {8, 100}, {100, len(frame)}} {
		if _, err := nc.Write(frame[cut[0]:cut[1]]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idleAfter + 50*time.Millisecond)
	}
	if _, got := wsRead(t, ws); got != "4"+strings.Repeat("x", 300) {
		t.Fatalf("got %q", got)
	}
	// A long one, whose payload is read past the gate's buffer: the reader
	// waits for its pieces past its idle deadline, which it drops.
	long := "4" + strings.Repeat("y", 70000)
	frame = maskedFrame(websocket.TextMessage, []byte(long))
	for _, cut := range [][2]int{{0, 20}, {20, 9000}, {9000, 30000}, {30000, len(frame)}} {
		if _, err := nc.Write(frame[cut[0]:cut[1]]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idleAfter + 50*time.Millisecond)
	}
	if _, got := wsRead(t, ws); got != long {
		t.Fatalf("got %d bytes, want %d", len(got), len(long))
	}
}

// The heartbeat goes on with idle sockets: the client's pongs wake their
// readers, and the session lives through many periods.
func TestIdleHeartbeat(t *testing.T) {
	cfg := Config{PingInterval: 300 * time.Millisecond, PingTimeout: 300 * time.Millisecond}
	e := newEnv(t, cfg, nil)
	ws, sid := e.openWS(t)
	r := e.rec(t, sid)
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		if _, got := wsRead(t, ws); got == "2" {
			wsWrite(t, ws, websocket.TextMessage, "3")
		}
	}
	if r.closeCount() != 0 {
		t.Fatalf("closed: %+v", r.closes)
	}
	waitReaders(t, 0)
}

// A client that goes away while its socket is idle is noticed at once, not
// at the next heartbeat.
func TestIdleClientGoesAway(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	ws, sid := e.openWS(t)
	r := e.rec(t, sid)
	waitReaders(t, 0)
	start := time.Now()
	ws.Close()
	if ev := r.waitClose(t); ev.reason != ReasonTransportClose {
		t.Fatalf("reason %q", ev.reason)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("noticed after %v", d)
	}
}

// Close ends sessions whose sockets are idle, and the poller: nothing is
// left (TestMain checks every goroutine of the package).
func TestIdleServerClose(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	var sockets []*websocket.Conn
	for i := 0; i < 10; i++ {
		ws, _ := e.openWS(t)
		sockets = append(sockets, ws)
	}
	waitReaders(t, 0)
	e.srv.Close()
	for _, ws := range sockets {
		wsExpectClosed(t, ws)
	}
	if libraryGoroutines(5*time.Second) != "" {
		t.Fatal("goroutines left after Close")
	}
}

// A TLS socket exposes no descriptor to watch: it keeps its reader, and
// works as before.
func TestIdleTLSKeepsReader(t *testing.T) {
	srv := NewServer(quietConfig(), func(c *Conn) Handler { return &recorder{conn: c, closed: make(chan struct{})} })
	ts := httptest.NewTLSServer(srv)
	defer ts.Close()
	defer srv.Close()
	d := websocket.Dialer{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(ts.URL, "https")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	wsRead(t, ws) // open
	time.Sleep(idleAfter + 200*time.Millisecond)
	if n := readers(); n != 1 {
		t.Fatalf("%d readers, want 1", n)
	}
	wsWrite(t, ws, websocket.TextMessage, "4hi")
	if _, got := wsRead(t, ws); got != "4hi" {
		t.Fatalf("echo %q", got)
	}
}
