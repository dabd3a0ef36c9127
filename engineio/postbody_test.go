package engineio

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// POSTs announcing a 1 MB body and sending nothing reserve no memory for
// it, and are answered (400, session closed) once the read deadline,
// PingInterval+PingTimeout, has passed; a healthy connection keeps
// receiving (and answering the heartbeat) throughout.
func TestPostBodyNeverSent(t *testing.T) {
	cfg := Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond}
	e := newEnv(t, cfg, nil)
	fast := startSteady(t, e)

	const n = 200
	sids := make([]string, n)
	for i := range sids {
		sids[i] = e.handshake(t)
	}
	addr := e.ts.Listener.Addr().String()
	before := liveHeap()
	conns := make([]net.Conn, n)
	for i, sid := range sids {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		fmt.Fprintf(nc, "POST /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"+
			"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 1000000\r\n\r\n", sid)
		conns[i] = nc
	}
	reading := func() bool {
		for _, sid := range sids {
			c := e.srv.lookup(sid)
			if c == nil {
				return true // already released
			}
			c.mu.Lock()
			active := c.postActive
			c.mu.Unlock()
			if !active {
				return false
			}
		}
		return true
	}
	waitFor(t, "every POST handler reading its body", reading)
	grown := int64(liveHeap()) - int64(before)
	t.Logf("%d POSTs announcing 1 MB each: live heap grew by %.1f KiB", n, float64(grown)/1024)
	if grown > n*1_000_000/20 {
		t.Errorf("live heap grew by %d bytes for %d stalled POSTs", grown, n)
	}

	// The healthy client is served meanwhile.
	_ = fast.rec.conn.Send(NewMessage([]byte("hi"), false))
	fast.expectOther(t, "4hi")
	fast.flowing(t)

	for i, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		status, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 400 ") {
			t.Fatalf("POST %d: %q %v", i, status, err)
		}
	}
	waitFor(t, "stalled sessions closed", func() bool { return e.srv.Count() == 1 })
	_ = fast.rec.conn.Send(NewMessage([]byte("ok"), false))
	fast.expectOther(t, "4ok")
	fast.check(t)
}

// A body that arrives in pieces, within the deadline, is read whole.
func TestPostBodyInPieces(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	nc, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	body := "4" + strings.Repeat("z", 5000)
	fmt.Fprintf(nc, "POST /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n", sid, len(body))
	for i := 0; i < len(body); i += 1000 {
		_, _ = nc.Write([]byte(body[i:min(i+1000, len(body))]))
		time.Sleep(5 * time.Millisecond)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if status, _ := bufio.NewReader(nc).ReadString('\n'); !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		t.Fatalf("status %q", status)
	}
	if r := e.poll(t, sid); r.body != body {
		t.Errorf("echo of %d bytes, want %d", len(r.body), len(body))
	}
}
