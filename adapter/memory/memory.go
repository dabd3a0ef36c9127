package memory

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/smallmap"
	"github.com/ioswarm/ioswarm/parser"
)

const numShards = 32 // a power of two

// Adapter is the in-memory adapter of one namespace. It is safe for
// concurrent use.
type Adapter struct {
	nsp   adapter.Namespace
	rooms [numShards]roomShard
	socks [numShards]sockShard
	rec   *recovery // nil when the server has connection state recovery off
}

// member is a local socket and the rooms it is in. The room named by the
// socket's own id, which every socket is in, is a flag rather than an entry
// of the room maps: one map fewer per socket.
type member struct {
	sock  adapter.Socket
	own   atomic.Bool // in its own-id room
	mu    sync.Mutex
	gone  bool                           // removed: later joins are ignored
	rooms smallmap.Map[string, struct{}] // the other rooms
}

type roomShard struct {
	mu sync.RWMutex
	m  map[string]map[string]*member // room → socket id → member
}

type sockShard struct {
	mu sync.RWMutex
	m  map[string]*member
}

var (
	_ adapter.Adapter   = (*Adapter)(nil)
	_ adapter.Factory   = (*Factory)(nil)
	_ adapter.Recoverer = (*Adapter)(nil)
)

// Factory is the adapter.Factory of the in-memory adapter: each namespace's
// rooms live in this process only. It holds nothing of its own; the zero
// value is ready to use.
type Factory struct{}

// New returns an in-memory Factory, the server's default.
func New() *Factory { return &Factory{} }

// Adapter implements adapter.Factory.
func (*Factory) Adapter(nsp adapter.Namespace) (adapter.Adapter, error) { return NewAdapter(nsp), nil }

// Close implements adapter.Factory; there is nothing to release.
func (*Factory) Close(context.Context) error { return nil }

// NewAdapter returns the in-memory adapter of nsp, for cluster adapters
// that keep their node's rooms in one.
func NewAdapter(nsp adapter.Namespace) *Adapter {
	a := &Adapter{nsp: nsp}
	for i := range a.rooms {
		a.rooms[i].m = make(map[string]map[string]*member)
		a.socks[i].m = make(map[string]*member)
	}
	if rn, ok := nsp.(adapter.RecoveryNamespace); ok {
		if opts := rn.Recovery(); opts != nil {
			a.rec = newRecovery(*opts)
		}
	}
	return a
}

// Namespace returns the namespace the adapter serves.
func (a *Adapter) Namespace() adapter.Namespace { return a.nsp }

// shard hashes s with FNV-1a.
func shard(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h & (numShards - 1)
}

func (a *Adapter) member(id string) *member {
	sh := &a.socks[shard(id)]
	sh.mu.RLock()
	m := sh.m[id]
	sh.mu.RUnlock()
	return m
}

// AddAll adds a local socket to rooms.
func (a *Adapter) AddAll(s adapter.Socket, rooms []string) {
	id := s.ID()
	sh := &a.socks[shard(id)]
	sh.mu.Lock()
	m := sh.m[id]
	if m == nil {
		m = &member{sock: s}
		sh.m[id] = m
	}
	sh.mu.Unlock()

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone {
		return
	}
	for _, room := range rooms {
		if room == id {
			m.own.Store(true)
			continue
		}
		if m.rooms.Has(room) {
			continue
		}
		m.rooms.Set(room, struct{}{})
		rs := &a.rooms[shard(room)]
		rs.mu.Lock()
		set := rs.m[room]
		if set == nil {
			set = make(map[string]*member, 1)
			rs.m[room] = set
		}
		set[id] = m
		rs.mu.Unlock()
	}
}

// Del removes a local socket from one room.
func (a *Adapter) Del(id, room string) {
	m := a.member(id)
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if room == id {
		m.own.Store(false)
		return
	}
	if !m.rooms.Has(room) {
		return
	}
	m.rooms.Delete(room)
	a.delFromRoom(id, room)
}

// delFromRoom removes id from a room's member set; the caller holds m.mu.
func (a *Adapter) delFromRoom(id, room string) {
	rs := &a.rooms[shard(room)]
	rs.mu.Lock()
	if set := rs.m[room]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(rs.m, room)
		}
	}
	rs.mu.Unlock()
}

// DelAll removes a local socket from all its rooms and forgets it.
func (a *Adapter) DelAll(id string) {
	sh := &a.socks[shard(id)]
	sh.mu.Lock()
	m := sh.m[id]
	delete(sh.m, id)
	sh.mu.Unlock()
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for room := range m.rooms.All {
		a.delFromRoom(id, room)
	}
	m.rooms = smallmap.Map[string, struct{}]{}
	m.gone = true
	m.own.Store(false)
}

// SocketRooms returns the rooms of a local socket, sorted, or nil.
func (a *Adapter) SocketRooms(id string) []string {
	m := a.member(id)
	if m == nil {
		return nil
	}
	m.mu.Lock()
	rooms := make([]string, 0, 1+m.rooms.Len())
	for r := range m.rooms.All {
		rooms = append(rooms, r)
	}
	if m.own.Load() {
		rooms = append(rooms, id)
	}
	m.mu.Unlock()
	sort.Strings(rooms)
	return rooms
}

// HasRoom reports whether a local socket is in room, without copying the
// room's members.
func (a *Adapter) HasRoom(room string) bool {
	rs := &a.rooms[shard(room)]
	rs.mu.RLock()
	_, ok := rs.m[room]
	rs.mu.RUnlock()
	return ok || a.ownRoom(room) != nil
}

// ownRoom returns the member whose own-id room is room, if it is in it.
func (a *Adapter) ownRoom(room string) *member {
	if m := a.member(room); m != nil && m.own.Load() {
		return m
	}
	return nil
}

// LocalRooms returns every local room, sorted.
func (a *Adapter) LocalRooms() []string {
	var rooms []string
	seen := make(map[string]struct{})
	for i := range a.rooms {
		rs := &a.rooms[i]
		rs.mu.RLock()
		for r := range rs.m {
			rooms = append(rooms, r)
			seen[r] = struct{}{}
		}
		rs.mu.RUnlock()
	}
	for i := range a.socks {
		sh := &a.socks[i]
		sh.mu.RLock()
		for id, m := range sh.m {
			if _, dup := seen[id]; !dup && m.own.Load() {
				rooms = append(rooms, id)
			}
		}
		sh.mu.RUnlock()
	}
	sort.Strings(rooms)
	return rooms
}

// LocalSockets calls fn for every local socket selected by opts, until fn
// returns false.
func (a *Adapter) LocalSockets(opts adapter.BroadcastOptions, fn func(adapter.Socket) bool) {
	sel := a.selectSockets(opts)
	for _, s := range *sel {
		if !fn(s) {
			break
		}
	}
	releaseSelection(sel)
}

// Broadcast delivers p to the selected local sockets.
func (a *Adapter) Broadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	if a.rec != nil && adapter.Loggable(p, opts) {
		return a.broadcastLogged(p, opts)
	}
	sel := a.selectSockets(opts)
	for _, s := range *sel {
		s.Deliver(p, opts.Flags, nil)
	}
	releaseSelection(sel)
	return nil
}

// broadcastLogged logs p, with its offset, and delivers it; the log append
// and the selection are one step for RestoreSession (recovery.go).
func (a *Adapter) broadcastLogged(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	a.rec.gate.RLock()
	a.rec.logPacket(p, opts)
	sel := a.selectSockets(opts)
	a.rec.gate.RUnlock()
	for _, s := range *sel {
		s.Deliver(p, opts.Flags, nil)
	}
	releaseSelection(sel)
	return nil
}

// BroadcastWithAck delivers p to the selected local sockets, reports their
// number, then forwards each answer.
func (a *Adapter) BroadcastWithAck(p *adapter.Packet, opts adapter.BroadcastOptions, onClientCount func(int), onAck func([]parser.Raw)) error {
	sel := a.selectSockets(opts)
	n := len(*sel)
	ack := adapter.AckFunc(onAck)
	for _, s := range *sel {
		s.Deliver(p, opts.Flags, ack)
	}
	releaseSelection(sel)
	onClientCount(n)
	return nil
}

// ServerCount is 1: this node is alone.
func (a *Adapter) ServerCount(context.Context) (int, error) { return 1, nil }

// AddSockets makes the selected local sockets join rooms.
func (a *Adapter) AddSockets(_ context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	a.LocalSockets(opts, func(s adapter.Socket) bool {
		a.AddAll(s, rooms)
		return true
	})
	return nil
}

// DelSockets makes the selected local sockets leave rooms.
func (a *Adapter) DelSockets(_ context.Context, opts adapter.BroadcastOptions, rooms []string) error {
	a.LocalSockets(opts, func(s adapter.Socket) bool {
		for _, r := range rooms {
			a.Del(s.ID(), r)
		}
		return true
	})
	return nil
}

// DisconnectSockets disconnects the selected local sockets.
func (a *Adapter) DisconnectSockets(_ context.Context, opts adapter.BroadcastOptions, close bool) error {
	a.LocalSockets(opts, func(s adapter.Socket) bool {
		s.Disconnect(close)
		return true
	})
	return nil
}

// FetchSockets describes the selected local sockets.
func (a *Adapter) FetchSockets(_ context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketInfo, error) {
	var out []adapter.SocketInfo
	a.LocalSockets(opts, func(s adapter.Socket) bool {
		out = append(out, s.Info())
		return true
	})
	return out, nil
}

// AllRooms returns the local rooms.
func (a *Adapter) AllRooms(context.Context) ([]string, error) { return a.LocalRooms(), nil }

// ServerSideEmit has no other node to reach: it returns no responses.
func (a *Adapter) ServerSideEmit(context.Context, []json.RawMessage, bool) ([]json.RawMessage, error) {
	return []json.RawMessage{}, nil
}

// Close stops the recovery sweep timer and drops the sessions and the
// packet log; the adapter holds no outside resource.
func (a *Adapter) Close() error {
	if a.rec != nil {
		a.rec.close()
	}
	return nil
}
