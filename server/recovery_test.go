package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// recoveryTransports: the client over each transport alone.
var recoveryTransports = []struct {
	name string
	list []string
}{
	{"websocket", []string{"websocket"}},
	{"polling", []string{"polling"}},
}

type connected struct {
	id        string
	recovered bool
	rooms     []string
	data      string
}

// recoveryFixture starts a server whose first connection of each client
// joins "room1", sets data and emits "hello"; when that socket drops, the
// disconnect handler broadcasts what the client misses. Every connection
// is reported on the returned channel, after it emitted "live".
func recoveryFixture(t *testing.T, tr []string, rc *server.RecoveryConfig, mwCalls *atomic.Int64) (*fixture, chan connected) {
	conns := make(chan connected, 4)
	f := start(t, tr, server.Config{ConnectionStateRecovery: rc}, func(srv *server.Server) {
		srv.Of("/").Use(func(s *server.Socket) error { mwCalls.Add(1); return nil })
		srv.OnConnection(func(s *server.Socket) {
			if !s.Recovered() {
				if err := s.Join("room1"); err != nil {
					t.Error(err)
				}
				s.SetData(map[string]any{"user": "ann"})
				_ = s.Emit("hello", 1)
				s.OnDisconnect(func(s *server.Socket, reason string) {
					// The socket has left its rooms: these are only logged.
					_ = srv.To("room1").Emit("b1", 1)
					_ = srv.Volatile().Emit("v", 0)
					_ = srv.To("other").Emit("x", 0)
					_ = srv.Except("room1").Emit("x", 0)
					_ = srv.To("room1").Emit("b2", 2, []byte{1, 2})
					_ = srv.Emit("b3", 3)
					_ = srv.To(s.ID()).Emit("b4", 4)
				})
			}
			data, _ := json.Marshal(s.Data())
			_ = s.Emit("live")
			conns <- connected{s.ID(), s.Recovered(), s.Rooms(), string(data)}
		})
	})
	return f, conns
}

// reconnectingClient connects a peer that reconnects after delay.
func reconnectingClient(t *testing.T, f *fixture, delay time.Duration) *peer {
	t.Helper()
	c, err := dialPeer(t, peerOptions{url: f.url, transports: f.tr, reconnect: delay})
	testkit.NoError(t, err)
	return c
}

func names(evs []*seen) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.name)
	}
	return strings.Join(out, ",")
}

// lastArgOffset returns the offset the server appended to an event.
func lastArgOffset(e *seen) (string, bool) {
	if len(e.args) == 0 {
		return "", false
	}
	s, ok := e.args[len(e.args)-1].(string)
	return s, ok
}

func TestRecoveryRestoresSession(t *testing.T) {
	testkit.CheckGoroutines(t)
	for _, tr := range recoveryTransports {
		t.Run(tr.name, func(t *testing.T) {
			var mw atomic.Int64
			f, conns := recoveryFixture(t, tr.list, &server.RecoveryConfig{MaxDisconnectionDuration: 10 * time.Second}, &mw)
			c := reconnectingClient(t, f, 200*time.Millisecond)
			first := <-conns
			if first.recovered {
				t.Fatal("first connection recovered")
			}
			evs, err := c.until(ctxT(t), "live")
			testkit.NoError(t, err)
			if names(evs) != "hello,live" {
				t.Fatalf("events %s", names(evs))
			}
			if off, ok := lastArgOffset(evs[0]); !ok || off == "" || len(evs[0].args) != 2 {
				t.Fatalf("hello has no offset: %v", evs[0].args)
			}

			c.dropTransport()
			_, err = c.waitDisconnect(ctxT(t))
			testkit.NoError(t, err)
			sid, err := c.waitConnect(ctxT(t))
			testkit.NoError(t, err)
			second := <-conns

			if sid != first.id || second.id != first.id || !second.recovered {
				t.Fatalf("not recovered: client id %s, server %+v, first %s", sid, second, first.id)
			}
			if !c.Recovered() {
				t.Fatal("client: Recovered() is false")
			}
			if got := strings.Join(second.rooms, ","); got != strings.Join(first.rooms, ",") || !strings.Contains(got, "room1") {
				t.Fatalf("rooms %v, were %v", second.rooms, first.rooms)
			}
			if second.data != `{"user":"ann"}` {
				t.Fatalf("data %s", second.data)
			}
			if n := mw.Load(); n != 1 {
				t.Fatalf("middlewares ran %d times, want 1 (skipped on recovery)", n)
			}
			// Missed packets, in order, exactly once, before live traffic;
			// neither the volatile one nor those for other rooms.
			evs, err = c.until(ctxT(t), "live")
			testkit.NoError(t, err)
			if got := names(evs); got != "b1,b2,b3,b4,live" {
				t.Fatalf("replayed %s", got)
			}
			if b, ok := evs[1].args[1].([]byte); !ok || len(b) != 2 {
				t.Fatalf("binary argument lost: %#v", evs[1].args)
			}
			var prev string
			for _, e := range evs[:4] {
				off, ok := lastArgOffset(e)
				if !ok || off == prev {
					t.Fatalf("%s: offset %q", e.name, off)
				}
				prev = off
			}
			// Live broadcasts go on, with offsets, once.
			testkit.NoError(t, f.srv.To("room1").Emit("after", 5))
			testkit.NoError(t, f.srv.Emit("end"))
			evs, err = c.until(ctxT(t), "end")
			testkit.NoError(t, err)
			if got := names(evs); got != "after,end" {
				t.Fatalf("live %s", got)
			}
			testkit.NoError(t, c.Close())
		})
	}
}

// TestRecoveryRunMiddlewares: with RunMiddlewares (Node's skipMiddlewares:
// false) a recovered socket runs the middlewares again, over each transport.
func TestRecoveryRunMiddlewares(t *testing.T) {
	for _, tr := range recoveryTransports {
		t.Run(tr.name, func(t *testing.T) {
			var mw atomic.Int64
			f, conns := recoveryFixture(t, tr.list, &server.RecoveryConfig{RunMiddlewares: true}, &mw)
			c := reconnectingClient(t, f, 100*time.Millisecond)
			first := <-conns
			_, err := c.until(ctxT(t), "live") // the client has an offset
			testkit.NoError(t, err)
			if n := mw.Load(); n != 1 {
				t.Fatalf("middlewares ran %d times at the first connection, want 1", n)
			}
			c.dropTransport()
			second := <-conns
			if !second.recovered || second.id != first.id {
				t.Fatalf("not recovered: %+v", second)
			}
			if n := mw.Load(); n != 2 {
				t.Fatalf("middlewares ran %d times, want 2", n)
			}
			testkit.NoError(t, c.Close())
		})
	}
}

func TestRecoveryExpires(t *testing.T) {
	for _, tr := range recoveryTransports {
		t.Run(tr.name, func(t *testing.T) {
			var mw atomic.Int64
			f, conns := recoveryFixture(t, tr.list, &server.RecoveryConfig{MaxDisconnectionDuration: 200 * time.Millisecond}, &mw)
			c := reconnectingClient(t, f, 800*time.Millisecond)
			first := <-conns
			_, err := c.until(ctxT(t), "live") // the client has an offset
			testkit.NoError(t, err)
			c.dropTransport()
			second := <-conns
			if second.recovered || second.id == first.id {
				t.Fatalf("recovered after the window: %+v", second)
			}
			_, err = c.waitDisconnect(ctxT(t))
			testkit.NoError(t, err)
			_, err = c.waitConnect(ctxT(t))
			testkit.NoError(t, err)
			if c.Recovered() || c.ID() != second.id {
				t.Fatalf("client: recovered %v, id %s", c.Recovered(), c.ID())
			}
			if n := mw.Load(); n != 2 {
				t.Fatalf("middlewares ran %d times, want 2", n)
			}
			evs, err := c.until(ctxT(t), "live") // the new session: hello, then live; nothing replayed
			testkit.NoError(t, err)
			if got := names(evs); got != "hello,live" {
				t.Fatalf("new session got %s", got)
			}
		})
	}
}

// TestRecoveryExplicitDisconnect: a client that leaves on purpose (a
// DISCONNECT packet) has no session to come back to, even if it sends its
// pid and offset again. The Go client forgets its session on Close, so the
// client here is played on the wire.
func TestRecoveryExplicitDisconnect(t *testing.T) {
	var mw atomic.Int64
	f, conns := recoveryFixture(t, []string{"websocket"}, &server.RecoveryConfig{}, &mw)
	w := dialWire(f.url, "/")
	defer w.ws.Close()
	first := <-conns
	var offset string
	for offset == "" {
		frame := w.read()
		var ev []any
		testkit.True(t, strings.HasPrefix(frame, "42") && json.Unmarshal([]byte(frame[2:]), &ev) == nil, "frame %q", frame)
		if ev[0] == "live" {
			offset, _ = ev[len(ev)-1].(string)
			testkit.True(t, offset != "", "live has no offset: %q", frame)
		}
	}
	pid := w.pid
	testkit.True(t, pid != "", "no pid in the CONNECT reply")
	w.send("41")

	w2 := dialWireAuth(f.url, "/", fmt.Sprintf(`{"pid":%q,"offset":%q}`, pid, offset))
	defer w2.ws.Close()
	second := <-conns
	if second.recovered || second.id == first.id {
		t.Fatalf("recovered after a DISCONNECT: %+v", second)
	}
}

// TestRecoveryOff: without the option nothing changes: no offsets, no pid,
// a new socket after a reconnection.
func TestRecoveryOff(t *testing.T) {
	for _, tr := range recoveryTransports {
		t.Run(tr.name, func(t *testing.T) { testRecoveryOff(t, tr.list) })
	}
}

func testRecoveryOff(t *testing.T, tr []string) {
	var mw atomic.Int64
	f, conns := recoveryFixture(t, tr, nil, &mw)
	c := reconnectingClient(t, f, 100*time.Millisecond)
	first := <-conns
	evs, err := c.until(ctxT(t), "live")
	testkit.NoError(t, err)
	if fmt.Sprint(evs[0].args) != "[1]" {
		t.Fatalf("hello args %v", evs[0].args)
	}
	c.dropTransport()
	second := <-conns
	if second.recovered || second.id == first.id {
		t.Fatalf("recovered with recovery off: %+v", second)
	}
	evs, err = c.until(ctxT(t), "live")
	testkit.NoError(t, err)
	if got := names(evs); got != "hello,live" {
		t.Fatalf("got %s", got)
	}
}

// TestRecoveryHeldDeliveries: broadcasts that reach a recovered socket
// while it is being restored (here, while its middleware runs) are
// delivered after the missed packets, in order, once.
func TestRecoveryHeldDeliveries(t *testing.T) {
	for _, tr := range recoveryTransports {
		t.Run(tr.name, func(t *testing.T) {
			conns := make(chan connected, 4)
			f := start(t, tr.list, server.Config{ConnectionStateRecovery: &server.RecoveryConfig{RunMiddlewares: true}}, func(srv *server.Server) {
				srv.Of("/").Use(func(s *server.Socket) error {
					if s.Recovered() {
						// The socket is back in its rooms: these are held.
						for i := 0; i < 50; i++ {
							_ = srv.To("room1").Emit("held", i)
						}
					}
					return nil
				})
				srv.OnConnection(func(s *server.Socket) {
					if !s.Recovered() {
						_ = s.Join("room1")
						s.OnDisconnect(func(*server.Socket, string) {
							for i := 0; i < 50; i++ {
								_ = srv.To("room1").Emit("missed", i)
							}
						})
					}
					_ = s.Emit("live")
					conns <- connected{id: s.ID(), recovered: s.Recovered()}
				})
			})
			c := reconnectingClient(t, f, 100*time.Millisecond)
			<-conns
			_, err := c.until(ctxT(t), "live")
			testkit.NoError(t, err)
			c.dropTransport()
			if second := <-conns; !second.recovered {
				t.Fatal("not recovered")
			}
			evs, err := c.until(ctxT(t), "live")
			testkit.NoError(t, err)
			if len(evs) != 101 {
				t.Fatalf("got %d events: %s", len(evs), names(evs))
			}
			for i, e := range evs[:100] {
				want, n := "missed", i
				if i >= 50 {
					want, n = "held", i-50
				}
				if e.name != want || e.args[0] != float64(n) {
					t.Fatalf("event %d is %s %v, want %s %d", i, e.name, e.args, want, n)
				}
			}
		})
	}
}

// TestRecoveryBounds: clients that connect and drop by the dozen, and a
// server that broadcasts a lot, cannot grow the sessions or the log past
// their budgets.
func TestRecoveryBounds(t *testing.T) {
	rc := &server.RecoveryConfig{MaxSessions: 5, MaxSessionBytes: 1 << 20, MaxPackets: 10, MaxPacketBytes: 4 << 10}
	f := start(t, []string{"websocket"}, server.Config{ConnectionStateRecovery: rc}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) { _ = s.Join(strings.Repeat("r", 100)) })
	})
	stats := f.srv.Of("/").Adapter().(interface {
		RecoveryStats() (int, int64, int, int64)
	})
	for i := 0; i < 20; i++ {
		c := f.connect("/", nil)
		c.dropTransport()
	}
	for i := 0; i < 500; i++ {
		testkit.NoError(t, f.srv.Emit("big", strings.Repeat("x", 1000)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, nb, s, sb := stats.RecoveryStats()
		if n > rc.MaxPackets || nb > rc.MaxPacketBytes || s > rc.MaxSessions || sb > rc.MaxSessionBytes {
			t.Fatalf("over budget: %d packets (%d B), %d sessions (%d B)", n, nb, s, sb)
		}
		if s == rc.MaxSessions || time.Now().After(deadline) {
			testkit.Equal(t, s, rc.MaxSessions, "sessions kept")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRecoveryUnderTraffic: a stream of numbered broadcasts runs while the
// client loses its transport and recovers. What the client sees, across
// the cut, is every number once, in order.
func TestRecoveryUnderTraffic(t *testing.T) {
	for _, tr := range recoveryTransports {
		t.Run(tr.name, func(t *testing.T) {
			joined := make(chan struct{}, 2)
			f := start(t, tr.list, server.Config{ConnectionStateRecovery: &server.RecoveryConfig{}}, func(srv *server.Server) {
				srv.OnConnection(func(s *server.Socket) {
					if !s.Recovered() {
						_ = s.Join("room1")
					}
					joined <- struct{}{}
				})
			})
			c := reconnectingClient(t, f, 150*time.Millisecond)
			<-joined
			const total = 600
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < total; i++ {
					_ = f.srv.To("room1").Emit("n", i)
					time.Sleep(2 * time.Millisecond)
				}
			}()
			time.Sleep(300 * time.Millisecond)
			c.dropTransport()
			_, err := c.waitDisconnect(ctxT(t))
			testkit.NoError(t, err)
			_, err = c.waitConnect(ctxT(t))
			testkit.NoError(t, err)
			<-done
			testkit.NoError(t, f.srv.Emit("done"))
			evs, err := c.until(ctxT(t), "done")
			testkit.NoError(t, err)
			testkit.True(t, c.Recovered(), "recovered")
			if len(evs) != total+1 {
				t.Fatalf("got %d events, want %d", len(evs), total+1)
			}
			for i, e := range evs[:total] {
				if e.name != "n" || e.args[0] != float64(i) {
					t.Fatalf("event %d is %s %v", i, e.name, e.args)
				}
			}
		})
	}
}
