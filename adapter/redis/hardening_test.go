package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/parser"
)

// The tests of the hardening issue: a node's subscriptions cost Redis the
// same whatever its namespaces; no answer can get a node's subscription
// connection dropped; Close is bounded with Redis frozen.

// redisStats reads what Redis holds for the subscriptions of key.
type redisStats struct {
	numpat   int64 // PUBSUB NUMPAT: distinct patterns, all clients
	maxPsub  int   // most patterns one client holds (CLIENT LIST psub=)
	channels int   // PUBSUB CHANNELS key*
}

func statsOf(t *testing.T, c *goredis.Client, key string) redisStats {
	t.Helper()
	ctx := context.Background()
	var st redisStats
	var err error
	st.numpat, err = c.PubSubNumPat(ctx).Result()
	testkit.NoError(t, err)
	chans, err := c.PubSubChannels(ctx, escapeGlob(key)+"*").Result()
	testkit.NoError(t, err)
	st.channels = len(chans)
	list, err := c.ClientList(ctx).Result()
	testkit.NoError(t, err)
	for _, line := range strings.Split(list, "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "psub="); ok {
				n, _ := strconv.Atoi(v)
				st.maxPsub = max(st.maxPsub, n)
			}
		}
	}
	return st
}

// publishRate measures how many PUBLISH a second Redis takes (pipelined,
// one client): logged, not asserted, as timing depends on the machine.
func publishRate(t *testing.T, c *goredis.Client, channel string) float64 {
	t.Helper()
	ctx := context.Background()
	const n, batch = 10000, 500
	start := time.Now()
	for i := 0; i < n; i += batch {
		p := c.Pipeline()
		for j := 0; j < batch; j++ {
			p.Publish(ctx, channel, "x")
		}
		_, err := p.Exec(ctx)
		testkit.NoError(t, err)
	}
	return n / time.Since(start).Seconds()
}

// TestManyNamespaces creates and closes 2,000 namespaces on one node: Redis
// holds one pattern for the node all along (instead of one per namespace),
// the namespaces' channels go away with them, a namespace created again is
// counted at once, and the cluster keeps working.
func TestManyNamespaces(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	probe := newClient(t, url)
	ctx := context.Background()
	fa := newTestFactory(t, url, Options{Key: key, RequestsTimeout: 2 * time.Second})
	fb := newTestFactory(t, url, Options{Key: key, RequestsTimeout: 2 * time.Second})
	a, _ := newTestAdapter(t, fa, "/")
	b, _ := newTestAdapter(t, fb, "/")
	sa, sb := newFakeSocket("sa"), newFakeSocket("sb")
	a.AddAll(sa, []string{"sa"})
	b.AddAll(sb, []string{"sb"})
	base := statsOf(t, probe, key)
	t.Logf("two nodes, one namespace: %+v, PUBLISH %.0f/s", base, publishRate(t, probe, key+"#/none#"))
	testkit.Equal(t, base.numpat, int64(1))
	testkit.Equal(t, base.maxPsub, 1)

	const n = 2000
	open := make([]*Adapter, 0, n)
	for i := 0; i < n; i++ {
		d, _ := newTestAdapter(t, fa, fmt.Sprintf("/dyn-%d", i))
		open = append(open, d)
	}
	full := statsOf(t, probe, key)
	t.Logf("%d more namespaces on A: %+v, PUBLISH %.0f/s", n, full, publishRate(t, probe, key+"#/none#"))
	testkit.Equal(t, full.numpat, int64(1), "patterns with %d namespaces", n)
	testkit.Equal(t, full.maxPsub, 1)
	testkit.Equal(t, full.channels, base.channels+3*n)

	// A broadcast to one of them, from B, reaches A's socket there, and only
	// there.
	s7 := newFakeSocket("s7")
	open[7].AddAll(s7, []string{"s7", "room#7"})
	bd, _ := newTestAdapter(t, fb, "/dyn-7")
	testkit.NoError(t, bd.Broadcast(adapter.NewPacket("/dyn-7", json.RawMessage(`["seven"]`), nil), adapter.BroadcastOptions{Rooms: []string{"room#7"}}))
	testkit.Equal(t, string(s7.next(t).Data), `["seven"]`)
	testkit.NoError(t, bd.Close())

	for _, d := range open {
		testkit.NoError(t, d.Close())
	}
	eventually(t, "channels of the closed namespaces unsubscribed", func() bool {
		return statsOf(t, probe, key).channels == base.channels
	})
	after := statsOf(t, probe, key)
	t.Logf("after closing them: %+v, PUBLISH %.0f/s", after, publishRate(t, probe, key+"#/none#"))
	testkit.Equal(t, after, base)

	// The cluster still works, both ways.
	testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["a"]`), nil), adapter.BroadcastOptions{}))
	testkit.Equal(t, string(sa.next(t).Data), `["a"]`) // local
	testkit.Equal(t, string(sb.next(t).Data), `["a"]`)
	testkit.NoError(t, b.Broadcast(adapter.NewPacket("/", json.RawMessage(`["b"]`), nil), adapter.BroadcastOptions{}))
	testkit.Equal(t, string(sb.next(t).Data), `["b"]`)
	testkit.Equal(t, string(sa.next(t).Data), `["b"]`)

	// A namespace created again is counted by NUMSUB as soon as its
	// adapter exists, on both nodes, and serves broadcasts.
	again, _ := newTestAdapter(t, fa, "/dyn-42")
	n42, err := again.ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, n42, 1)
	again2, _ := newTestAdapter(t, fb, "/dyn-42")
	n42, err = again.ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, n42, 2)
	s42 := newFakeSocket("s42")
	again.AddAll(s42, []string{"s42"})
	testkit.NoError(t, again2.Broadcast(adapter.NewPacket("/dyn-42", json.RawMessage(`["again"]`), nil), adapter.BroadcastOptions{}))
	testkit.Equal(t, string(s42.next(t).Data), `["again"]`)
	testkit.Equal(t, statsOf(t, probe, key).numpat, int64(1))

	// Create and close at once, concurrently, on the same names: whatever
	// the order, what is open stays subscribed and what is closed does not.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				d, _ := newTestAdapter(t, fa, fmt.Sprintf("/churn-%d", i%5))
				_ = d.Close()
			}
		}()
	}
	wg.Wait()
	kept, _ := newTestAdapter(t, fa, "/churn-3")
	m, err := probe.PubSubNumSub(ctx, kept.requestChannel).Result()
	testkit.NoError(t, err)
	testkit.Equal(t, m[kept.requestChannel], int64(1))
	eventually(t, "churned namespaces unsubscribed", func() bool {
		chans, err := probe.PubSubChannels(ctx, key+"-request#/churn-*").Result()
		testkit.NoError(t, err)
		return len(chans) == 1
	})
}

// TestPatternIsolation: the node's one pattern matches its key literally,
// and namespaces whose names contain '#' or glob characters, or are
// prefixes of each other, get only their own broadcasts.
func TestPatternIsolation(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	base := uniqueKey(t)
	probe := newClient(t, url)
	ctx := context.Background()
	// Keys that unescaped patterns would confuse: base* would match basex;
	// base matches neither as K#*.
	keys := []string{base + "*", base + "x", base, base + "-request"}
	names := []string{"/", "/a", "/a#b", "/a*", "/a?", "/[a]"}
	type nodeNsp struct {
		key, nsp string
		sock     *fakeSocket
	}
	var all []nodeNsp
	for _, k := range keys {
		f := newTestFactory(t, url, Options{Key: k})
		for _, name := range names {
			a, _ := newTestAdapter(t, f, name)
			s := newFakeSocket(k + name)
			// Every socket is in the rooms "b", "b#r" and "r", so that a
			// room channel of another namespace looks like one of its own.
			a.AddAll(s, []string{"b", "b#r", "r"})
			all = append(all, nodeNsp{k, name, s})
		}
	}
	testkit.Equal(t, statsOf(t, probe, base).numpat, int64(len(keys)))
	for _, target := range all {
		for _, room := range []string{"", "r", "b#r"} {
			ch := target.key + "#" + target.nsp + "#"
			var opts adapter.BroadcastOptions
			if room != "" {
				ch += room + "#"
				opts.Rooms = []string{room}
			}
			want := fmt.Sprintf(`[%q]`, ch)
			msg, err := encodeBroadcast("other", target.nsp, adapter.NewPacket(target.nsp, json.RawMessage(want), nil), opts)
			testkit.NoError(t, err)
			testkit.NoError(t, probe.Publish(ctx, ch, msg).Err())
			testkit.Equal(t, string(target.sock.next(t).Data), want)
		}
	}
	// Each socket got exactly its three.
	time.Sleep(100 * time.Millisecond)
	for _, x := range all {
		x.sock.mu.Lock()
		extra := len(x.sock.got)
		x.sock.mu.Unlock()
		testkit.Equal(t, extra, 0, "%s%s got other namespaces' broadcasts", x.key, x.nsp)
	}
}

// bigSocket is a socket whose handshake is large (the headers of a
// client, say).
func bigSocket(id string, size int) *fakeSocket {
	s := newFakeSocket(id)
	s.info.Handshake = json.RawMessage(`{"headers":{"cookie":"` + strings.Repeat("c", size) + `"},"auth":{}}`)
	return s
}

// TestAnswerTooLarge: a node whose answer would exceed MaxMessageBytes
// answers with an error instead; the asker fails at once with an error
// naming the node, and the subscriptions of every node survive (Redis
// would drop a subscriber whose output buffer took the whole answer).
func TestAnswerTooLarge(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	ctx := context.Background()
	const timeout = 10 * time.Second
	fa := newTestFactory(t, url, Options{Key: key, RequestsTimeout: timeout})
	fb := newTestFactory(t, url, Options{Key: key, RequestsTimeout: timeout})
	a, nsA := newTestAdapter(t, fa, "/")
	b, nsB := newTestAdapter(t, fb, "/")
	sa := newFakeSocket("sa")
	a.AddAll(sa, []string{"sa"})
	// 45 sockets with 1 MB of handshake each on B: ~45 MB of answer, past
	// Redis's hard limit of 32 MB for a subscriber's output buffer.
	var bs []*fakeSocket
	for i := 0; i < 45; i++ {
		s := bigSocket(fmt.Sprintf("big%02d", i), 1<<20)
		b.AddAll(s, []string{s.id, "big"})
		bs = append(bs, s)
	}
	watch := newSubscriber(t, newClient(t, url), nil, []string{a.responseChannel})

	start := time.Now()
	socks, err := a.FetchSockets(ctx, adapter.BroadcastOptions{})
	d := time.Since(start)
	testkit.ErrorIs(t, err, cluster.ErrMessageTooLarge)
	testkit.True(t, socks == nil, "sockets with the error")
	testkit.True(t, strings.Contains(err.Error(), "fetchSockets") && strings.Contains(err.Error(), "node "+b.uid), "error %q", err)
	testkit.True(t, strings.HasPrefix(err.Error(), "redis: fetchSockets: node "+b.uid+" answered too large ("), "error %q", err)
	testkit.True(t, d < timeout/2, "failed after %v, not at once", d)
	t.Logf("FetchSockets: %v (after %v)", err, d)

	// On the wire: Node's answer with no socket (a Node asker counts it),
	// plus "error".
	m := watch.next()
	var got map[string]json.RawMessage
	testkit.NoError(t, json.Unmarshal([]byte(m.Payload), &got))
	testkit.Equal(t, string(got["sockets"]), `[]`)
	var ae cluster.AnswerError
	testkit.NoError(t, json.Unmarshal(got["error"], &ae))
	testkit.Equal(t, ae.Code, cluster.CodeTooLarge)
	testkit.Equal(t, ae.UID, b.uid)
	testkit.Equal(t, ae.Limit, 4<<20)
	testkit.True(t, ae.Size > 45<<20, "size %d", ae.Size)
	testkit.True(t, len(m.Payload) < 256, "error answer of %d bytes", len(m.Payload))

	// The subscriptions survived: broadcasts flow both ways.
	testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["after"]`), nil), adapter.BroadcastOptions{Rooms: []string{"big"}}))
	testkit.Equal(t, string(bs[0].next(t).Data), `["after"]`)
	testkit.NoError(t, b.Broadcast(adapter.NewPacket("/", json.RawMessage(`["back"]`), nil), adapter.BroadcastOptions{Rooms: []string{"sa"}}))
	testkit.Equal(t, string(sa.next(t).Data), `["back"]`)
	// A request that fits still works.
	socks, err = a.FetchSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"sa"}})
	testkit.NoError(t, err)
	testkit.Equal(t, len(socks), 1)

	// The other answers, with a node whose limit is small.
	fc := newTestFactory(t, url, Options{Key: key, RequestsTimeout: timeout, MaxMessageBytes: 2048})
	c, nsC := newTestAdapter(t, fc, "/")
	for i := 0; i < 100; i++ {
		c.AddAll(newFakeSocket(fmt.Sprintf("c%03d", i)), []string{fmt.Sprintf("c%03d", i), fmt.Sprintf("room-of-c-%03d", i)})
	}
	nsB.sse = func(args []json.RawMessage, ack func(json.RawMessage)) { ack(json.RawMessage(`"B"`)) }
	nsC.sse = func(args []json.RawMessage, ack func(json.RawMessage)) {
		ack(json.RawMessage(`"` + strings.Repeat("C", 4096) + `"`))
	}
	_ = nsA

	t.Run("allRooms", func(t *testing.T) {
		start := time.Now()
		_, err := a.AllRooms(ctx)
		testkit.ErrorIs(t, err, cluster.ErrMessageTooLarge)
		testkit.True(t, strings.HasPrefix(err.Error(), "redis: allRooms: node "+c.uid+" answered too large ("), "error %q", err)
		testkit.True(t, time.Since(start) < timeout/2, "failed after %v", time.Since(start))
	})
	t.Run("serverSideEmit", func(t *testing.T) {
		_, err := a.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"q"`)}, true)
		testkit.ErrorIs(t, err, cluster.ErrMessageTooLarge)
		testkit.True(t, strings.HasPrefix(err.Error(), "redis: serverSideEmit: node "+c.uid+" answered too large ("), "error %q", err)
	})
	t.Run("broadcast acknowledgement", func(t *testing.T) {
		// C's client answers too much: A counts it as null, as a Node asker
		// would, instead of waiting for it until the timeout.
		sc := newFakeSocket("sc")
		c.AddAll(sc, []string{"sc", "acks"})
		var mu sync.Mutex
		var counts []int
		var answers []string
		done := make(chan struct{}, 1)
		p := adapter.NewPacket("/", json.RawMessage(`["q"]`), nil)
		p.ID, p.HasID = 1, true
		testkit.NoError(t, a.BroadcastWithAck(p, adapter.BroadcastOptions{Rooms: []string{"acks"}, Flags: adapter.Flags{Timeout: timeout}},
			func(n int) { mu.Lock(); counts = append(counts, n); mu.Unlock() },
			func(args []parser.Raw) {
				mu.Lock()
				answers = append(answers, string(args[0].JSON))
				mu.Unlock()
				done <- struct{}{}
			}))
		sc.next(t)
		sc.mu.Lock()
		ack := sc.acks[0]
		sc.mu.Unlock()
		ack(rawArgs(t, `["`+strings.Repeat("A", 4096)+`"]`))
		select {
		case <-done:
		case <-time.After(timeout / 2):
			t.Fatal("no answer for the acknowledgement")
		}
		mu.Lock()
		defer mu.Unlock()
		testkit.Equal(t, answers, []string{"null"})
		testkit.True(t, len(counts) >= 1, "counts %v", counts)
	})

	t.Run("requests and broadcasts over the limit", func(t *testing.T) {
		big := json.RawMessage(`"` + strings.Repeat("x", 4096) + `"`)
		sc2 := newFakeSocket("sc2")
		c.AddAll(sc2, []string{"sc2"})
		err := c.Broadcast(adapter.NewPacket("/", json.RawMessage(`["big",`+string(big)+`]`), nil), adapter.BroadcastOptions{Rooms: []string{"sc2"}})
		testkit.ErrorIs(t, err, cluster.ErrMessageTooLarge)
		testkit.Equal(t, len(sc2.next(t).Data) > 4096, true) // delivered locally
		_, err = c.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"q"`), big}, true)
		testkit.ErrorIs(t, err, cluster.ErrMessageTooLarge)
		_, err = c.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"q"`), big}, false)
		testkit.ErrorIs(t, err, cluster.ErrMessageTooLarge)
		testkit.ErrorIs(t, c.AddSockets(ctx, adapter.BroadcastOptions{}, []string{strings.Repeat("r", 4096)}), cluster.ErrMessageTooLarge)
	})
}

// TestCloseWithRedisFrozen: with Redis frozen, closing namespaces returns at
// once, closing a node (server then Factory) returns within its bound, and
// no goroutine outlives it (not parallel, for the goroutine check).
func TestCloseWithRedisFrozen(t *testing.T) {
	testkit.CheckGoroutines(t)
	rs := testkit.StartRedisServer(t)
	key := uniqueKey(t)
	const timeout = 2 * time.Second
	A := startNode(t, rs.URL(), key, "A", timeout)
	B := startNode(t, rs.URL(), key, "B", timeout)
	drv := testkit.NewNodeClientDriver(t)
	connectTo(t, drv, A, "/")
	connectTo(t, drv, B, "/dyn-3")
	f := newTestFactory(t, rs.URL(), Options{Key: key, RequestsTimeout: timeout})
	var das []*Adapter
	for i := 0; i < 20; i++ {
		d, _ := newTestAdapter(t, f, fmt.Sprintf("/dyn-%d", i))
		das = append(das, d)
	}
	g := newTestFactory(t, rs.URL(), Options{Key: key, RequestsTimeout: timeout})
	ga, _ := newTestAdapter(t, g, "/")

	rs.Freeze()
	// Traffic that cannot go out.
	for i := 0; i < 100; i++ {
		_ = A.srv.Emit("tick", i)
		_ = das[0].Broadcast(adapter.NewPacket("/dyn-0", json.RawMessage(`["x"]`), nil), adapter.BroadcastOptions{})
	}

	start := time.Now()
	for _, d := range das {
		testkit.NoError(t, d.Close())
	}
	testkit.True(t, time.Since(start) < 500*time.Millisecond, "closing 20 namespaces took %v", time.Since(start))

	// A node: the server closes its namespaces, then the Factory.
	start = time.Now()
	A.close()
	testkit.True(t, time.Since(start) < 10*time.Second, "node A closed in %v", time.Since(start))
	t.Logf("node A closed in %v with Redis frozen", time.Since(start))

	// Close returns at its ctx's end at the latest, here while g's
	// publisher waits for Redis.
	testkit.NoError(t, ga.Broadcast(adapter.NewPacket("/", json.RawMessage(`["x"]`), nil), adapter.BroadcastOptions{}))
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := g.Close(ctx)
	t.Logf("Close(300ms): %v after %v", err, time.Since(start))
	testkit.True(t, time.Since(start) < time.Second, "Close took %v", time.Since(start))
	testkit.ErrorIs(t, err, context.DeadlineExceeded)
	// Close waits for the goroutines, within its bound; so does closing
	// node B (server, then Factory).
	var wg sync.WaitGroup
	for _, x := range []interface{ Close(context.Context) error }{g, f, closer(B.close)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			testkit.NoError(t, x.Close(context.Background()))
			testkit.True(t, time.Since(start) < 10*time.Second, "Close took %v", time.Since(start))
		}()
	}
	wg.Wait()
}

// closer makes a Close method of a function.
type closer func()

func (c closer) Close(context.Context) error {
	c()
	return nil
}

// TestAnswerLen: the size of a REMOTE_FETCH answer counted without
// building it is the size of the answer built.
func TestAnswerLen(t *testing.T) {
	socks := []adapter.SocketInfo{
		{ID: "a", Handshake: json.RawMessage(`{"x":"\u00e9"}`), Rooms: []string{"a", "r\"1"}, Data: json.RawMessage(`{"n":1}`)},
		{ID: "b\u2028"},
		{ID: "c", Rooms: []string{}, Data: json.RawMessage(`null`)},
	}
	for split := 0; split <= len(socks); split++ {
		m := cluster.NewJSONMsg(64)
		m.Str("requestId", "abc")
		m.Key("sockets")
		m.B = append(m.B, '[')
		for i, s := range socks {
			if i > 0 {
				m.B = append(m.B, ',')
			}
			m.B = cluster.AppendSocket(m.B, s)
		}
		m.B = append(m.B, ']')
		full := len(m.Bytes())

		h := cluster.NewJSONMsg(64)
		h.Str("requestId", "abc")
		h.Key("sockets")
		h.B = append(h.B, '[')
		for i, s := range socks[:split] {
			if i > 0 {
				h.B = append(h.B, ',')
			}
			h.B = cluster.AppendSocket(h.B, s)
		}
		got := cluster.AnswerLen(h.B, socks[split:])
		testkit.Equal(t, got, full, "split at %d", split)
	}
}

// TestCloseBoundedByRequestsTimeout: with a client that honours context
// deadlines (ContextTimeoutEnabled), Close with Redis frozen takes about
// RequestsTimeout, however long the client's ReadTimeout.
func TestCloseBoundedByRequestsTimeout(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	opts, err := goredis.ParseURL(rs.URL())
	testkit.NoError(t, err)
	opts.ContextTimeoutEnabled = true
	opts.ReadTimeout = time.Minute
	client := goredis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	const timeout = 500 * time.Millisecond
	f := New(client, Options{Key: uniqueKey(t), RequestsTimeout: timeout, Logger: testLogger(t)})
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	a, _ := newTestAdapter(t, f, "/")
	rs.Freeze()
	for i := 0; i < 1000; i++ {
		_ = a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["x"]`), nil), adapter.BroadcastOptions{})
	}
	time.Sleep(50 * time.Millisecond) // a batch in flight
	start := time.Now()
	testkit.NoError(t, f.Close(context.Background()))
	t.Logf("Close with Redis frozen: %v", time.Since(start))
	testkit.True(t, time.Since(start) < 8*timeout, "Close took %v", time.Since(start))
}

// TestPublishBoundedWithoutContextTimeouts: with a client that does not
// honour context deadlines (go-redis's default), a publish to a frozen
// Redis fails after one ReadTimeout, not after go-redis's retries (each a
// ReadTimeout of its own): the publisher gives it a deadline all the same,
// which go-redis checks between its retries. Everything queued behind the
// publish waits that long (on a Redis Cluster whose master hung, with the
// slot map stale meanwhile, the retries went on for tens of seconds).
func TestPublishBoundedWithoutContextTimeouts(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	opts, err := goredis.ParseURL(rs.URL())
	testkit.NoError(t, err)
	opts.ReadTimeout = 1500 * time.Millisecond // a read, then go-redis retries with another
	client := goredis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	f := New(client, Options{Key: uniqueKey(t), RequestsTimeout: 200 * time.Millisecond, Logger: testLogger(t)})
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	a, _ := newTestAdapter(t, f, "/")
	testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["warm"]`), nil), adapter.BroadcastOptions{}))
	time.Sleep(100 * time.Millisecond) // the connection is open and idle
	rs.Freeze()
	start := time.Now()
	testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["x"]`), nil), adapter.BroadcastOptions{}))
	for !f.pubFailing.Load() {
		testkit.True(t, time.Since(start) < 2300*time.Millisecond, "the publish has not failed after %v", time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("publish to a frozen Redis failed after %v", time.Since(start))
}
