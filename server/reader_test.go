package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// A socket's event handler mostly runs on its connection's reader (engineio
// RunOnReader). These tests make sure that a handler that waits for
// something only its own connection can bring still gets it.

// TestHandlerOnReaderWaitsForOwnAck: a handler that asks its own client
// and waits for the answer gets it.
func TestHandlerOnReaderWaitsForOwnAck(t *testing.T) {
	testkit.CheckGoroutines(t)
	srv := server.New(server.Config{})
	srv.Of("/").On("ask", func(s *server.Socket, ev *server.Event) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := s.EmitWithAck(ctx, "question")
		if err != nil {
			_ = ev.Ack(err.Error())
			return
		}
		_ = ev.Ack(res.Any()...)
	})
	srv.Of("/").On("ask-room", func(s *server.Socket, ev *server.Event) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := srv.Of("/").To(s.ID()).Timeout(5*time.Second).EmitWithAck(ctx, "question")
		if err != nil {
			_ = ev.Ack(err.Error())
			return
		}
		_ = ev.Ack(res.Any()...)
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	w := dialWire(ts.URL, "/")
	defer w.ws.Close()
	for i, ev := range []string{"ask", "ask-room"} {
		w.send(fmt.Sprintf(`42%d["%s"]`, i, ev))
		q := w.read()
		testkit.True(t, strings.HasPrefix(q, `42`) && strings.HasSuffix(q, `["question"]`), "question: %s", q)
		id := strings.TrimSuffix(strings.TrimPrefix(q, "42"), `["question"]`)
		w.send(`43` + id + `["answer"]`)
		// A broadcast's answers are the first argument of each client's.
		testkit.Equal(t, w.read(), fmt.Sprintf(`43%d["answer"]`, i))
	}
}

// TestHandlerOnReaderWaitsForOtherNamespace: a handler of one namespace
// that waits for an event of another namespace on the same connection
// gets it: the connection is read again while the handler waits.
func TestHandlerOnReaderWaitsForOtherNamespace(t *testing.T) {
	testkit.CheckGoroutines(t)
	srv := server.New(server.Config{})
	gate := make(chan string, 1)
	srv.Of("/a").On("wait", func(_ *server.Socket, ev *server.Event) {
		select {
		case v := <-gate:
			_ = ev.Ack(v)
		case <-time.After(10 * time.Second):
			_ = ev.Ack("timeout")
		}
	})
	srv.Of("/b").On("open", func(_ *server.Socket, ev *server.Event) { gate <- "opened" })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	w := dialWire(ts.URL, "/a")
	defer w.ws.Close()
	w.send("40/b,")
	testkit.True(t, strings.HasPrefix(w.read(), "40/b,"), "connect /b")
	w.send(`42/a,1["wait"]`)
	w.send(`42/b,["open"]`)
	testkit.Equal(t, w.read(), `43/a,1["opened"]`)
}

// TestHandlerOnReaderKeepsHeartbeat: a handler that blocks for several
// heartbeats does not cost its connection: the pongs are read meanwhile.
func TestHandlerOnReaderKeepsHeartbeat(t *testing.T) {
	testkit.CheckGoroutines(t)
	srv := server.New(server.Config{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	srv.Of("/").On("block", func(_ *server.Socket, ev *server.Event) {
		time.Sleep(time.Second)
		_ = ev.Ack("done")
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	w := dialWire(ts.URL, "/")
	defer w.ws.Close()
	w.send(`421["block"]`)
	testkit.Equal(t, w.read(), `431["done"]`) // read answers the pings
}

// TestHandlerOnReaderKeepsOrder: events run in the order they came,
// whether the reader runs them or, behind one that blocks, a handler
// goroutine does.
func TestHandlerOnReaderKeepsOrder(t *testing.T) {
	testkit.CheckGoroutines(t)
	const n = 2000
	srv := server.New(server.Config{})
	var mu sync.Mutex
	var got []int
	srv.Of("/").On("n", func(_ *server.Socket, ev *server.Event) {
		var i int
		_ = ev.Decode(0, &i)
		if i%200 == 0 {
			time.Sleep(25 * time.Millisecond) // longer than a reader is lent
		}
		mu.Lock()
		got = append(got, i)
		mu.Unlock()
		if i == n-1 {
			_ = ev.Ack("last")
		}
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	w := dialWire(ts.URL, "/")
	defer w.ws.Close()
	for i := range n {
		if i == n-1 {
			w.send(fmt.Sprintf(`421["n",%d]`, i))
		} else {
			w.send(fmt.Sprintf(`42["n",%d]`, i))
		}
	}
	testkit.Equal(t, w.read(), `431["last"]`)
	mu.Lock()
	defer mu.Unlock()
	testkit.Equal(t, len(got), n)
	for i, v := range got {
		if v != i {
			t.Fatalf("event %d ran at %d", v, i)
		}
	}
}
