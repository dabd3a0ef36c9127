package redis

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestRedisRestart stops Redis under traffic and starts it again on the
// same port: the nodes keep serving their own clients, requests end with an
// error instead of hanging, and cluster traffic resumes by itself.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	key := uniqueKey(t)
	A := startNode(t, rs.URL(), key, "A", clusterTimeout)
	B := startNode(t, rs.URL(), key, "B", clusterTimeout)
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A, "/")
	b := connectTo(t, drv, B, "/")
	ctx := context.Background()

	testkit.NoError(t, A.srv.Emit("before"))
	testkit.Equal(t, next(t, b, "before"), []any{})
	testkit.Equal(t, next(t, a, "before"), []any{})

	// A's clients get A's broadcasts, one every 20 ms, all along.
	stopTicks := make(chan struct{})
	ticked := make(chan int, 1)
	go func() {
		i := 0
		defer func() { ticked <- i }()
		for {
			select {
			case <-stopTicks:
				return
			case <-time.After(20 * time.Millisecond):
			}
			_ = A.srv.Emit("tick", i) // an error only says the cluster was not reached
			i++
		}
	}()

	// A request in flight when Redis goes: B's answer comes in 400 ms, too
	// late; the request ends at its timeout, with Node's error text.
	B.srv.Of("/").OnServerSideEmit("late", func(ev *server.Event) {
		time.AfterFunc(400*time.Millisecond, func() { _ = ev.Ack("B") })
	})
	type result struct {
		res server.Args
		err error
		d   time.Duration
	}
	inflight := make(chan result, 1)
	start := time.Now()
	go func() {
		res, err := A.srv.ServerSideEmitWithAck(ctx, "late")
		inflight <- result{res, err, time.Since(start)}
	}()
	time.Sleep(100 * time.Millisecond)
	rs.Stop()
	r := <-inflight
	testkit.ErrorIs(t, r.err, adapter.ErrTimeout)
	testkit.Equal(t, r.err.Error(), "timeout reached: only 0 responses received out of 1")
	testkit.True(t, r.d < clusterTimeout+time.Second, "ended after %v", r.d)

	// Redis is down: local clients are served as usual.
	for i := 0; i < 5; i++ {
		testkit.NoError(t, A.srv.Emit("during", i))
		testkit.Equal(t, next(t, a, "during"), []any{float64(i)})
	}
	testkit.NoError(t, a.OnAck(tctx(t), "q", "a"))
	res, err := A.srv.Local().Timeout(2*time.Second).EmitWithAck(ctx, "q")
	testkit.NoError(t, err)
	testkit.Equal(t, argStrings(t, res), []string{"a"})
	// New cluster requests fail, without hanging.
	start = time.Now()
	_, err = A.srv.FetchSockets(ctx)
	testkit.True(t, err != nil, "fetchSockets without Redis")
	testkit.True(t, time.Since(start) < clusterTimeout+2*time.Second, "fetchSockets failed after %v", time.Since(start))
	t.Logf("fetchSockets without Redis: %v", err)

	rs.Start()
	// This Redis process stops at cleanup: close the nodes before.
	t.Cleanup(func() { A.close(); B.close() })
	// Cluster traffic resumes by itself, both ways, within seconds.
	for _, dir := range []struct {
		from *testNode
		to   *tclient
	}{{A, b}, {B, a}} {
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; ; i++ {
			testkit.NoError(t, dir.from.srv.Emit("after", dir.from.name))
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, err := dir.to.Next(cctx, "after")
			cancel()
			if err == nil {
				t.Logf("traffic from %s resumed after %d tries", dir.from.name, i+1)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broadcasts from %s did not resume", dir.from.name)
			}
		}
	}
	close(stopTicks)
	ticks := <-ticked
	testkit.True(t, ticks > 50, "only %d ticks", ticks)
	for i := 0; i < ticks; i++ {
		testkit.Equal(t, next(t, a, "tick"), []any{float64(i)}, "local client lost a broadcast")
	}
	res, err = A.srv.ServerSideEmitWithAck(ctx, "whoami")
	testkit.NoError(t, err)
	testkit.Equal(t, argStrings(t, res), []string{"B"})
	socks, err := B.srv.FetchSockets(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, len(socks), 2)
}

// TestNodeGoneDuringRequest: a node that goes away while a request waits
// for it leaves the requester with the others' answers at the timeout.
func TestNodeGoneDuringRequest(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	A := startNode(t, url, key, "A", clusterTimeout)
	startNode(t, url, key, "B", clusterTimeout)
	C := startNode(t, url, key, "C", clusterTimeout)
	ctx := context.Background()

	type result struct {
		res server.Args
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		res, err := A.srv.ServerSideEmitWithAck(ctx, "silent-C")
		done <- result{res, err}
	}()
	time.Sleep(200 * time.Millisecond)
	C.close()
	r := <-done
	testkit.Equal(t, r.err.Error(), "timeout reached: only 1 responses received out of 2")
	testkit.Equal(t, argStrings(t, r.res), []string{"B"})
	testkit.True(t, time.Since(start) >= clusterTimeout-50*time.Millisecond, "ended after %v", time.Since(start))

	// The cluster is now two nodes.
	n, err := A.srv.Of("/").Adapter().ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, n, 2)
	res, err := A.srv.ServerSideEmitWithAck(ctx, "whoami")
	testkit.NoError(t, err)
	testkit.Equal(t, argStrings(t, res), []string{"B"})
}

// TestAloneAndClosed: a node alone answers at once; a closed adapter and
// Factory refuse work with ErrClosed and end the requests in flight.
func TestAloneAndClosed(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	f := newTestFactory(t, url, Options{Key: uniqueKey(t), RequestsTimeout: 5 * time.Second})
	start := time.Now()
	a, _ := newTestAdapter(t, f, "/")
	// Subscribed, and Redis confirmed it (not the RequestsTimeout fallback).
	testkit.True(t, time.Since(start) < time.Second, "Adapter took %v", time.Since(start))
	n, err := newClient(t, url).PubSubNumSub(context.Background(), a.requestChannel).Result()
	testkit.NoError(t, err)
	testkit.Equal(t, n[a.requestChannel], int64(1))
	ctx := context.Background()
	start = time.Now()
	res, err := a.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"x"`)}, true)
	testkit.NoError(t, err)
	testkit.True(t, res != nil && len(res) == 0, "responses %v", res)
	rooms, err := a.AllRooms(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, len(rooms), 0)
	_, err = a.FetchSockets(ctx, adapter.BroadcastOptions{})
	testkit.NoError(t, err)
	testkit.True(t, time.Since(start) < time.Second, "alone took %v", time.Since(start))

	// A request in flight ends with ErrClosed when its adapter closes.
	// (A second node, silent, so that the request waits.)
	newTestAdapter(t, newTestFactory(t, url, Options{Key: a.f.opts.Key}), "/")
	errc := make(chan error, 1)
	go func() {
		_, err := a.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"silent"`)}, true)
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	testkit.NoError(t, a.Close())
	select {
	case err := <-errc:
		testkit.ErrorIs(t, err, adapter.ErrClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("request still waiting after Close")
	}
	testkit.ErrorIs(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["x"]`), nil), adapter.BroadcastOptions{}), adapter.ErrClosed)
	testkit.NoError(t, a.Close()) // idempotent

	testkit.NoError(t, f.Close(context.Background()))
	testkit.NoError(t, f.Close(context.Background()))
	_, err = f.Adapter(&fakeNamespace{name: "/late"})
	testkit.ErrorIs(t, err, adapter.ErrClosed)
}

// TestRedisDownAtStart: a namespace created while Redis is unreachable is
// created anyway (after RequestsTimeout at most), serves its local sockets,
// and joins the cluster once Redis is there.
func TestRedisDownAtStart(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	key := uniqueKey(t)
	rs.Stop()
	f := newTestFactory(t, rs.URL(), Options{Key: key, RequestsTimeout: 300 * time.Millisecond})
	start := time.Now()
	a, _ := newTestAdapter(t, f, "/")
	testkit.True(t, time.Since(start) < 2*time.Second, "Adapter took %v", time.Since(start))
	s := newFakeSocket("s1")
	a.AddAll(s, []string{"s1"})
	err := a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["local"]`), nil), adapter.BroadcastOptions{})
	testkit.NoError(t, err)
	testkit.Equal(t, string(s.next(t).Data), `["local"]`)

	rs.Start()
	t.Cleanup(func() { _ = f.Close(context.Background()) }) // before this Redis process stops
	pub := newClient(t, rs.URL())
	msg, err := encodeBroadcast("other", "/", adapter.NewPacket("/", json.RawMessage(`["remote"]`), nil), adapter.BroadcastOptions{})
	testkit.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := pub.Publish(context.Background(), key+"#/#", msg).Result()
		if err == nil && n > 0 {
			break // subscribed
		}
		if time.Now().After(deadline) {
			t.Fatalf("the adapter did not subscribe once Redis was back (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	testkit.Equal(t, string(s.next(t).Data), `["remote"]`)
}

// TestQueueFull: with Redis unreachable the publish queue fills up and
// broadcasts fail with ErrQueueFull at once, after local delivery.
func TestQueueFull(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	f := newTestFactory(t, rs.URL(), Options{Key: uniqueKey(t), MaxPendingPublishes: 4, RequestsTimeout: 300 * time.Millisecond})
	a, _ := newTestAdapter(t, f, "/")
	s := newFakeSocket("s1")
	a.AddAll(s, []string{"s1"})
	rs.Stop()
	var full error
	start := time.Now()
	for i := 0; i < 1000 && full == nil; i++ {
		err := a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["x"]`), nil), adapter.BroadcastOptions{})
		if errors.Is(err, cluster.ErrQueueFull) {
			full = err
		}
		s.next(t)
	}
	testkit.ErrorIs(t, full, cluster.ErrQueueFull)
	testkit.True(t, time.Since(start) < 5*time.Second, "took %v", time.Since(start))
}

// TestNoGoroutineLeak: closing the servers and the Factories leaves no
// goroutine behind (not parallel, so that other tests' goroutines do not
// count).
func TestNoGoroutineLeak(t *testing.T) {
	testkit.CheckGoroutines(t)
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	A := startNode(t, url, key, "A", clusterTimeout)
	B := startNode(t, url, key, "B", clusterTimeout)
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A, "/")
	b := connectTo(t, drv, B, "/dyn-7")
	ctx := context.Background()
	testkit.NoError(t, B.srv.Emit("x"))
	testkit.NoError(t, A.srv.Of("/dyn-7").Emit("y"))
	testkit.Equal(t, next(t, b, "y"), []any{})
	testkit.NoError(t, a.OnAck(tctx(t), "q", 1))
	_, err := B.srv.Timeout(time.Second).EmitWithAck(ctx, "q")
	testkit.NoError(t, err)
	_, err = A.srv.ServerSideEmitWithAck(ctx, "whoami")
	testkit.NoError(t, err)
	_, err = A.srv.FetchSockets(ctx)
	testkit.NoError(t, err)
	A.close()
	B.close()
}

// TestSubscriptionLifecycle: closing an adapter unsubscribes its channels
// unless another adapter of the Factory uses them, and a namespace created
// again right after is subscribed, whatever the order in which the
// (background) unsubscription and the new subscription reach Redis.
func TestSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	f := newTestFactory(t, url, Options{Key: key})
	probe := newClient(t, url)
	ctx := context.Background()
	numsub := func() int64 {
		m, err := probe.PubSubNumSub(ctx, key+"-request#/x#").Result()
		testkit.NoError(t, err)
		return m[key+"-request#/x#"]
	}
	numpat := func() int64 {
		n, err := probe.PubSubNumPat(ctx).Result()
		testkit.NoError(t, err)
		return n
	}
	a1, _ := newTestAdapter(t, f, "/x")
	testkit.Equal(t, numsub(), int64(1))
	testkit.NoError(t, a1.Close())
	eventually(t, "unsubscribed", func() bool { return numsub() == 0 })

	for i := 0; i < 20; i++ {
		a, _ := newTestAdapter(t, f, "/x")
		testkit.NoError(t, a.Close())
	}
	a2, _ := newTestAdapter(t, f, "/x")
	a3, _ := newTestAdapter(t, f, "/x")
	testkit.NoError(t, a2.Close())
	time.Sleep(100 * time.Millisecond) // let the background unsubscriptions run
	testkit.Equal(t, numsub(), int64(1))
	testkit.True(t, numpat() >= 1, "pattern subscription lost")
	s := newFakeSocket("s")
	a3.AddAll(s, []string{"s"})
	msg, err := encodeBroadcast("other", "/x", adapter.NewPacket("/x", json.RawMessage(`["still"]`), nil), adapter.BroadcastOptions{})
	testkit.NoError(t, err)
	testkit.NoError(t, probe.Publish(ctx, key+"#/x#", msg).Err())
	testkit.Equal(t, string(s.next(t).Data), `["still"]`)
	testkit.NoError(t, f.Close(context.Background()))
	eventually(t, "unsubscribed at Close", func() bool { return numsub() == 0 })
}
