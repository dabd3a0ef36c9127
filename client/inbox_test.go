package client

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestInboxBound: a server that sends faster than a handler takes (here a
// handler that blocks) grows the events waiting in the client no further
// than the budget: the client stops reading instead. Once the handler
// goes on, every event arrives, in order.
func TestInboxBound(t *testing.T) {
	testkit.CheckGoroutines(t)
	const n = 3000
	payload := strings.Repeat("x", 1024)
	srv := server.New(server.Config{})
	srv.OnConnection(func(s *server.Socket) {
		s.On("go", func(s *server.Socket, ev *server.Event) {
			go func() {
				for i := 0; i < n; i++ {
					if s.Emit("e", i, payload) != nil {
						return
					}
				}
			}()
		})
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	for _, tr := range [][]string{{"websocket"}, {"polling"}} {
		t.Run(tr[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := Dial(ctx, ts.URL, Options{Transports: tr})
			testkit.NoError(t, err)
			defer s.Close()
			release := make(chan struct{})
			var got, bad atomic.Int64
			s.On("e", func(ev *Event) {
				if got.Load() == 0 {
					<-release
				}
				var i int64
				if ev.Decode(0, &i) != nil || i != got.Load() {
					bad.Add(1)
				}
				got.Add(1)
			})
			testkit.NoError(t, s.Emit("go"))
			// While the first handler blocks, the waiting events stay within
			// the budget (one more event may be on its way in).
			deadline := time.Now().Add(time.Second)
			var most int
			var mostBytes int64
			for time.Now().Before(deadline) {
				s.in.mu.Lock()
				most, mostBytes = max(most, s.in.count), max(mostBytes, s.in.bytes)
				s.in.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
			testkit.True(t, most > 100, "the server filled the inbox (%d events)", most)
			testkit.True(t, most <= maxPendingEvents+1 && mostBytes <= maxPendingBytes+2048,
				"waiting: %d events, %d bytes (budget %d, %d)", most, mostBytes, maxPendingEvents, maxPendingBytes)
			close(release)
			for got.Load() < n {
				select {
				case <-ctx.Done():
					t.Fatalf("%d of %d events", got.Load(), n)
				case <-time.After(10 * time.Millisecond):
				}
			}
			testkit.Equal(t, bad.Load(), int64(0), "events out of order")
		})
	}
}
