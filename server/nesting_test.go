package server_test

import (
	"context"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

func stackBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestDeepNestingCostsItsSize: 100 clients each send one event whose argument
// is nested 9,998 deep (20 kB), and their handlers hold on — over WebSocket
// and over polling. The goroutines that read, decode and handle them keep
// small stacks: the whole costs about the size of the input, not megabytes
// of stack per client (the parser and the server walk nesting without
// recursion). A healthy client in a room with ten of the senders receives
// every broadcast made to the room meanwhile, in order (ten, not all: ticks
// to 100 polling clients would triple the test's run time).
func TestDeepNestingCostsItsSize(t *testing.T) {
	for _, tr := range []string{"websocket", "polling"} {
		t.Run(tr, func(t *testing.T) { deepNesting(t, tr) })
	}
}

func deepNesting(t *testing.T, tr string) {
	const clients, depth, inRoom = 100, 9998, 10
	hold := make(chan struct{})
	var got sync.WaitGroup
	got.Add(clients)
	srv := server.New(server.Config{})
	srv.Of("/").On("deep", func(_ *server.Socket, ev *server.Event) {
		got.Done()
		<-hold
	})
	var connected atomic.Int32
	srv.OnConnection(func(s *server.Socket) {
		if connected.Add(1) <= 1+inRoom { // the healthy client, then ten senders
			_ = s.Join("room")
		}
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	defer close(hold)

	healthy := dialHealthy(t, ts.URL)
	event := `42["deep",` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `]`
	send := make([]func() error, clients)
	for i := range send {
		switch tr {
		case "websocket":
			w := dialWire(ts.URL, "/")
			defer w.ws.Close()
			send[i] = func() error { return w.ws.WriteMessage(websocket.TextMessage, []byte(event)) }
		case "polling":
			p := dialPoll(t, ts.URL)
			defer p.close()
			send[i] = func() error { return p.post(event) }
		}
	}
	testkit.Eventually(t, "the room filled", func() bool {
		in, err := srv.Of("/").In("room").FetchSockets(context.Background())
		return err == nil && len(in) == 1+inRoom
	})
	ticks := startTicker(t, srv.Of("/").To("room").Emit)
	healthy.flowing(t, ticks)
	testkit.LiveHeap()
	before := stackBytes()
	for _, f := range send {
		testkit.NoError(t, f())
	}
	got.Wait()
	healthy.flowing(t, ticks) // while every handler holds its event
	testkit.LiveHeap()        // a collection shrinks stacks that are mostly unused
	growth := int64(stackBytes()) - int64(before)
	t.Logf("%s: stack growth for %d clients holding a %d-deep event: %d kB", tr, clients, depth, growth>>10)
	testkit.True(t, growth < clients*64<<10, "stacks grew by %d bytes", growth)
	healthy.check(t, ticks.finish(t))
}
