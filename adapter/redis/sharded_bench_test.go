package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/adapter/redisstreams"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// BenchmarkCrossNodeBroadcast sends broadcasts from node A to one socket on
// node B, with each Redis adapter (classic and sharded Pub/Sub, Redis
// Streams), on one Redis and on a 3-master Redis Cluster. "flood" sends as
// fast as A's queue takes them: msgs/s is what B received per second.
// "roundtrip" sends one at a time: p50-µs and p99-µs are from the Broadcast
// on A to the delivery on B. The broadcasts go to 64 rooms in turn, so that
// the sharded adapter's channels spread over the slots (and the masters).
// Run it alone:
//
//	go test ./adapter/redis -run '^$' -bench CrossNodeBroadcast -benchtime 20000x
func BenchmarkCrossNodeBroadcast(b *testing.B) {
	single := testkit.StartRedis(b)
	addrs := testkit.StartRedisCluster(b, 3)
	const rooms = 64
	payload := []byte(`["msg",{"t":1795300403128000,"seq":1,"src":"srv","pad":"xxxxxxxxxxxxxxxx"}]`)
	newClient := func(topology string) goredis.UniversalClient {
		if topology == "single" {
			opts, err := goredis.ParseURL(single)
			if err != nil {
				b.Fatal(err)
			}
			return goredis.NewClient(opts)
		}
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	}
	for _, topology := range []string{"single", "cluster"} {
		for _, kind := range []string{"classic", "sharded", "streams"} {
			for _, mode := range []string{"flood", "roundtrip"} {
				b.Run(topology+"/"+kind+"/"+mode, func(b *testing.B) {
					benchCrossNode(b, kind, mode, newClient(topology), newClient(topology), rooms, payload)
				})
			}
		}
	}
}

func benchCrossNode(b *testing.B, kind, mode string, ca, cb goredis.UniversalClient, rooms int, payload []byte) {
	key := uniqueKey(b)
	ctx := context.Background()
	var ads [2]adapter.Adapter
	var subF adapter.Factory
	for i, c := range []goredis.UniversalClient{ca, cb} {
		b.Cleanup(func() { _ = c.Close() })
		var f adapter.Factory
		switch kind {
		case "classic":
			f = New(c, Options{Key: key, MaxPendingPublishes: 1 << 16, Logger: testLogger(b)})
		case "sharded":
			f = NewSharded(c, ShardedOptions{Key: key, MaxPendingPublishes: 1 << 16, Logger: testLogger(b)})
		default:
			f = redisstreams.New(c, redisstreams.Options{
				StreamName: key, ChannelPrefix: key, MaxLen: 1 << 20,
				MaxPendingPublishes: 1 << 16, Logger: testLogger(b),
			})
		}
		b.Cleanup(func() { _ = f.Close(ctx) })
		ad, err := f.Adapter(&fakeNamespace{name: "/"})
		if err != nil {
			b.Fatal(err)
		}
		ads[i], subF = ad, f
	}
	pub, sub := ads[0], ads[1]
	var count atomic.Int64
	probe := make(chan time.Time, 1<<16)
	s := &benchSocket{id: "s0000000000000000001", count: &count, probe: probe}
	names := make([]string, rooms)
	for i := range names {
		names[i] = fmt.Sprintf("room-%d", i)
	}
	sub.AddAll(s, append([]string{s.id}, names...))
	if sf, ok := subF.(*ShardedFactory); ok {
		// The room channels are subscribed asynchronously.
		deadline := time.Now().Add(10 * time.Second)
		for _, r := range names {
			for {
				n, err := sf.shardNumSub(ctx, key+"#/#"+r+"#")
				if err == nil && n == 1 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("room %s not subscribed", r)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	send := func(i int) {
		broadcastUntilQueued(pub, adapter.NewPacket("/", payload, nil), adapter.BroadcastOptions{Rooms: []string{names[i%rooms]}})
	}
	// Until one goes through: B's reading (a stream's XREAD) may start
	// after A's first message.
	for warm := 0; ; warm++ {
		send(warm)
		select {
		case <-probe:
		case <-time.After(100 * time.Millisecond):
			if warm < 100 {
				continue
			}
			b.Fatal("B receives nothing")
		}
		break
	}
	time.Sleep(200 * time.Millisecond)
	for len(probe) > 0 {
		<-probe
	}
	count.Store(0)
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	if mode == "flood" {
		go func() {
			for i := 0; i < b.N; i++ {
				send(i)
			}
		}()
	}
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < b.N; i++ {
		sent := time.Now()
		if mode == "roundtrip" {
			send(i)
		}
		select {
		case <-probe:
		case <-time.After(time.Until(deadline)):
			b.Fatalf("%d of %d received", count.Load(), b.N)
		}
		latencies = append(latencies, time.Since(sent))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if mode == "roundtrip" {
		sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
	}
}

// broadcastUntilQueued broadcasts p, waiting while the publish queue is
// full: a flood goes as fast as Redis takes it.
func broadcastUntilQueued(a adapter.Adapter, p *adapter.Packet, opts adapter.BroadcastOptions) {
	for {
		err := a.Broadcast(p, opts)
		if !errors.Is(err, cluster.ErrQueueFull) && !errors.Is(err, redisstreams.ErrQueueFull) {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// BenchmarkShardedBroadcastMessage measures a whole BROADCAST: built for
// publishing, and decoded on a receiving node into a packet.
func BenchmarkShardedBroadcastMessage(b *testing.B) {
	opts := adapter.BroadcastOptions{Rooms: []string{"lobby"}, Except: []string{"AAAAAAAAAAAAAAAAAAAA"}}
	for _, p := range benchPayloads() {
		pkt := adapter.NewPacket("/", p.data, p.atts)
		msg, err := encodeOut("f814a91ae584e293", "/", cluster.BroadcastOut("", pkt, opts))
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := encodeOut("f814a91ae584e293", "/", cluster.BroadcastOut("", pkt, opts)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				m, err := cluster.Decode(msg)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := m.Event(); err != nil {
					b.Fatal(err)
				}
				_ = m.Data.Opts.Options()
			}
		})
	}
}
