package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// Sessions in Redis: stored while sockets live, renewed, restored on any
// node (recovery.go).

// ---------------------------------------------------------------- sessions

// sessionState is a session's state as stored.
type sessionState struct {
	SID   string          `json:"sid"`
	Rooms []string        `json:"rooms"`
	Data  json.RawMessage `json:"data"`
}

func (r *recovery) state(s *adapter.Session) ([]byte, error) {
	data := s.DataJSON
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	b, err := json.Marshal(sessionState{s.SID, s.Rooms, data})
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > r.opts.MaxSessionBytes {
		return nil, fmt.Errorf("redis: session of %s: %d bytes > MaxSessionBytes (%d)", s.SID, len(b), r.opts.MaxSessionBytes)
	}
	return b, nil
}

// saveArgs are saveScript's keys and arguments: a live session (expiring
// after liveTTL, renewed) or one of a socket that left (the window).
func (r *recovery) saveArgs(s *adapter.Session, state []byte, live bool) ([]string, []any) {
	ttl, flag := r.opts.MaxDisconnectionDuration, "0"
	if live {
		ttl, flag = r.liveTTL, "1"
	}
	return []string{r.sessPrefix + s.PID, r.indexKey, r.sizesKey, r.sessBytesKey},
		[]any{r.a.uid, s.Version, state, ttl.Milliseconds(), s.PID,
			r.opts.MaxSessions, r.opts.MaxSessionBytes, r.sessPrefix, r.keyTTL.Milliseconds(), flag}
}

// save stores the session of a connected socket and waits for Redis.
func (r *recovery) save(ctx context.Context, s *adapter.Session) error {
	state, err := r.state(s)
	if err != nil {
		return err
	}
	ctx, cancel := r.a.f.ioContextFrom(ctx)
	defer cancel()
	keys, args := r.saveArgs(s, state, true)
	res, err := saveScript.Run(ctx, r.a.f.client, keys, args...).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redis: store session: %w", err)
	case res == 0:
		return errSessionMoved
	case res == 2:
		return fmt.Errorf("redis: session of %s pushed out by MaxSessions or MaxSessionBytes", s.SID)
	}
	r.track(s.PID, true)
	return nil
}

// saveAsync queues a save: of a live session, or of one whose socket left.
func (r *recovery) saveAsync(s *adapter.Session, live bool) {
	state, err := r.state(s)
	if err != nil {
		r.a.f.log.Warn("redis: session not stored for recovery", "nsp", r.a.name, "err", err)
		return
	}
	keys, args := r.saveArgs(s, state, live)
	r.a.f.command(saveScriptSrc, keys, args, len(state))
}

func (r *recovery) track(pid string, live bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if !live {
		delete(r.live, pid)
		return
	}
	r.live[pid] = struct{}{}
	if r.timer == nil {
		r.timer = time.AfterFunc(r.every, r.refresh)
	}
}

// refresh renews the expiry of the sessions of the sockets connected here,
// every period while there are some.
func (r *recovery) refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.closed || len(r.live) == 0 {
		return
	}
	keys := []string{r.indexKey, r.logKey, r.logBytesKey, r.sizesKey, r.sessBytesKey}
	args := make([]any, 0, 3+refreshBatch)
	flush := func() {
		if len(args) > 3 {
			r.a.f.command(refreshScriptSrc, keys, args, 24*len(args))
		}
		args = append(args[:0:0], r.liveTTL.Milliseconds(), r.keyTTL.Milliseconds(), r.sessPrefix)
	}
	flush()
	for pid := range r.live {
		args = append(args, pid)
		if len(args) == 3+refreshBatch {
			flush()
		}
	}
	flush()
	r.timer = time.AfterFunc(r.every, r.refresh)
}

func (r *recovery) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	// Broadcasts waiting for their message return; it is stored.
	for n, pb := range r.pending {
		if !pb.claimed {
			pb.claimed = true
			close(pb.done)
		}
		delete(r.pending, n)
	}
	r.known = 0
	r.live = map[string]struct{}{}
}

// ---------------------------------------------------------------- restoring

func (r *recovery) restore(ctx context.Context, pid, offset string, attach func(*adapter.Session) adapter.Socket) (adapter.Restored, bool) {
	if !cluster.ValidOffset(offset) || pid == "" || len(pid) > 128 {
		return adapter.Restored{}, false
	}
	ctx, cancel := r.a.f.ioContextFrom(ctx)
	defer cancel()
	// The session may change between the read and the take: its former
	// node persists it as it shuts down, while the client is already here.
	// Read it again then (a few times: the changes are the old socket's
	// last ones).
	for range 3 {
		out, ok, changed := r.tryRestore(ctx, pid, offset, attach)
		if !changed {
			return out, ok
		}
	}
	return adapter.Restored{}, false
}

// afterRestoreRead, when set (by tests only), runs between the read of a
// session and its take.
var afterRestoreRead func(pid string)

// tryRestore is one attempt of restore; changed when the session changed
// between its read and its take (nothing is restored then).
func (r *recovery) tryRestore(ctx context.Context, pid, offset string, attach func(*adapter.Session) adapter.Socket) (out adapter.Restored, ok, changed bool) {
	a := r.a
	key := r.sessPrefix + pid
	vals, err := a.f.client.HMGet(ctx, key, "o", "v", "s").Result()
	if err != nil || len(vals) != 3 {
		a.f.log.Debug("redis: read session", "nsp", a.name, "err", err)
		return out, false, false
	}
	owner, ok1 := vals[0].(string)
	version, ok2 := vals[1].(string)
	state, ok3 := vals[2].(string)
	var st sessionState
	if !ok1 || !ok2 || !ok3 || json.Unmarshal([]byte(state), &st) != nil || st.SID == "" {
		return out, false, false // none, or expired
	}
	if a.local.SocketRooms(st.SID) != nil {
		// Its socket is still here: this node has not seen its connection
		// end yet. A new session is safer than two sockets of one id.
		return out, false, false
	}
	ver, _ := strconv.ParseUint(version, 10, 64)
	sess := &adapter.Session{SID: st.SID, PID: pid, Rooms: st.Rooms, DataJSON: st.Data,
		DataBytes: int64(len(st.Data)), Version: ver}
	if err := json.Unmarshal(st.Data, &sess.Data); err != nil {
		sess.Data = nil
	}
	if sess.Data == nil {
		sess.Data = map[string]any{}
	}

	a.local.AddAll(attach(sess), sess.Rooms)
	if afterRestoreRead != nil {
		afterRestoreRead(pid)
	}
	v, err := restoreScript.Run(ctx, a.f.client, []string{key, r.logKey, r.indexKey, r.sizesKey, r.sessBytesKey},
		owner, version, a.uid, offset, r.liveTTL.Milliseconds(), r.opts.MaxPackets, pid).Result()
	res, _ := v.([]any)
	if err != nil || len(res) != 2 {
		if err != nil && !errors.Is(err, goredis.Nil) {
			a.f.log.Debug("redis: restore session", "nsp", a.name, "err", err)
		}
		a.local.DelAll(sess.SID)
		n, _ := v.(int64)
		return out, false, err == nil && n == 0
	}
	entries, _ := res[1].([]any)
	out.Through = cluster.OffsetSeq(offset)
	for _, e := range entries {
		id, msg, ok := streamEntry(e)
		if !ok {
			continue
		}
		out.Through = cluster.OffsetSeq(id)
		b, err := decodeBroadcastFrom(appendOffsetElement([]byte(msg), id), a.uid, true)
		if err != nil || b.nsp != a.name || !adapter.Selects(sess.Rooms, b.opts.Rooms, b.opts.Except) {
			continue
		}
		p := adapter.NewPacket(a.name, adapter.AppendOffset(b.data, id), b.atts)
		p.Seq = cluster.OffsetSeq(id)
		out.Missed = append(out.Missed, p)
	}
	r.track(pid, true)
	return out, true, false
}

// streamEntry reads an entry of XRANGE's reply: [id, ["m", message]].
func streamEntry(e any) (id, msg string, ok bool) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return "", "", false
	}
	id, _ = pair[0].(string)
	fields, _ := pair[1].([]any)
	if len(fields) != 2 || !cluster.ValidOffset(id) {
		return "", "", false
	}
	msg, ok = fields[1].(string)
	return id, msg, ok
}

// ---------------------------------------------------------------- adapter.SessionStore

var _ adapter.SessionStore = (*Adapter)(nil)

// PersistSession implements adapter.Recoverer: the session of a socket that
// left stays in Redis for the window (queued; it never waits).
func (a *Adapter) PersistSession(s *adapter.Session) {
	if a.rec == nil {
		return
	}
	a.rec.track(s.PID, false)
	a.rec.saveAsync(s, false)
}

// SaveSession implements adapter.SessionStore: it stores the session of a
// connected socket and waits for Redis (RequestsTimeout at most).
func (a *Adapter) SaveSession(ctx context.Context, s *adapter.Session) error {
	if a.rec == nil {
		return nil
	}
	return a.rec.save(ctx, s)
}

// DiscardSession implements adapter.SessionStore (queued).
func (a *Adapter) DiscardSession(pid string) {
	if a.rec == nil {
		return
	}
	r := a.rec
	r.track(pid, false)
	a.f.command(discardScriptSrc, []string{r.sessPrefix + pid, r.indexKey, r.sizesKey, r.sessBytesKey},
		[]any{a.uid, pid}, len(pid))
}

// RestoreSession implements adapter.Recoverer: it finds the session in
// Redis, wherever the socket was; see the order above.
func (a *Adapter) RestoreSession(ctx context.Context, pid, offset string, attach func(*adapter.Session) adapter.Socket) (adapter.Restored, bool) {
	if a.rec == nil {
		return adapter.Restored{}, false
	}
	return a.rec.restore(ctx, pid, offset, attach)
}

// changeRooms runs change, which makes the local sockets that opts
// selects join or leave rooms (AddSockets, DelSockets, asked by this node or
// another), and queues their sessions: nobody waits for such a change.
func (a *Adapter) changeRooms(opts adapter.BroadcastOptions, change func()) {
	if a.rec == nil {
		change()
		return
	}
	var socks []adapter.SessionSocket
	a.local.LocalSockets(opts, func(s adapter.Socket) bool {
		if ss, ok := s.(adapter.SessionSocket); ok {
			socks = append(socks, ss)
		}
		return true
	})
	change()
	for _, s := range socks {
		if sess := s.Session(); sess != nil {
			a.rec.saveAsync(sess, true)
		}
	}
}
