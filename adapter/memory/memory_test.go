package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

type fakeNsp struct{}

func (fakeNsp) Name() string                                                  { return "/" }
func (fakeNsp) NextAckID() uint64                                             { return 0 }
func (fakeNsp) HandleServerSideEmit([]json.RawMessage, func(json.RawMessage)) {}

// fakeSocket records what the adapter hands it.
type fakeSocket struct {
	id        string
	delivered atomic.Int64
	acks      atomic.Int64
	closed    atomic.Bool
	a         *Adapter
}

func (s *fakeSocket) ID() string { return s.id }
func (s *fakeSocket) Deliver(p *adapter.Packet, _ adapter.Flags, ack adapter.AckFunc) {
	_ = p.Encoded(func(p *adapter.Packet) any { return len(p.Data) })
	s.delivered.Add(1)
	if ack != nil {
		s.acks.Add(1)
	}
}
func (s *fakeSocket) Info() adapter.SocketInfo {
	return adapter.SocketInfo{ID: s.id, Rooms: s.a.SocketRooms(s.id), Local: s}
}
func (s *fakeSocket) Disconnect(bool) { s.closed.Store(true); s.a.DelAll(s.id) }

func setup(t testing.TB, n int) (*Adapter, []*fakeSocket) {
	t.Helper()
	a := NewAdapter(fakeNsp{})
	socks := make([]*fakeSocket, n)
	for i := range socks {
		socks[i] = &fakeSocket{id: fmt.Sprintf("s%02d", i), a: a}
		a.AddAll(socks[i], []string{socks[i].id})
	}
	return a, socks
}

func selected(a *Adapter, opts adapter.BroadcastOptions) []string {
	var ids []string
	a.LocalSockets(opts, func(s adapter.Socket) bool {
		ids = append(ids, s.ID())
		return true
	})
	sort.Strings(ids)
	return ids
}

func TestSelection(t *testing.T) {
	a, s := setup(t, 5)
	a.AddAll(s[0], []string{"r1", "r2"})
	a.AddAll(s[1], []string{"r1"})
	a.AddAll(s[2], []string{"r2", "r3"})
	a.AddAll(s[3], []string{"r3"})

	tests := []struct {
		name string
		opts adapter.BroadcastOptions
		want []string
	}{
		{"everyone", adapter.BroadcastOptions{}, []string{"s00", "s01", "s02", "s03", "s04"}},
		{"one room", adapter.BroadcastOptions{Rooms: []string{"r1"}}, []string{"s00", "s01"}},
		{"union counted once", adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}}, []string{"s00", "s01", "s02"}},
		{"except room", adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}, Except: []string{"r3"}}, []string{"s00", "s01"}},
		{"everyone but one", adapter.BroadcastOptions{Except: []string{"s04"}}, []string{"s00", "s01", "s02", "s03"}},
		{"unknown room", adapter.BroadcastOptions{Rooms: []string{"nope"}}, nil},
		{"own-id room", adapter.BroadcastOptions{Rooms: []string{"s03"}}, []string{"s03"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := selected(a, tt.opts); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMembership(t *testing.T) {
	a, s := setup(t, 2)
	a.AddAll(s[0], []string{"a", "b", "a"})
	if got, want := a.SocketRooms("s00"), []string{"a", "b", "s00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rooms %v, want %v", got, want)
	}
	a.Del("s00", "a")
	a.Del("s00", "not-joined")
	if got, want := a.SocketRooms("s00"), []string{"b", "s00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rooms %v, want %v", got, want)
	}
	if got, want := a.LocalRooms(), []string{"b", "s00", "s01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("local rooms %v, want %v", got, want)
	}
	a.DelAll("s00")
	if got := a.SocketRooms("s00"); got != nil {
		t.Fatalf("rooms after DelAll: %v", got)
	}
	if got, want := a.LocalRooms(), []string{"s01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("local rooms %v, want %v (empty rooms must go)", got, want)
	}
}

func TestClusterOperationsAreLocal(t *testing.T) {
	ctx := context.Background()
	a, s := setup(t, 3)
	if err := a.AddSockets(ctx, adapter.BroadcastOptions{Except: []string{"s02"}}, []string{"club"}); err != nil {
		t.Fatal(err)
	}
	if got := selected(a, adapter.BroadcastOptions{Rooms: []string{"club"}}); !reflect.DeepEqual(got, []string{"s00", "s01"}) {
		t.Fatalf("club: %v", got)
	}
	if err := a.DelSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"s00"}}, []string{"club"}); err != nil {
		t.Fatal(err)
	}
	infos, err := a.FetchSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"club"}})
	if err != nil || len(infos) != 1 || infos[0].ID != "s01" {
		t.Fatalf("fetch: %v %v", infos, err)
	}
	if err := a.DisconnectSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"club"}}, false); err != nil {
		t.Fatal(err)
	}
	if !s[1].closed.Load() || s[0].closed.Load() {
		t.Fatal("wrong sockets disconnected")
	}
	if n, _ := a.ServerCount(ctx); n != 1 {
		t.Fatalf("server count %d", n)
	}
	res, err := a.ServerSideEmit(ctx, nil, true)
	if err != nil || res == nil || len(res) != 0 {
		t.Fatalf("serverSideEmit alone: %v %v", res, err)
	}
}

func TestBroadcastWithAckCountsClients(t *testing.T) {
	a, s := setup(t, 4)
	var count int
	p := adapter.NewPacket("/", json.RawMessage(`["x"]`), nil)
	p.ID, p.HasID = 7, true
	_ = a.BroadcastWithAck(p, adapter.BroadcastOptions{Except: []string{"s00"}}, func(n int) { count = n }, func([]parser.Raw) {})
	if count != 3 || s[0].acks.Load() != 0 || s[1].acks.Load() != 1 {
		t.Fatalf("count %d", count)
	}
}

func TestConcurrentMembership(t *testing.T) {
	a, s := setup(t, 50)
	var wg sync.WaitGroup
	for i, sock := range s {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				room := fmt.Sprintf("r%d", (i+j)%7)
				a.AddAll(sock, []string{room})
				_ = a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["x"]`), nil), adapter.BroadcastOptions{Rooms: []string{room}})
				a.Del(sock.id, room)
			}
			if i%2 == 0 {
				a.DelAll(sock.id)
			}
		}()
	}
	wg.Wait()
	if got := len(a.LocalRooms()); got != 25 {
		t.Fatalf("%d rooms left, want the 25 own-id rooms", got)
	}
}

// BenchmarkBroadcast measures one broadcast to N sockets; allocations per
// broadcast must not depend on N.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			a, s := setup(b, n)
			for _, sock := range s {
				a.AddAll(sock, []string{"all"})
			}
			opts := adapter.BroadcastOptions{Rooms: []string{"all"}}
			data := json.RawMessage(`["msg",{"t":1,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = a.Broadcast(adapter.NewPacket("/", data, nil), opts)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// TestOwnRoom covers the room named by a socket's id, kept as a flag: it
// can be left, and another socket may join a room of that name too.
func TestOwnRoom(t *testing.T) {
	a, s := setup(t, 3)
	a.AddAll(s[1], []string{"s00"}) // s01 joins the room named like s00
	if got, want := selected(a, adapter.BroadcastOptions{Rooms: []string{"s00"}}), []string{"s00", "s01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("room s00: %v, want %v", got, want)
	}
	if got, want := selected(a, adapter.BroadcastOptions{Rooms: []string{"s00", "s01"}}), []string{"s00", "s01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rooms s00+s01: %v, want %v", got, want)
	}
	if got, want := selected(a, adapter.BroadcastOptions{Except: []string{"s00"}}), []string{"s02"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("except s00: %v, want %v", got, want)
	}
	a.Del("s00", "s00") // s00 leaves its own room
	if got, want := selected(a, adapter.BroadcastOptions{Rooms: []string{"s00"}}), []string{"s01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("room s00 after leaving: %v, want %v", got, want)
	}
	if got, want := a.SocketRooms("s00"), []string{}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rooms of s00: %v, want %v", got, want)
	}
	if got, want := a.LocalRooms(), []string{"s00", "s01", "s02"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("local rooms %v, want %v", got, want)
	}
	if !a.HasRoom("s02") || !a.HasRoom("s00") || a.HasRoom("nope") {
		t.Fatal("HasRoom")
	}
	a.DelAll("s02")
	if a.HasRoom("s02") {
		t.Fatal("HasRoom after DelAll")
	}
}
