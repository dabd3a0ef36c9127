package engineio

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// bigHeaders returns headers whose names and values count n bytes.
func bigHeaders(n int) http.Header {
	h := http.Header{}
	for i := 0; n > 0; i++ {
		name := fmt.Sprintf("X-Pad-%04d", i)
		v := min(n-len(name), 8000)
		h.Set(name, strings.Repeat("p", max(v, 1)))
		n -= len(name) + max(v, 1)
	}
	return h
}

// The limit counts as Node's does: one byte under it passes, at it 431 —
// for polling and WebSocket handshakes alike.
func TestMaxHeaderBytes(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxHeaderBytes = 4096
	e := newEnv(t, cfg, nil)
	const query = "EIO=4&transport=polling"
	host := strings.TrimPrefix(e.ts.URL, "http://")
	// The head already holds the request target and "Host: <host>", plus
	// what the client adds (User-Agent, Accept-Encoding, Content-Type).
	fixed := len("/engine.io/?"+query) + len("Host") + len(host) +
		len("User-Agent") + len("Go-http-client/1.1") + len("Accept-Encoding") + len("gzip")
	under := bigHeaders(cfg.MaxHeaderBytes - 1 - fixed)
	if r := e.do(t, http.MethodGet, query, "", under); r.status != http.StatusOK {
		t.Fatalf("head of %d bytes: %d %q", cfg.MaxHeaderBytes-1, r.status, r.body)
	}
	at := bigHeaders(cfg.MaxHeaderBytes - fixed)
	if r := e.do(t, http.MethodGet, query, "", at); r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("head of %d bytes: %d %q", cfg.MaxHeaderBytes, r.status, r.body)
	}
	_, resp, err := websocketDialer().Dial(e.wsURL("EIO=4&transport=websocket"), bigHeaders(cfg.MaxHeaderBytes))
	if err == nil || resp == nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("websocket handshake: %v %v", err, resp)
	}
	if e.srv.Count() != 1 {
		t.Errorf("Count = %d, want 1", e.srv.Count())
	}
}

// 300 handshakes carrying ~900 KiB of headers each (under net/http's own 1
// MB limit, so they reach the server) are refused, and none is kept; a
// healthy connection keeps receiving meanwhile.
func TestHeaderFlood(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	healthy := startSteady(t, e)
	// The requests are written raw, each built once: the cost is the
	// server's.
	var pad strings.Builder
	for k, v := range bigHeaders(900 << 10) {
		fmt.Fprintf(&pad, "%s: %s\r\n", k, v[0])
	}
	polling := "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n" + pad.String() + "\r\n"
	upgrade := "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n" +
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + pad.String() + "\r\n"
	addr := e.ts.Listener.Addr().String()
	before := liveHeap()
	n := int32(300) // the parsing of 260 MiB of heads dominates the run
	if testing.Short() {
		n = 30
	}
	const workers = 4
	var wg sync.WaitGroup
	var refused atomic.Int32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int32(w); i < n; i += workers {
				raw := polling
				if i%2 == 1 { // half of them WebSocket handshakes
					raw = upgrade
				}
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.WriteString(nc, raw)
				status, _ := bufio.NewReader(nc).ReadString('\n')
				nc.Close()
				if strings.HasPrefix(status, "HTTP/1.1 431 ") {
					refused.Add(1)
				}
			}
		}()
	}
	healthy.flowing(t) // while the workers flood
	wg.Wait()
	grown := int64(liveHeap()) - int64(before)
	t.Logf("%d of %d refused; live heap grew by %.1f MiB (%d MiB of headers sent)", refused.Load(), n, float64(grown)/(1<<20), n*900>>10)
	if refused.Load() != n {
		t.Errorf("%d of %d refused with 431", refused.Load(), n)
	}
	if e.srv.Count() != 1 {
		t.Errorf("Count = %d, want 1", e.srv.Count())
	}
	if grown > 16<<20 {
		t.Errorf("live heap grew by %d bytes", grown)
	}
	healthy.echo(t, "unharmed")
	healthy.check(t)
}

// A session keeps a compact copy of its handshake request, not the
// original request object.
func TestConnRequestIsCompact(t *testing.T) {
	var orig *http.Request
	cfg := quietConfig()
	cfg.AllowRequest = func(r *http.Request) error { orig = r; return nil }
	e := newEnv(t, cfg, nil)
	ws, _, err := websocketDialer().Dial(e.wsURL("EIO=4&transport=websocket&x=1"), http.Header{"X-Token": {"abc"}, "X-Multi": {"a", "b: c"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_, open := wsRead(t, ws)
	r := e.rec(t, parseOpen(t, open).SID).conn.Request()
	if r == orig {
		t.Fatal("the original request is kept")
	}
	if r.Header.Get("X-Token") != "abc" || r.URL.Query().Get("x") != "1" || r.Method != http.MethodGet ||
		r.RemoteAddr == "" || r.Host == "" || r.TLS != nil {
		t.Errorf("request copy incomplete: %+v", r)
	}
	orig.Header.Set("X-Token", "changed")
	if e.rec(t, parseOpen(t, open).SID).conn.Request().Header.Get("X-Token") != "abc" {
		t.Error("headers shared with the original request")
	}
	if got := r.Header.Values("X-Multi"); len(got) != 2 || got[0] != "a" || got[1] != "b: c" {
		t.Errorf("X-Multi = %q", got)
	}
	if r.RequestURI != orig.RequestURI || r.Proto != orig.Proto || r.ProtoMajor != 1 || r.Host != orig.Host ||
		len(r.Header) != len(orig.Header) {
		t.Errorf("request copy differs: %+v, original %+v", r, orig)
	}
	r.Header.Set("X-Token", "mine")
	if again := e.rec(t, parseOpen(t, open).SID).conn.Request(); again.Header.Get("X-Token") != "abc" {
		t.Error("each call returns its own copy")
	}
	if r.Body != http.NoBody || r.Context().Done() != nil || r.Form != nil {
		t.Errorf("request copy keeps more than it should: %+v", r)
	}
	_ = websocket.TextMessage
}
