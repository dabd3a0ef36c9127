package server_test

import (
	"context"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

func stackBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestDeepNestingCostsItsSize: 100 clients each send one event whose argument
// is nested 9,998 deep (20 kB), and their handlers hold on. The goroutines
// that read, decode and handle them keep small stacks: the whole costs about
// the size of the input, not megabytes of stack per client (the parser and
// the server walk nesting without recursion).
func TestDeepNestingCostsItsSize(t *testing.T) {
	const clients, depth = 100, 9998
	hold := make(chan struct{})
	var got sync.WaitGroup
	got.Add(clients)
	srv := server.New(server.Config{})
	srv.Of("/").On("deep", func(_ *server.Socket, ev *server.Event) {
		got.Done()
		<-hold
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	defer close(hold)

	wires := make([]*wire, clients)
	for i := range wires {
		wires[i] = dialWire(ts.URL, "/")
		defer wires[i].ws.Close()
	}
	testkit.LiveHeap()
	before := stackBytes()
	event := `42["deep",` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `]`
	for _, w := range wires {
		w.send(event)
	}
	got.Wait()
	testkit.LiveHeap() // a collection shrinks stacks that are mostly unused
	growth := int64(stackBytes()) - int64(before)
	t.Logf("stack growth for %d clients holding a %d-deep event: %d kB", clients, depth, growth>>10)
	testkit.True(t, growth < clients*64<<10, "stacks grew by %d bytes", growth)
}
