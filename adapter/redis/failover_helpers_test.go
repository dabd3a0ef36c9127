package redis

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Helpers of the failover tests (failover_test.go): clients of the
// project's Go client, in process, and the checks that a cluster of
// ioswarm nodes works across nodes.

// goPeer is a Go client connected to one node's main namespace. It
// records every event it gets (but "tick") as "name:arg,arg…".
type goPeer struct {
	s  *client.Socket
	id string

	mu   sync.Mutex
	got  map[string]bool
	wake chan struct{} // has a value when got changed
}

// dialGoPeer connects a Go client (WebSocket, no reconnection: the nodes
// stay up, only Redis fails) to n; it is closed at cleanup.
func dialGoPeer(t *testing.T, n *testNode) *goPeer {
	t.Helper()
	off := false
	s, err := client.NewSocket(n.url, client.Options{Transports: []string{"websocket"}, Reconnection: &off})
	testkit.NoError(t, err)
	p := &goPeer{s: s, got: map[string]bool{}, wake: make(chan struct{}, 1)}
	s.OnAny(func(ev *client.Event) {
		if ev.Name == "tick" {
			return
		}
		args := make([]string, ev.Len())
		for i := range args {
			var v any
			_ = ev.Decode(i, &v)
			args[i] = fmt.Sprint(v)
		}
		p.mu.Lock()
		p.got[ev.Name+":"+strings.Join(args, ",")] = true
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testkit.NoError(t, s.Connect(ctx), "client of %s", n.name)
	p.id = s.ID()
	return p
}

// has reports whether p got every one of keys.
func (p *goPeer) has(keys ...string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if !p.got[k] {
			return false
		}
	}
	return true
}

// waitAll waits until p got every one of keys.
func (p *goPeer) waitAll(ctx context.Context, keys []string) error {
	for !p.has(keys...) {
		select {
		case <-p.wake:
		case <-ctx.Done():
			var missing []string
			for _, k := range keys {
				if !p.has(k) {
					missing = append(missing, k)
				}
			}
			return fmt.Errorf("client %s: %d of %d events missing (%v): %w", p.id, len(missing), len(keys), missing, ctx.Err())
		}
	}
	return nil
}

// ticker emits an event from every node every 20 ms until stop, as an
// application would while Redis fails over, and records the longest
// Emit: Emit must never block on Redis.
type ticker struct {
	stopc   chan struct{}
	done    sync.WaitGroup
	longest atomic.Int64 // nanoseconds
	errs    atomic.Int64
}

func startTicker(nodes []*testNode) *ticker {
	tk := &ticker{stopc: make(chan struct{})}
	for _, n := range nodes {
		tk.done.Add(1)
		go func() {
			defer tk.done.Done()
			for i := 0; ; i++ {
				select {
				case <-tk.stopc:
					return
				case <-time.After(20 * time.Millisecond):
				}
				start := time.Now()
				if err := n.srv.Emit("tick", n.name, i); err != nil {
					tk.errs.Add(1) // the queue was full: the message is dropped, as Pub/Sub drops it
				}
				for d := int64(time.Since(start)); ; {
					old := tk.longest.Load()
					if d <= old || tk.longest.CompareAndSwap(old, d) {
						break
					}
				}
			}
		}()
	}
	return tk
}

// stop stops the ticker and checks that no Emit took more than bound.
func (tk *ticker) stop(t *testing.T, bound time.Duration) {
	t.Helper()
	close(tk.stopc)
	tk.done.Wait()
	longest := time.Duration(tk.longest.Load())
	t.Logf("ticks: longest Emit %v, %d refused", longest, tk.errs.Load())
	testkit.True(t, longest < bound, "an Emit took %v", longest)
}

// failoverRoom is the room that the client of the second node is in.
const failoverRoom = "failover-room"

// checkCluster checks, until within has passed, that the nodes work
// across each other again: broadcasts from every node reach every client
// (and those to a room the client of the second node only)
// (probes, sent again until they all arrive: what is published while a
// subscription is down is lost), then every one of a burst of broadcasts
// arrives, ServerCount counts every node, FetchSockets finds every socket
// and ServerSideEmitWithAck
// gets every other node's answer. It returns how long the broadcasts took
// to come back.
func checkCluster(t *testing.T, round string, nodes []*testNode, peers []*goPeer, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	// Broadcasts: every node's probe at every client, and its probe to
	// failoverRoom at the client of the second node.
	var probes, roomProbes []string
	for _, n := range nodes {
		probes = append(probes, "probe:"+round+","+n.name)
		roomProbes = append(roomProbes, "room-probe:"+round+","+n.name)
	}
	want := func(i int) []string {
		if i == 1 {
			return append(append([]string(nil), probes...), roomProbes...)
		}
		return probes
	}
	for {
		all := true
		for i, p := range peers {
			all = all && p.has(want(i)...)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			for i, p := range peers {
				testkit.NoError(t, p.waitAll(ctx, want(i)), "round %s: broadcasts did not come back within %v", round, within)
			}
		}
		for _, n := range nodes {
			// Either may fail while Redis does.
			_ = n.srv.Emit("probe", round, n.name)
			_ = n.srv.To(failoverRoom).Emit("room-probe", round, n.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, p := range peers {
		if i != 1 {
			testkit.True(t, !p.has(roomProbes[0]), "client %s is not in %s", p.id, failoverRoom)
		}
	}
	recovered := time.Since(start)

	// Delivery is complete again: a burst from every node arrives whole.
	var burst []string
	for i := range 10 {
		for _, n := range nodes {
			testkit.NoError(t, n.srv.Emit("burst", round, n.name, i))
			burst = append(burst, fmt.Sprintf("burst:%s,%s,%d", round, n.name, i))
		}
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer bcancel()
	for i, p := range peers {
		testkit.NoError(t, p.waitAll(bctx, burst), "round %s: burst after recovery, at the client of %s", round, nodes[i].name)
	}

	// Requests.
	var wantIDs []string
	for _, p := range peers {
		wantIDs = append(wantIDs, p.id)
	}
	sort.Strings(wantIDs)
	// Every node counts the others: its subscriptions are on masters
	// (PUBSUB NUMSUB and SHARDNUMSUB are summed over the masters).
	retry(t, ctx, round+": ServerCount", func(ctx context.Context, n *testNode) error {
		count, err := n.srv.Of("/").Adapter().ServerCount(ctx)
		if err == nil && count != len(nodes) {
			err = fmt.Errorf("%d servers, want %d", count, len(nodes))
		}
		return err
	}, nodes)
	retry(t, ctx, round+": FetchSockets", func(ctx context.Context, n *testNode) error {
		socks, err := n.srv.FetchSockets(ctx)
		if err != nil {
			return err
		}
		var ids []string
		for _, s := range socks {
			ids = append(ids, s.ID)
		}
		sort.Strings(ids)
		if fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
			return fmt.Errorf("sockets %v, want %v", ids, wantIDs)
		}
		return nil
	}, nodes)
	retry(t, ctx, round+": ServerSideEmitWithAck", func(ctx context.Context, n *testNode) error {
		res, err := n.srv.ServerSideEmitWithAck(ctx, "whoami")
		if err != nil {
			return err
		}
		var want []string
		for _, o := range nodes {
			if o != n {
				want = append(want, o.name)
			}
		}
		if got := argStrings(t, res); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("answers %v, want %v", got, want)
		}
		return nil
	}, nodes)
	return recovered
}

// retry runs call on every node until it succeeds on each, each attempt
// bounded by 2 s, failing the test when ctx ends first.
func retry(t *testing.T, ctx context.Context, what string, call func(context.Context, *testNode) error, nodes []*testNode) {
	t.Helper()
	for _, n := range nodes {
		for {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := call(cctx, n)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s on %s: still failing: %v", what, n.name, err)
			}
			t.Logf("%s on %s: %v (retrying)", what, n.name, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}
