package engineio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

func queuedBytes(c *Conn) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

const mib = 1 << 20

// A client that answers pings but never reads is cut off once its queue
// holds MaxQueuedBytes; the queue never holds more; a healthy client on the
// same server receives every message.
func TestSlowConsumerBytesWebSocket(t *testing.T) {
	// Pings every 50 ms, which the slow client answers blindly; the timeout
	// leaves the healthy client, reading megabytes under -race, time to
	// answer.
	cfg := Config{PingInterval: 50 * time.Millisecond, PingTimeout: time.Second}
	cfg.MaxQueuedBytes = 4 * mib
	cfg.WriteTimeout = time.Minute // only the byte bound may act here
	e := newEnv(t, cfg, nil)
	fastWS, fastSID := e.openWS(t)
	fast := startPeer(t, fastWS)
	slowWS, slowSID := dialSmallBuffer(t, e)
	blindPongs(t, slowWS)
	slow := e.rec(t, slowSID).conn

	big := NewMessage(bytes.Repeat([]byte("x"), mib), false)
	var err error
	var peak int64
	sent := 0
	for ; sent < 100 && err == nil; sent++ {
		err = slow.Send(big)
		peak = max(peak, queuedBytes(slow))
		if ferr := e.rec(t, fastSID).conn.Send(big); ferr != nil {
			t.Fatalf("healthy client: %v %+v", ferr, e.rec(t, fastSID).closes)
		}
		fast.expect(t, mib+1)
	}
	t.Logf("slow consumer cut off after %d MiB; queue peaked at %d bytes", sent, peak)
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("never cut off: %v", err)
	}
	if peak > cfg.MaxQueuedBytes {
		t.Errorf("queue held %d bytes, bound %d", peak, cfg.MaxQueuedBytes)
	}
	if ev := e.rec(t, slowSID).waitClose(t); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrSlowConsumer) {
		t.Errorf("close = %+v", ev)
	}
	_ = e.rec(t, fastSID).conn.Send(NewMessage([]byte("after"), false))
	fast.expect(t, len("4after"))
}

// The same bound on polling, for a session that stops polling.
func TestSlowConsumerBytesPolling(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxQueuedBytes = 4 * mib
	e := newEnv(t, cfg, nil)
	fastWS, fastSID := e.openWS(t)
	fast := startPeer(t, fastWS)
	sid := e.handshake(t)
	slow := e.rec(t, sid).conn

	big := NewMessage(bytes.Repeat([]byte("x"), mib), false)
	var err error
	var peak int64
	for i := 0; i < 100 && err == nil; i++ {
		err = slow.Send(big)
		peak = max(peak, queuedBytes(slow))
		_ = e.rec(t, fastSID).conn.Send(big)
		fast.expect(t, mib+1)
	}
	if !errors.Is(err, ErrSlowConsumer) || peak > cfg.MaxQueuedBytes {
		t.Fatalf("err %v, queue peak %d (bound %d)", err, peak, cfg.MaxQueuedBytes)
	}
	if ev := e.rec(t, sid).waitClose(t); !errors.Is(ev.err, ErrSlowConsumer) {
		t.Errorf("close = %+v", ev)
	}
}

// A message larger than MaxQueuedBytes still goes to a connection whose
// queue is empty; SendVolatile drops what would overflow.
func TestQueuedBytesEdges(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxQueuedBytes = 100
	e := newEnv(t, cfg, nil)
	sid := e.handshake(t)
	c := e.rec(t, sid).conn
	if err := c.Send(NewMessage(bytes.Repeat([]byte("y"), 500), false)); err != nil {
		t.Fatalf("oversized Send to an empty queue: %v", err)
	}
	c.mu.Lock()
	pinged := c.pushLocked(pingPacket) // the heartbeat still gets through
	c.mu.Unlock()
	if !pinged {
		t.Fatal("ping refused behind an oversized message")
	}
	if r := e.poll(t, sid); len(r.body) != 501+2 {
		t.Fatalf("GET %d bytes", len(r.body))
	}
	if queuedBytes(c) != 0 {
		t.Fatalf("queued = %d after the GET took everything", queuedBytes(c))
	}
	get := e.pollAsync(t, sid)
	waitFor(t, "pending GET", func() bool { return e.pending(sid) })
	if !c.SendVolatile(NewMessage(bytes.Repeat([]byte("a"), 60), false)) {
		t.Fatal("volatile dropped with a pending GET")
	}
	if c.SendVolatile(NewMessage(bytes.Repeat([]byte("b"), 60), false)) {
		t.Error("volatile queued past MaxQueuedBytes")
	}
	recv(t, get)
	if n := e.rec(t, sid).closeCount(); n != 0 {
		t.Errorf("closed %d times", n)
	}
}

// A WebSocket client that stops reading is closed once a batch write has
// been stalled for WriteTimeout, however little is queued.
func TestWriteTimeoutWebSocket(t *testing.T) {
	cfg := quietConfig()
	cfg.WriteTimeout = 200 * time.Millisecond
	cfg.MaxQueuedBytes = 1 << 30 // only the write timeout may act here
	e := newEnv(t, cfg, nil)
	healthy, _ := e.openWS(t)
	_, sid := dialSmallBuffer(t, e)
	rec := e.rec(t, sid)
	big := NewMessage(bytes.Repeat([]byte("x"), mib), false)
	for range 32 {
		if rec.conn.Send(big) != nil {
			break
		}
	}
	ev := rec.waitClose(t)
	if ev.reason != ReasonTransportError || !errors.Is(ev.err, os.ErrDeadlineExceeded) {
		t.Errorf("close = %+v", ev)
	}
	expectEcho(t, healthy, "fine")
}

// A polling GET whose response is not read is abandoned after WriteTimeout,
// and the session closed.
func TestWriteTimeoutPolling(t *testing.T) {
	cfg := quietConfig()
	cfg.WriteTimeout = 200 * time.Millisecond
	cfg.MaxQueuedBytes = 1 << 30
	e := newEnv(t, cfg, nil)
	healthy, _ := e.openWS(t)
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	big := NewMessage(bytes.Repeat([]byte("x"), mib), false)
	for range 32 {
		if err := rec.conn.Send(big); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := smallBufferDial(context.Background(), "tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n\r\n", sid)
	ev := rec.waitClose(t)
	if ev.reason != ReasonTransportError || !errors.Is(ev.err, errPollWrite) ||
		!errors.Is(ev.err, os.ErrDeadlineExceeded) {
		t.Errorf("close = %+v", ev)
	}
	expectEcho(t, healthy, "fine")
}

// A write that had to wait (and so got WriteTimeout as its deadline) leaves
// no deadline behind: once the client has read, writes go on well past
// WriteTimeout.
func TestWriteTimeoutLeavesNoDeadline(t *testing.T) {
	cfg := quietConfig()
	// Long enough that a reader slowed down by a loaded machine (-race)
	// keeps up with each waiting write.
	cfg.WriteTimeout = 2500 * time.Millisecond
	cfg.MaxQueuedBytes = 1 << 30
	e := newEnv(t, cfg, nil)
	ws, sid := dialSmallBuffer(t, e)
	rec := e.rec(t, sid)
	const size = 256 << 10
	big := NewMessage(bytes.Repeat([]byte("x"), size), false)
	for range 32 { // 8 MiB, more than the socket buffers take: the writer waits
		if err := rec.conn.Send(big); err != nil {
			t.Fatal(err)
		}
	}
	for range 32 {
		if _, got := wsRead(t, ws); len(got) != 1+size {
			t.Fatalf("read %d bytes", len(got))
		}
	}
	time.Sleep(2 * cfg.WriteTimeout) // past the deadline of the waiting write
	if err := rec.conn.Send(NewMessage([]byte("later"), false)); err != nil {
		t.Fatal(err)
	}
	if _, got := wsRead(t, ws); got != "4later" {
		t.Fatalf("read %q", got)
	}
	if n := rec.closeCount(); n != 0 {
		t.Fatalf("closed: %v", rec.closes)
	}
}
