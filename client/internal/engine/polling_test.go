package engine

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Batches respect the server's maxPayload: many messages queued at once
// reach a server that refuses larger bodies.
func TestPollingMaxPayload(t *testing.T) {
	testkit.CheckGoroutines(t)
	cfg := quiet()
	cfg.MaxPayload = 1000
	e := newEnv(t, cfg, nil)
	in := newInbox()
	c := dial(t, e, Options{Transports: []string{TransportPolling}, OnMessage: in.onMessage})
	const n = 300
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Data: bytes.Repeat([]byte{byte('a' + i%26)}, 90), Binary: i%2 == 1}
	}
	if err := c.Send(msgs...); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, n)
	for i := range msgs {
		if !bytes.Equal(got[i].Data, msgs[i].Data) || got[i].Binary != msgs[i].Binary {
			t.Fatalf("message %d differs", i)
		}
	}
	if c.Transport() != TransportPolling {
		t.Fatal("upgraded")
	}
}

// Upgrade: false keeps a polling session on polling.
func TestNoUpgrade(t *testing.T) {
	testkit.CheckGoroutines(t)
	e := newEnv(t, quiet(), nil)
	no := false
	c := dial(t, e, Options{Upgrade: &no})
	s := e.session(t)
	time.Sleep(100 * time.Millisecond)
	if c.Transport() != TransportPolling || s.conn.Transport() != TransportPolling {
		t.Fatalf("transport %q / %q", c.Transport(), s.conn.Transport())
	}
}

// rawServer answers the handshake, then each poll with the next of polls
// (and holds the poll once they are used up).
func rawServer(t *testing.T, polls ...string) *httptest.Server {
	next := make(chan string, len(polls))
	for _, p := range polls {
		next <- p
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/engine.io/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sid") == "" {
			_, _ = fmt.Fprint(w, `0{"sid":"abcdefghijklmnopqrst","upgrades":[],"pingInterval":5000,"pingTimeout":5000,"maxPayload":1000}`)
			return
		}
		if r.Method == http.MethodPost {
			_, _ = fmt.Fprint(w, "ok")
			return
		}
		select {
		case p := <-next:
			_, _ = fmt.Fprint(w, p)
		case <-r.Context().Done():
		}
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// The packets before a parse error are delivered, then the connection
// closes with "parse error"; a close packet closes with "transport close".
func TestPollingPayloads(t *testing.T) {
	for _, tc := range []struct {
		name, poll, reason string
		want               []string
	}{
		{"parse error", "4a\x1e4b\x1ex", ReasonParseError, []string{"a", "b"}},
		{"bad base64", "4a\x1eb!!", ReasonParseError, []string{"a"}},
		{"close packet", "4a\x1e1\x1e4never", ReasonTransportClose, []string{"a"}},
		{"noop and ping", "6\x1e2\x1e4a", "", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			ts := rawServer(t, tc.poll)
			in := newInbox()
			c, err := Dial(t.Context(), ts.URL, Options{OnMessage: in.onMessage})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.reason != "" {
				waitDone(t, c, tc.reason, 2*time.Second)
			}
			got := in.wait(t, len(tc.want))
			time.Sleep(20 * time.Millisecond)
			in.mu.Lock()
			defer in.mu.Unlock()
			if len(in.msgs) != len(tc.want) {
				t.Fatalf("got %d messages, want %d", len(in.msgs), len(tc.want))
			}
			for i, w := range tc.want {
				if string(got[i].Data) != w {
					t.Fatalf("message %d: %q, want %q", i, got[i].Data, w)
				}
			}
		})
	}
}
