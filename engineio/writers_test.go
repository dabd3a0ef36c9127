package engineio

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// owner of the session's WebSocket, read under the lock.
func wsOwner(c *Conn) owner {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.owner
}

func TestSendWritesIdleConnectionAtOnce(t *testing.T) {
	// An idle connection is written by the Send caller itself: when Send
	// returns, the frame is on the wire and no writer owns the socket.
	e := newEnv(t, quietConfig(), nil)
	ws, sid := e.openWS(t)
	c := e.rec(t, sid).conn
	waitFor(t, "idle writer", func() bool { return wsOwner(c) == ownNone })
	for i := range 20 {
		if err := c.Send(NewMessage(fmt.Appendf(nil, "m%d", i), false)); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		o, queued := c.ws.owner, len(c.queue)
		c.mu.Unlock()
		if o != ownNone || queued != 0 {
			t.Fatalf("after Send %d: owner %d, %d queued; want it written at once", i, o, queued)
		}
		if _, data := wsRead(t, ws); data != fmt.Sprintf("4m%d", i) {
			t.Fatalf("message %d = %q", i, data)
		}
	}
}

func TestWritersHandOffAClientThatDoesNotRead(t *testing.T) {
	// A client that stops reading fills its socket: the server's writers
	// hand the rest to the connection's own goroutine, which waits for the
	// client; nothing is lost or reordered, and once the client has read
	// everything the socket goes back to nobody.
	for _, mode := range []string{"Enqueue", "Send"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, quietConfig(), nil)
			ws, sid := dialSmallBuffer(t, e)
			c := e.rec(t, sid).conn
			waitFor(t, "idle writer", func() bool { return wsOwner(c) == ownNone })
			pad := strings.Repeat("x", 128<<10)
			const n = 64 // 8 MiB: more than the socket buffers hold
			for i := range n {
				m := NewMessage(fmt.Appendf(nil, "%03d%s", i, pad), false)
				send := c.Send
				if mode == "Enqueue" {
					send = c.Enqueue
				}
				if err := send(m); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the connection's own writer", func() bool { return wsOwner(c) == ownGoroutine })
			for i := range n {
				if _, data := wsRead(t, ws); !strings.HasPrefix(data, fmt.Sprintf("4%03d", i)) || len(data) != 4+len(pad) {
					t.Fatalf("message %d: %.8q… (%d bytes)", i, data, len(data))
				}
			}
			waitFor(t, "no writer", func() bool { return wsOwner(c) == ownNone })
			// Written directly again.
			if err := c.Send(NewMessage([]byte("after"), false)); err != nil {
				t.Fatal(err)
			}
			if _, data := wsRead(t, ws); data != "4after" {
				t.Fatalf("after: %q", data)
			}
		})
	}
}

func TestCloseFlushesWhatTheWritersHold(t *testing.T) {
	// A forced close right after queueing: whichever writer owns the socket
	// hands it to the connection's goroutine, which flushes and hangs up.
	e := newEnv(t, quietConfig(), nil)
	ws, sid := e.openWS(t)
	c := e.rec(t, sid).conn
	waitFor(t, "idle writer", func() bool { return wsOwner(c) == ownNone })
	const n = 200
	for i := range n {
		if err := c.Enqueue(NewMessage(fmt.Appendf(nil, "%d", i), false)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	for i := range n {
		if _, data := wsRead(t, ws); data != fmt.Sprintf("4%d", i) {
			t.Fatalf("message %d = %q", i, data)
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived) {
		t.Fatalf("after the flush: %v, want a close frame", err)
	}
}

func TestServerCloseStopsTheWriters(t *testing.T) {
	// Close ends the pool's writers with everything else, also while
	// connections are on their list.
	e := newEnv(t, quietConfig(), nil)
	var socks []*websocket.Conn
	var conns []*Conn
	for range 5 {
		ws, sid := e.openWS(t)
		socks = append(socks, ws)
		conns = append(conns, e.rec(t, sid).conn)
	}
	for i := range 100 {
		for _, c := range conns {
			_ = c.Enqueue(NewMessage(fmt.Appendf(nil, "%d", i), false))
		}
	}
	e.srv.Close()
	for _, ws := range socks {
		// The flush of a forced close, then the end.
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var err error
		for err == nil {
			_, _, err = ws.ReadMessage()
		}
		if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			t.Fatal("websocket still open")
		}
	}
	if g := libraryGoroutines(2 * time.Second); g != "" {
		t.Fatalf("goroutines left after Close:\n%s", g)
	}
}

// TestWritersBatchAcrossConnections: a broadcast of many small frames to
// clients that read late. The writers send many connections' batches with
// one io_uring submission where there is one (and one write each
// otherwise); sockets that fill up are handed over, part-written, to their
// own goroutines. Every client gets every frame, once, in order, in both
// modes.
func TestWritersBatchAcrossConnections(t *testing.T) {
	for _, withRing := range []bool{true, false} {
		t.Run(fmt.Sprintf("ring=%v", withRing), func(t *testing.T) {
			if withRing {
				r, err := newRing()
				if err != nil {
					t.Skipf("no io_uring here: %v", err)
				}
				r.close()
			}
			defer func(old bool) { useRing = old }(useRing)
			useRing = withRing
			// Small socket buffers on both sides, so that sends stop part-way.
			e := newEnvListener(t, quietConfig(), nil, func(l net.Listener) net.Listener { return smallWriteListener{l} })
			const clients, n = 80, 200 // more clients than one submission takes
			wss := make([]*websocket.Conn, clients)
			conns := make([]*Conn, clients)
			for i := range wss {
				ws, sid := dialSmallBuffer(t, e)
				wss[i], conns[i] = ws, e.rec(t, sid).conn
			}
			pad := strings.Repeat("y", 1000) // 200 kB per client: more than its sockets hold
			for i := range n {
				m := NewMessage(fmt.Appendf(nil, "%03d%s", i, pad), false)
				for _, c := range conns {
					if err := c.Enqueue(m); err != nil {
						t.Fatal(err)
					}
				}
				if i%4 == 3 {
					// Batches of a few frames each (what one submission
					// carries), until the sockets fill up part-way.
					waitFor(t, "the writers", func() bool {
						for _, c := range conns {
							c.mu.Lock()
							queued := len(c.queue)
							c.mu.Unlock()
							if queued > 0 && wsOwner(c) != ownGoroutine {
								return false
							}
						}
						return true
					})
				}
			}
			errs := make(chan error, clients)
			for _, ws := range wss {
				go func() {
					for i := range n {
						_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
						_, data, err := ws.ReadMessage()
						if err != nil {
							errs <- err
							return
						}
						if !strings.HasPrefix(string(data), fmt.Sprintf("4%03d", i)) || len(data) != 4+len(pad) {
							errs <- fmt.Errorf("message %d: %.8q… (%d bytes)", i, data, len(data))
							return
						}
					}
					errs <- nil
				}()
			}
			for range clients {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// smallWriteListener gives accepted connections a small send buffer; they
// stay *net.TCPConn, with their descriptor.
type smallWriteListener struct{ net.Listener }

func (l smallWriteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}
