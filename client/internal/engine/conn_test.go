package engine

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

func TestHandshakeAndEcho(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			e := newEnv(t, quiet(), nil)
			in := newInbox()
			c := dial(t, e, Options{Transports: m.transports, OnMessage: in.onMessage})
			s := e.session(t)
			if c.ID() != s.conn.ID() || len(c.ID()) != 20 {
				t.Fatalf("client id %q, server id %q", c.ID(), s.conn.ID())
			}
			if c.PingInterval() != time.Minute || c.PingTimeout() != time.Minute || c.MaxPayload() != engineio.DefaultMaxPayload {
				t.Fatalf("heartbeat %v/%v, maxPayload %d", c.PingInterval(), c.PingTimeout(), c.MaxPayload())
			}
			waitFor(t, "transport "+m.final, func() bool { return c.Transport() == m.final && s.conn.Transport() == m.final })

			sent := []Message{
				{Data: []byte("hello")},
				{Data: []byte{0, 1, 2, 0xff}, Binary: true},
				{Data: []byte("héllo wörld")},
				{Data: []byte{}, Binary: true},
				{Data: []byte("")},
			}
			if err := c.Send(sent...); err != nil {
				t.Fatal(err)
			}
			got := in.wait(t, len(sent))
			for i := range sent {
				if !bytes.Equal(got[i].Data, sent[i].Data) || got[i].Binary != sent[i].Binary {
					t.Fatalf("message %d: got %q (binary %v), want %q (%v)", i, got[i].Data, got[i].Binary, sent[i].Data, sent[i].Binary)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			waitDone(t, c, ReasonForcedClose, time.Second)
			if err := c.Send(Message{Data: []byte("late")}); err != ErrClosed {
				t.Fatalf("Send after Close: %v", err)
			}
			// The server saw the close packet.
			select {
			case <-s.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("server session still open")
			}
			if s.reason != engineio.ReasonTransportClose {
				t.Fatalf("server reason %q", s.reason)
			}
		})
	}
}

// Messages in both directions during the upgrade arrive once each, in order.
func TestOrderAcrossUpgrade(t *testing.T) {
	testkit.CheckGoroutines(t)
	const n = 2000
	e := newEnv(t, quiet(), func(s *serverSide) { s.onMsg = func(*serverSide, []byte, bool) {} })
	in := newInbox()
	c := dial(t, e, Options{OnMessage: in.onMessage})
	s := e.session(t)
	go func() {
		for i := 0; i < n; i++ {
			_ = s.conn.Send(engineio.NewMessage([]byte(strconv.Itoa(i)), i%3 == 0))
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	seen := map[string]bool{} // transports seen while sending
	for i := 0; i < n; i++ {
		if err := c.Send(Message{Data: []byte(strconv.Itoa(i)), Binary: i%2 == 0}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			seen[c.Transport()] = true
			time.Sleep(time.Millisecond)
		}
	}
	if !seen[TransportWebSocket] {
		t.Errorf("no upgrade while sending: saw %v", seen)
	}
	if !seen[TransportPolling] {
		// The upgrade can finish before the first check on a fast run; the
		// order is still checked, across whatever part of it overlapped.
		t.Logf("the upgrade finished before the first check: saw %v", seen)
	}
	got := in.wait(t, n)
	for i, m := range got[:n] {
		if string(m.Data) != strconv.Itoa(i) || m.Binary != (i%3 == 0) {
			t.Fatalf("client got %q (binary %v) at %d", m.Data, m.Binary, i)
		}
	}
	waitFor(t, "server to receive all", func() bool { return len(s.received()) >= n })
	for i, m := range s.received() {
		if string(m.Data) != strconv.Itoa(i) || m.Binary != (i%2 == 0) {
			t.Fatalf("server got %q (binary %v) at %d", m.Data, m.Binary, i)
		}
	}
	waitFor(t, "upgrade", func() bool { return c.Transport() == TransportWebSocket })
	if len(in.wait(t, n)) != n || len(s.received()) != n {
		t.Fatalf("duplicates: client %d, server %d", len(in.wait(t, n)), len(s.received()))
	}
}

// Pings are answered: the session outlives several heartbeat periods.
func TestHeartbeatKeepsAlive(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			// Short enough to see several periods, long enough that a
			// loaded machine under -race answers in time (40 ms flaked).
			cfg := engineio.Config{PingInterval: 100 * time.Millisecond, PingTimeout: 150 * time.Millisecond}
			e := newEnv(t, cfg, nil)
			c := dial(t, e, Options{Transports: m.transports})
			s := e.session(t)
			time.Sleep(500 * time.Millisecond) // five periods
			select {
			case <-c.Done():
				t.Fatalf("client closed: %q %v", c.Reason(), c.Err())
			case <-s.closed:
				t.Fatalf("server closed: %q", s.reason)
			default:
			}
			if c.Transport() != m.final {
				t.Fatalf("transport %q", c.Transport())
			}
		})
	}
}

// A server that stops pinging is detected after pingInterval+pingTimeout.
func TestPingTimeout(t *testing.T) {
	testkit.CheckGoroutines(t)
	// A polling server that says hello, then holds every poll.
	mux := http.NewServeMux()
	mux.HandleFunc("/engine.io/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sid") == "" {
			_, _ = fmt.Fprint(w, `0{"sid":"abcdefghijklmnopqrst","upgrades":[],"pingInterval":50,"pingTimeout":50,"maxPayload":1000}`)
			return
		}
		<-r.Context().Done()
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	start := time.Now()
	c, err := Dial(t.Context(), ts.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, ReasonPingTimeout, 2*time.Second)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("ping timeout after %v, before pingInterval+pingTimeout", d)
	}
}

// A server-side close ends the client with "transport close".
func TestServerClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			e := newEnv(t, quiet(), nil)
			c := dial(t, e, Options{Transports: m.transports})
			s := e.session(t)
			waitFor(t, "transport "+m.final, func() bool { return c.Transport() == m.final })
			s.conn.Close()
			waitDone(t, c, ReasonTransportClose, 5*time.Second)
		})
	}
}

// A failed poll ends the client with "transport error".
func TestPollError(t *testing.T) {
	testkit.CheckGoroutines(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/engine.io/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sid") == "" {
			_, _ = fmt.Fprint(w, `0{"sid":"abcdefghijklmnopqrst","upgrades":[],"pingInterval":5000,"pingTimeout":5000,"maxPayload":1000}`)
			return
		}
		http.Error(w, "gone", http.StatusInternalServerError)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	c, err := Dial(t.Context(), ts.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, ReasonTransportError, 2*time.Second)
	var he *HTTPError
	if !errors.As(c.Err(), &he) || he.StatusCode != http.StatusInternalServerError {
		t.Fatalf("err %v", c.Err())
	}
}

func TestQueryAndHeaders(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			e := newEnv(t, quiet(), nil)
			c := dial(t, e, Options{
				Transports: m.transports,
				Query:      url.Values{"token": {"abc"}},
				Header:     http.Header{"X-Test": {"yes"}},
			})
			s := e.session(t)
			r := s.conn.Request()
			if r.URL.Query().Get("token") != "abc" || r.URL.Query().Get("EIO") != "4" || r.Header.Get("X-Test") != "yes" {
				t.Fatalf("handshake request %v %v", r.URL, r.Header)
			}
			waitFor(t, "transport "+m.final, func() bool { return c.Transport() == m.final })
		})
	}
}

// Close from inside OnMessage does not deadlock; the Conn still ends cleanly.
func TestCloseFromOnMessage(t *testing.T) {
	testkit.CheckGoroutines(t)
	e := newEnv(t, quiet(), nil)
	var c *Conn
	ready := make(chan struct{})
	c = dial(t, e, Options{Transports: []string{TransportWebSocket}, OnMessage: func([]byte, bool) {
		<-ready
		_ = c.Close()
	}})
	close(ready)
	if err := c.Send(Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, ReasonForcedClose, 5*time.Second)
}

func TestQueueFull(t *testing.T) {
	testkit.CheckGoroutines(t)
	e := newEnv(t, quiet(), nil)
	c := dial(t, e, Options{Transports: []string{TransportWebSocket}})
	big := make([]byte, MaxQueuedBytes+1)
	if err := c.Send(Message{Data: big, Binary: true}); err != ErrQueueFull {
		t.Fatalf("Send over MaxQueuedBytes: %v", err)
	}
	if err := c.Send(make([]Message, MaxQueuedMessages+1)...); err != ErrQueueFull {
		t.Fatalf("Send over MaxQueuedMessages: %v", err)
	}
}

func TestHandshakeRefused(t *testing.T) {
	cfg := quiet()
	cfg.AllowRequest = func(*http.Request) error { return fmt.Errorf("nope") }
	e := newEnv(t, cfg, nil)
	for _, m := range modes {
		_, err := Dial(t.Context(), e.ts.URL, Options{Transports: m.transports})
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode/100 != 4 || !errors.Is(err, ErrHandshake) {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
}

// The path gets a trailing slash, as with the JS client; the URL's query
// comes first and Options.Query overrides it.
func TestEndpointPath(t *testing.T) {
	for path, want := range map[string]string{"": "/engine.io/", "/rt": "/rt/", "/rt/": "/rt/"} {
		e, err := newEndpoint("http://h:1/ignored?a=1", &Options{Path: path, Query: map[string][]string{"b": {"2"}}})
		if err != nil {
			t.Fatal(err)
		}
		if e.http != "http://h:1"+want || e.ws != "ws://h:1"+want {
			t.Errorf("path %q: %s %s", path, e.http, e.ws)
		}
		if e.query.Encode() != "a=1&b=2" {
			t.Errorf("query %q", e.query.Encode())
		}
	}
}
