package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
)

type recNsp struct {
	fakeNsp
	opts *adapter.RecoveryOptions
}

func (n recNsp) Recovery() *adapter.RecoveryOptions { return n.opts }

func recOpts(window time.Duration) *adapter.RecoveryOptions {
	return &adapter.RecoveryOptions{MaxDisconnectionDuration: window, MaxPackets: 1000, MaxPacketBytes: 1 << 20, MaxSessions: 1000, MaxSessionBytes: 1 << 20}
}

// logSocket records the data of every packet delivered to it.
type logSocket struct {
	id  string
	mu  sync.Mutex
	got []string
}

func (s *logSocket) ID() string { return s.id }
func (s *logSocket) Deliver(p *adapter.Packet, _ adapter.Flags, _ adapter.AckFunc) {
	s.mu.Lock()
	s.got = append(s.got, string(p.Data))
	s.mu.Unlock()
}
func (s *logSocket) Info() adapter.SocketInfo { return adapter.SocketInfo{ID: s.id} }
func (s *logSocket) Disconnect(bool)          {}

// lastOffset is what the client keeps: the last argument of an EVENT.
func lastOffset(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var arr []any
	if err := json.Unmarshal(data, &arr); err != nil {
		t.Fatal(err)
	}
	off, ok := arr[len(arr)-1].(string)
	if !ok {
		t.Fatalf("no offset in %s", data)
	}
	return off
}

func TestRecoveryOffsetsAndReplay(t *testing.T) {
	a := NewAdapter(recNsp{opts: recOpts(time.Minute)})
	defer a.Close()
	bcast := func(data string, opts adapter.BroadcastOptions) *adapter.Packet {
		p := adapter.NewPacket("/", json.RawMessage(data), nil)
		_ = a.Broadcast(p, opts)
		return p
	}
	first := bcast(`["a",1]`, adapter.BroadcastOptions{})
	off := lastOffset(t, first.Data)
	if !strings.HasPrefix(string(first.Data), `["a",1,"`) {
		t.Fatalf("offset not appended: %s", first.Data)
	}
	// Not logged: volatile, with an ack id; no offset either.
	v := bcast(`["v"]`, adapter.BroadcastOptions{Flags: adapter.Flags{Volatile: true}})
	if string(v.Data) != `["v"]` {
		t.Fatalf("volatile got an offset: %s", v.Data)
	}
	a.PersistSession(&adapter.Session{SID: "sid1", PID: "pid1", Rooms: []string{"sid1", "r1"}, Data: 7})
	bcast(`["to-r1"]`, adapter.BroadcastOptions{Rooms: []string{"r1"}})
	bcast(`["to-r2"]`, adapter.BroadcastOptions{Rooms: []string{"r2"}})
	bcast(`["except-r1"]`, adapter.BroadcastOptions{Except: []string{"r1"}})
	bcast(`["all"]`, adapter.BroadcastOptions{})
	bcast(`["to-me"]`, adapter.BroadcastOptions{Rooms: []string{"sid1"}})

	if _, ok := a.RestoreSession(context.Background(), "pid1", "nope", nil); ok {
		t.Fatal("restored with an unknown offset")
	}
	if _, ok := a.RestoreSession(context.Background(), "other", off, nil); ok {
		t.Fatal("restored an unknown pid")
	}
	sock := &logSocket{id: "sid1"}
	var sess *adapter.Session
	restored, ok := a.RestoreSession(context.Background(), "pid1", off, func(s *adapter.Session) adapter.Socket { sess = s; return sock })
	if !ok || sess.SID != "sid1" || sess.Data != 7 {
		t.Fatalf("restore: ok %v session %+v", ok, sess)
	}
	var names []string
	for _, p := range restored.Missed {
		var arr []any
		_ = json.Unmarshal(p.Data, &arr)
		names = append(names, arr[0].(string))
	}
	if got := strings.Join(names, ","); got != "to-r1,all,to-me" {
		t.Fatalf("missed %s", got)
	}
	if rooms := a.SocketRooms("sid1"); strings.Join(rooms, ",") != "r1,sid1" {
		t.Fatalf("rooms %v", rooms)
	}
	// A session is restored once.
	if _, ok := a.RestoreSession(context.Background(), "pid1", off, nil); ok {
		t.Fatal("restored twice")
	}
}

func TestRecoveryExpiry(t *testing.T) {
	a := NewAdapter(recNsp{opts: recOpts(100 * time.Millisecond)})
	defer a.Close()
	p := adapter.NewPacket("/", json.RawMessage(`["a"]`), nil)
	_ = a.Broadcast(p, adapter.BroadcastOptions{})
	a.PersistSession(&adapter.Session{SID: "s", PID: "p"})
	// The sweep timer empties both without any further call.
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, nb, s, sb := a.RecoveryStats()
		if n == 0 && nb == 0 && s == 0 && sb == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not expired: %d packets %d bytes, %d sessions %d bytes", n, nb, s, sb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := a.RestoreSession(context.Background(), "p", lastOffset(t, p.Data), nil); ok {
		t.Fatal("restored after the window")
	}
}

// TestRecoveryBounds is the attack: a client that makes the server
// broadcast big packets, and clients that connect and drop by the
// thousand, cannot grow the log or the sessions past their budgets.
func TestRecoveryBounds(t *testing.T) {
	opts := &adapter.RecoveryOptions{MaxDisconnectionDuration: time.Hour, MaxPackets: 50, MaxPacketBytes: 64 << 10, MaxSessions: 20, MaxSessionBytes: 8 << 10}
	a := NewAdapter(recNsp{opts: opts})
	defer a.Close()
	big := json.RawMessage(`["x","` + strings.Repeat("y", 4000) + `"]`)
	var first string
	for i := 0; i < 5000; i++ {
		p := adapter.NewPacket("/", big, nil)
		_ = a.Broadcast(p, adapter.BroadcastOptions{})
		if i == 0 {
			first = lastOffset(t, p.Data)
		}
		n, nb, _, _ := a.RecoveryStats()
		if n > opts.MaxPackets || nb > opts.MaxPacketBytes {
			t.Fatalf("log over budget: %d packets, %d bytes", n, nb)
		}
	}
	room := strings.Repeat("r", 500)
	for i := 0; i < 5000; i++ {
		id := fmt.Sprintf("s%d", i)
		a.PersistSession(&adapter.Session{SID: id, PID: "p" + id, Rooms: []string{id, room}})
		_, _, s, sb := a.RecoveryStats()
		if s > opts.MaxSessions || sb > opts.MaxSessionBytes {
			t.Fatalf("sessions over budget: %d, %d bytes", s, sb)
		}
		if i%3 == 0 { // restores leave tombstones; they are bounded too
			a.RestoreSession(context.Background(), "p"+id, "0", nil)
		}
	}
	if len(a.rec.order) > 2*opts.MaxSessions+64 {
		t.Fatalf("session order grew to %d", len(a.rec.order))
	}
	// The oldest offset was pushed out: a client holding it gets a new session.
	a.PersistSession(&adapter.Session{SID: "late", PID: "late"})
	if _, ok := a.RestoreSession(context.Background(), "late", first, nil); ok {
		t.Fatal("restored from an evicted offset")
	}
}

// TestRecoveryExactlyOnce restores sessions while broadcasts run: every
// packet logged after the client's offset reaches the restored socket
// exactly once, either among the missed packets or live.
func TestRecoveryExactlyOnce(t *testing.T) {
	opts := recOpts(time.Minute)
	opts.MaxPackets = 10000
	a := NewAdapter(recNsp{opts: opts})
	defer a.Close()
	p0 := adapter.NewPacket("/", json.RawMessage(`["start"]`), nil)
	_ = a.Broadcast(p0, adapter.BroadcastOptions{})
	off := lastOffset(t, p0.Data)
	const sessions = 20
	for i := 0; i < sessions; i++ {
		a.PersistSession(&adapter.Session{SID: fmt.Sprint("s", i), PID: fmt.Sprint("p", i), Rooms: []string{fmt.Sprint("s", i), "room"}})
	}
	const total = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			_ = a.Broadcast(adapter.NewPacket("/", json.RawMessage(fmt.Sprintf(`["n",%d]`, i)), nil), adapter.BroadcastOptions{Rooms: []string{"room"}})
		}
	}()
	socks := make([]*logSocket, sessions)
	for i := range socks {
		socks[i] = &logSocket{id: fmt.Sprint("s", i)}
		restored, ok := a.RestoreSession(context.Background(), fmt.Sprint("p", i), off, func(*adapter.Session) adapter.Socket { return socks[i] })
		if !ok {
			t.Fatal("not restored")
		}
		socks[i].mu.Lock()
		live := socks[i].got
		socks[i].got = nil
		for _, p := range restored.Missed {
			socks[i].got = append(socks[i].got, string(p.Data))
		}
		socks[i].got = append(socks[i].got, live...)
		socks[i].mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	<-done
	for _, s := range socks {
		s.mu.Lock()
		if len(s.got) != total {
			t.Fatalf("%s got %d packets, want %d", s.id, len(s.got), total)
		}
		for i, d := range s.got {
			if !strings.HasPrefix(d, fmt.Sprintf(`["n",%d,`, i)) {
				t.Fatalf("%s: packet %d is %s", s.id, i, d)
			}
		}
		s.mu.Unlock()
	}
}
