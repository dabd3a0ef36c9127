package redis

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// benchPayloads are typical event arrays: a chat message, a 1 KB object,
// and one with a 4 KB binary attachment.
func benchPayloads() []struct {
	name string
	data []byte
	atts [][]byte
} {
	obj := fmt.Sprintf(`["msg",{"t":1795300403128000,"seq":42,"src":"srv","user":{"id":"u-1","name":"Zoë"},"pad":%q,"tags":["a","b"],"n":3.25}]`, strings.Repeat("x", 900))
	return []struct {
		name string
		data []byte
		atts [][]byte
	}{
		{"chat", []byte(`["chat","hello everyone",{"from":"bob","room":"lobby"}]`), nil},
		{"1KB", []byte(obj), nil},
		{"binary4KB", []byte(`["file","photo.jpg",{"_placeholder":true,"num":0}]`), [][]byte{make([]byte, 4096)}},
	}
}

func BenchmarkTranscodeJSONToMsgpack(b *testing.B) {
	for _, p := range benchPayloads() {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(p.data) + cluster.AttachmentsLen(p.atts)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w := cluster.GetWriter(len(p.data) + cluster.AttachmentsLen(p.atts))
				if err := w.JSON(p.data, p.atts); err != nil {
					b.Fatal(err)
				}
				w.Bytes()
			}
		})
	}
}

func BenchmarkTranscodeMsgpackToJSON(b *testing.B) {
	for _, p := range benchPayloads() {
		m, err := cluster.JSONToMsgpack(p.data, p.atts)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(m)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r := cluster.GetReader(m)
				if _, _, err := r.ToJSON(make([]byte, 0, len(m)+32), nil, cluster.BinPlaceholder); err != nil {
					b.Fatal(err)
				}
				cluster.PutReader(r)
			}
		})
	}
}

// BenchmarkBroadcastMessage measures a whole broadcast message: built for
// publishing, and decoded on a receiving node into a packet.
func BenchmarkBroadcastMessage(b *testing.B) {
	opts := adapter.BroadcastOptions{Rooms: []string{"lobby"}, Except: []string{"AAAAAAAAAAAAAAAAAAAA"}}
	for _, p := range benchPayloads() {
		pkt := adapter.NewPacket("/", p.data, p.atts)
		msg, err := encodeBroadcast("4TrWtR", "/", pkt, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := encodeBroadcast("4TrWtR", "/", pkt, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := decodeBroadcast(msg, "other"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchSocket counts deliveries; the packet is encoded by the first
// recipient, as a real socket does.
type benchSocket struct {
	id    string
	count *atomic.Int64
	probe chan time.Time // receives the arrival times, when set
}

func (s *benchSocket) ID() string { return s.id }
func (s *benchSocket) Deliver(p *adapter.Packet, _ adapter.Flags, _ adapter.AckFunc) {
	_ = p.Encoded(func(p *adapter.Packet) any { return len(p.Data) })
	s.count.Add(1)
	if s.probe != nil {
		s.probe <- time.Now()
	}
}
func (s *benchSocket) Info() adapter.SocketInfo { return adapter.SocketInfo{ID: s.id} }
func (s *benchSocket) Disconnect(bool)          {}

// BenchmarkFanOut publishes broadcasts on node A and delivers them to N
// local sockets of node B, through a real Redis: "flood" publishes as fast as
// the queue takes them (throughput), "roundtrip" one at a time (latency
// from the Emit on A to the delivery on B).
func BenchmarkFanOut(b *testing.B) {
	url := testkit.StartRedis(b)
	payload := []byte(`["msg",{"t":1795300403128000,"seq":1,"src":"srv","pad":"xxxxxxxxxxxxxxxx"}]`)
	for _, n := range []int{1, 100, 1000} {
		for _, mode := range []string{"flood", "roundtrip"} {
			b.Run(fmt.Sprintf("%s/sockets=%d", mode, n), func(b *testing.B) {
				key := uniqueKey(b)
				fa := newTestFactory(b, url, Options{Key: key, MaxPendingPublishes: 1 << 16})
				fb := newTestFactory(b, url, Options{Key: key})
				pub, _ := newTestAdapter(b, fa, "/")
				sub, _ := newTestAdapter(b, fb, "/")
				var count atomic.Int64
				probe := make(chan time.Time, 1<<16)
				for i := 0; i < n; i++ {
					s := &benchSocket{id: fmt.Sprintf("s%019d", i), count: &count}
					if i == 0 {
						s.probe = probe
					}
					sub.AddAll(s, []string{s.id})
				}
				pkt := func() *adapter.Packet { return adapter.NewPacket("/", json.RawMessage(payload), nil) }
				latencies := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				start := time.Now()
				if mode == "flood" {
					go func() {
						for i := 0; i < b.N; i++ {
							broadcastUntilQueued(pub, pkt(), adapter.BroadcastOptions{})
						}
					}()
					for i := 0; i < b.N; i++ {
						<-probe
					}
					for count.Load() < int64(b.N*n) {
						time.Sleep(100 * time.Microsecond)
					}
				} else {
					for i := 0; i < b.N; i++ {
						sent := time.Now()
						target := int64((i + 1) * n)
						if err := pub.Broadcast(pkt(), adapter.BroadcastOptions{}); err != nil {
							b.Fatal(err)
						}
						<-probe
						for count.Load() < target {
							time.Sleep(10 * time.Microsecond)
						}
						latencies = append(latencies, time.Since(sent))
					}
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "deliveries/s")
				if len(latencies) > 0 {
					sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
					b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
				}
			})
		}
	}
}

// BenchmarkBroadcastLogged is the cost of a broadcast with connection state
// recovery on (logged in Redis, delivered here once it is back) against the
// same broadcast without, from parallel senders, with one local recipient:
// what the README reports.
func BenchmarkBroadcastLogged(b *testing.B) {
	url := testkit.StartRedis(b)
	payload := []byte(`["msg","` + strings.Repeat("p", 64) + `"]`)
	for _, logged := range []bool{false, true} {
		name := "plain"
		if logged {
			name = "logged"
		}
		b.Run(name, func(b *testing.B) {
			f := newTestFactory(b, url, Options{Key: uniqueKey(b)})
			var ns adapter.Namespace = &fakeNamespace{name: "/"}
			if logged {
				ns = &recoveryNamespace{&fakeNamespace{name: "/"}, adapter.RecoveryOptions{
					MaxDisconnectionDuration: time.Minute, MaxPackets: 10000, MaxPacketBytes: 32 << 20,
					MaxSessions: 10, MaxSessionBytes: 1 << 20}}
			}
			a, err := f.Adapter(ns)
			if err != nil {
				b.Fatal(err)
			}
			var count atomic.Int64
			a.AddAll(&benchSocket{id: "s1", count: &count}, []string{"s1", "room"})
			opts := adapter.BroadcastOptions{Rooms: []string{"room"}}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = a.Broadcast(adapter.NewPacket("/", payload, nil), opts)
				}
			})
		})
	}
}
