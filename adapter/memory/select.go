package memory

import (
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
)

// Selections are pooled so that a broadcast allocates nothing per
// recipient: the slice keeps its capacity from one broadcast to the next.
var (
	selectionPool = sync.Pool{New: func() any { s := make([]adapter.Socket, 0, 64); return &s }}
	setPool       = sync.Pool{New: func() any { return make(map[string]struct{}) }}
)

func releaseSelection(sel *[]adapter.Socket) {
	clear(*sel)
	*sel = (*sel)[:0]
	selectionPool.Put(sel)
}

// selectSockets collects the local sockets chosen by opts: the union of
// opts.Rooms (all sockets when empty) minus every socket in opts.Except,
// each once. Locks are held only while copying.
func (a *Adapter) selectSockets(opts adapter.BroadcastOptions) *[]adapter.Socket {
	sel := selectionPool.Get().(*[]adapter.Socket)
	out := *sel

	var except map[string]struct{}
	if len(opts.Except) > 0 {
		except = setPool.Get().(map[string]struct{})
		for _, room := range opts.Except {
			rs := &a.rooms[shard(room)]
			rs.mu.RLock()
			for id := range rs.m[room] {
				except[id] = struct{}{}
			}
			rs.mu.RUnlock()
			if a.ownRoom(room) != nil {
				except[room] = struct{}{}
			}
		}
	}
	excluded := func(id string) bool {
		if except == nil {
			return false
		}
		_, ok := except[id]
		return ok
	}

	switch len(opts.Rooms) {
	case 0:
		for i := range a.socks {
			sh := &a.socks[i]
			sh.mu.RLock()
			for id, m := range sh.m {
				if !excluded(id) {
					out = append(out, m.sock)
				}
			}
			sh.mu.RUnlock()
		}
	case 1:
		room := opts.Rooms[0]
		rs := &a.rooms[shard(room)]
		rs.mu.RLock()
		for id, m := range rs.m[room] {
			if !excluded(id) {
				out = append(out, m.sock)
			}
		}
		rs.mu.RUnlock()
		if m := a.ownRoom(room); m != nil && !excluded(room) {
			out = append(out, m.sock)
		}
	default:
		seen := setPool.Get().(map[string]struct{})
		for _, room := range opts.Rooms {
			rs := &a.rooms[shard(room)]
			rs.mu.RLock()
			for id, m := range rs.m[room] {
				if _, dup := seen[id]; dup || excluded(id) {
					continue
				}
				seen[id] = struct{}{}
				out = append(out, m.sock)
			}
			rs.mu.RUnlock()
			if m := a.ownRoom(room); m != nil {
				if _, dup := seen[room]; !dup && !excluded(room) {
					seen[room] = struct{}{}
					out = append(out, m.sock)
				}
			}
		}
		clear(seen)
		setPool.Put(seen)
	}
	if except != nil {
		clear(except)
		setPool.Put(except)
	}
	*sel = out
	return sel
}
