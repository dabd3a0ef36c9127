package redis

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// BenchmarkCrossNodeBroadcast floods broadcasts from node A to one socket
// on node B, classic against sharded Pub/Sub, on one Redis and on a
// 3-master Redis Cluster: msgs/s is what B received per second. The
// broadcasts go to 64 rooms in turn, so that their channels spread over
// the slots (and the masters). Run it alone:
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
		for _, kind := range []string{"classic", "sharded"} {
			b.Run(topology+"/"+kind, func(b *testing.B) {
				key := uniqueKey(b)
				ctx := context.Background()
				var pub, sub adapter.Adapter
				var subF adapter.Factory
				for i, a := range []*adapter.Adapter{&pub, &sub} {
					c := newClient(topology)
					b.Cleanup(func() { _ = c.Close() })
					var f adapter.Factory
					if kind == "classic" {
						f = New(c, Options{Key: key, MaxPendingPublishes: 1 << 16, Logger: testLogger(b)})
					} else {
						f = NewSharded(c, ShardedOptions{Key: key, MaxPendingPublishes: 1 << 16, Logger: testLogger(b)})
					}
					b.Cleanup(func() { _ = f.Close(ctx) })
					ad, err := f.Adapter(&fakeNamespace{name: "/"})
					if err != nil {
						b.Fatal(err)
					}
					*a = ad
					subF = f
					_ = i
				}
				var count atomic.Int64
				s := &benchSocket{id: "s0000000000000000001", count: &count}
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
				b.ResetTimer()
				start := time.Now()
				go func() {
					for i := 0; i < b.N; i++ {
						opts := adapter.BroadcastOptions{Rooms: []string{names[i%rooms]}}
						for {
							err := pub.Broadcast(adapter.NewPacket("/", payload, nil), opts)
							if !errors.Is(err, cluster.ErrQueueFull) {
								break
							}
							time.Sleep(50 * time.Microsecond)
						}
					}
				}()
				deadline := time.Now().Add(time.Minute)
				for count.Load() < int64(b.N) {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d received", count.Load(), b.N)
					}
					time.Sleep(100 * time.Microsecond)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			})
		}
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
