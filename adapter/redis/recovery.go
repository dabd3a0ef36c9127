package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
)

// Connection state recovery across the cluster. Node's classic Redis
// adapter recovers nothing; this one keeps in Redis what recovery needs, so
// that a client whose node stopped or died is recovered by any other node.
//
// Per namespace, under one hash tag (one Redis Cluster slot, so that one
// script reaches them all):
//   - the log, a stream of the logged broadcasts (adapter.Loggable, not
//     Local); an entry's id is the packet's offset. Trimmed, oldest first,
//     to MaxPackets entries, MaxPacketBytes and the window; the newest
//     entry stays, so that the offset a client got last remains valid;
//   - one hash per session (pid): owner (the uid of the adapter whose
//     socket it is), version, and state (sid, rooms, data as JSON). It is
//     written while the socket is connected — at connect, at each change of
//     rooms or data, with an expiry of the window plus two refresh periods
//     that the owner renews — so that a killed node loses nothing, and set
//     to expire after the window when the socket leaves;
//   - an index of the sessions by expiry, their sizes and their total,
//     which bound them to MaxSessions and MaxSessionBytes (the soonest to
//     expire goes first).
//
// Order. A logged broadcast is one script: XADD, then PUBLISH of the
// message with its offset appended. Every node — the sender's too —
// receives the logged broadcasts of a namespace on its one subscription
// connection, in log order, and delivers them to its sockets from there.
// Broadcast returns once the message is stored (the acknowledgement a
// sender may wait for) and delivered to this node's sockets (so the emits
// of one handler reach a socket in the order they were made).
//
// Restore, on any node: read the session; make the socket join its rooms,
// holding live deliveries; one script takes the session — if nobody
// changed it meanwhile — and reads the log after the client's offset; the
// missed packets are queued, then the held live ones the log read did not
// cover (adapter.Restored). A packet logged before the script is in what it
// read; one logged after reaches the socket live, because it joined
// before: each exactly once, in order.
//
// The wire towards Node nodes does not change: a logged broadcast's message
// is [uid, packet, opts, nonce, offset], and Node's adapter reads the first
// three. Node nodes never log: what they broadcast is delivered without an
// offset and is not recovered.

// recovery is the cluster recovery of one namespace's adapter; nil in the
// adapter when recovery is off.
type recovery struct {
	a    *Adapter
	opts adapter.RecoveryOptions

	logKey, logBytesKey string
	sendersKey          string
	sessPrefix          string // + pid
	indexKey, sizesKey  string
	sessBytesKey        string

	every   time.Duration // refresh period of the live sessions
	liveTTL time.Duration // expiry of a live session: window + 2 periods
	keyTTL  time.Duration // expiry of the log and index keys

	mu      sync.Mutex
	closed  bool
	nonce   uint64
	pending map[uint64]*pendingBroadcast // by nonce
	known   int                          // pending entries whose offset is known (seq set)
	live    map[string]struct{}          // pids of the sessions owned here
	timer   *time.Timer
}

// pendingBroadcast is a logged broadcast of this adapter on its way through
// Redis back to the local sockets.
type pendingBroadcast struct {
	p       *adapter.Packet
	opts    adapter.BroadcastOptions
	done    chan struct{} // closed once delivered to the local sockets, by whoever claimed it
	settled chan struct{} // closed once Redis answered (id or err set)
	claimed bool          // delivered (or being delivered) by someone
	id      string        // its offset, once logged
	seq     uint64        // offsetSeq(id), once logged
	err     error         // why it was not logged; set before settled is closed
}

func newRecovery(a *Adapter, opts adapter.RecoveryOptions) *recovery {
	k, n := a.f.opts.Key, a.name
	h := fnv.New32a()
	h.Write([]byte(k + "#" + n + "#"))
	tag := fmt.Sprintf("{%08x}", h.Sum32())
	every := min(max(opts.MaxDisconnectionDuration/4, 250*time.Millisecond), 30*time.Second)
	r := &recovery{
		a:            a,
		opts:         opts,
		logKey:       tag + k + "-log#" + n + "#",
		logBytesKey:  tag + k + "-log-bytes#" + n + "#",
		sendersKey:   tag + k + "-log-senders#" + n + "#",
		sessPrefix:   tag + k + "-session#" + n + "#",
		indexKey:     tag + k + "-sessions#" + n + "#",
		sizesKey:     tag + k + "-session-sizes#" + n + "#",
		sessBytesKey: tag + k + "-session-bytes#" + n + "#",
		every:        every,
		liveTTL:      opts.MaxDisconnectionDuration + 2*every,
		pending:      make(map[uint64]*pendingBroadcast),
		live:         make(map[string]struct{}),
	}
	r.keyTTL = r.liveTTL + opts.MaxDisconnectionDuration
	return r
}

// ---------------------------------------------------------------- offsets

// validOffset reports whether s is a stream id as the log writes them,
// "<ms>-<seq>".
func validOffset(s string) bool {
	dash := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-' && dash < 0 && i > 0:
			dash = i
		case c < '0' || c > '9':
			return false
		}
	}
	return dash > 0 && dash < len(s)-1 && dash <= 20 && len(s)-dash-1 <= 20
}

// offsetSeq maps an offset to adapter.Packet.Seq, in the same order: the
// milliseconds, then the sequence within them (Redis gives far fewer than
// 2^20 entries a millisecond).
func offsetSeq(off string) uint64 {
	for i := 0; i < len(off); i++ {
		if off[i] == '-' {
			ms, err1 := strconv.ParseUint(off[:i], 10, 44)
			seq, err2 := strconv.ParseUint(off[i+1:], 10, 64)
			if err1 != nil || err2 != nil {
				return 0
			}
			return ms<<20 | min(seq, 1<<20-1)
		}
	}
	return 0
}

// appendOffsetElement completes a stored message with its offset, the
// last element of what was published.
func appendOffsetElement(msg []byte, off string) []byte {
	out := make([]byte, 0, len(msg)+2+len(off))
	out = append(out, msg...)
	if len(off) < 32 {
		out = append(out, 0xa0|byte(len(off)))
	} else {
		out = append(out, 0xd9, byte(len(off)))
	}
	return append(out, off...)
}

// ---------------------------------------------------------------- scripts

// logScript logs a broadcast and publishes it with its offset. A sender's
// scripts run in the order of their nonces (one publisher per node, one
// pipeline at a time), and go-redis may send a pipeline again after a
// network error: a nonce already logged is not logged twice. KEYS: log,
// log bytes, senders. ARGV: channel, message without its offset,
// MaxPackets, MaxPacketBytes, window (ms), key expiry (ms), sender uid,
// nonce.
var logScript = goredis.NewScript(`
local last = redis.call('HGET', KEYS[3], ARGV[7])
if last then
  local sp = string.find(last, ' ')
  if tonumber(string.sub(last, 1, sp - 1)) >= tonumber(ARGV[8]) then return string.sub(last, sp + 1) end
end
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[7], ARGV[8] .. ' ' .. id)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
local total = redis.call('INCRBY', KEYS[2], #ARGV[2])
local len = redis.call('XLEN', KEYS[1])
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[5])
while len > 1 do
  local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local ms = tonumber(string.match(e[1], '^(%d+)'))
  if len <= tonumber(ARGV[3]) and total <= tonumber(ARGV[4]) and ms >= oldest then break end
  redis.call('XDEL', KEYS[1], e[1])
  total = redis.call('DECRBY', KEYS[2], #e[2][2])
  len = len - 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
local hdr
if #id < 32 then hdr = string.char(0xa0 + #id) else hdr = string.char(0xd9, #id) end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. hdr .. id)
return id
`)

// restoreScript takes a session that nobody changed since it was read and
// returns the log after the client's offset, which must still be in it.
// KEYS: session, log, index. ARGV: owner and version read, new owner,
// offset, live expiry (ms), MaxPackets, pid.
var restoreScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'o', 'v')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return false end
if #redis.call('XRANGE', KEYS[2], ARGV[4], ARGV[4]) == 0 then return false end
local es = redis.call('XRANGE', KEYS[2], '(' .. ARGV[4], '+', 'COUNT', tonumber(ARGV[6]) + 1)
if #es > tonumber(ARGV[6]) then return false end
redis.call('HSET', KEYS[1], 'o', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[3], 'XX', now + tonumber(ARGV[5]), ARGV[7])
return {1, es}
`)

// saveScript stores a session snapshot unless another adapter owns the
// session (0) or a newer snapshot is stored; then it keeps the sessions
// within their bounds, the soonest to expire going first (2 when that was
// this one). KEYS: session, index, sizes, total. ARGV: owner, version,
// state, expiry (ms), pid, MaxSessions, MaxSessionBytes, session key
// prefix, key expiry (ms).
const saveScriptSrc = `
local cur = redis.call('HMGET', KEYS[1], 'o', 'v')
if cur[1] and cur[1] ~= ARGV[1] then return 0 end
if cur[2] and tonumber(cur[2]) > tonumber(ARGV[2]) then return 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = tonumber(redis.call('GET', KEYS[4]) or '0')
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, p in ipairs(gone) do
  total = total - tonumber(redis.call('HGET', KEYS[3], p) or '0')
  redis.call('HDEL', KEYS[3], p)
end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local size = #ARGV[3] + #ARGV[5] + 64
total = total + size - tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0')
redis.call('HSET', KEYS[3], ARGV[5], size)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'v', ARGV[2], 's', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local kept = 1
while true do
  local n = redis.call('ZCARD', KEYS[2])
  if n == 0 then total = 0 break end
  if n <= tonumber(ARGV[6]) and total <= tonumber(ARGV[7]) then break end
  local p = redis.call('ZPOPMIN', KEYS[2])[1]
  total = total - tonumber(redis.call('HGET', KEYS[3], p) or '0')
  redis.call('HDEL', KEYS[3], p)
  redis.call('DEL', ARGV[8] .. p)
  if p == ARGV[5] then kept = 2 end
end
redis.call('SET', KEYS[4], total, 'PX', ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
redis.call('PEXPIRE', KEYS[3], ARGV[9])
return kept
`

var saveScript = goredis.NewScript(saveScriptSrc)

// discardScript deletes a session this adapter owns. KEYS: session,
// index, sizes, total. ARGV: owner, pid.
const discardScriptSrc = `
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
local n = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
redis.call('HDEL', KEYS[3], ARGV[2])
if n > 0 then redis.call('DECRBY', KEYS[4], n) end
return 1
`

// refreshScript renews the expiry of live sessions, and of the keys they
// rely on. KEYS: index, log, log bytes, sizes, total. ARGV: live expiry
// (ms), key expiry (ms), session key prefix, pids…
const refreshScriptSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 4, #ARGV do
  if redis.call('PEXPIRE', ARGV[3] .. ARGV[i], ARGV[1]) == 1 then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
  end
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
`

// refreshBatch is the most sessions renewed by one script.
const refreshBatch = 256

// ---------------------------------------------------------------- broadcasting

// errNotSent: the publisher dropped a script without sending it (Close
// gave up on Redis).
var errNotSent = fmt.Errorf("redis: not sent: %w", adapter.ErrClosed)

// errSessionMoved: a save found the session owned by another node (its
// client reconnected there; this socket is stale).
var errSessionMoved = errors.New("redis: session restored on another node")

// broadcast logs p and delivers it to the local sockets once it comes back
// from Redis (see the order above). It returns when both happened. When p
// cannot be logged, it is delivered here without an offset and broadcast
// returns the error. When Redis did not answer within RequestsTimeout,
// broadcast returns an *adapter.TimeoutError, and the answer decides later:
// logged, p is delivered when it comes back; refused, it is delivered here.
func (r *recovery) broadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	a := r.a
	pb := &pendingBroadcast{p: p, opts: opts, done: make(chan struct{}), settled: make(chan struct{})}
	if err := r.log(pb); err != nil {
		_ = a.local.Broadcast(p, opts) // never logged: delivered here, without an offset
		return err
	}
	timer := time.NewTimer(a.f.opts.RequestsTimeout)
	defer timer.Stop()
	expired := false
	select {
	case <-pb.settled:
		if pb.err != nil {
			return pb.err // delivered here if it surely was not published
		}
	case <-timer.C:
		expired = true
	}
	if !expired {
		select {
		case <-pb.done:
			return nil
		case <-timer.C:
		}
	}
	r.mu.Lock()
	switch {
	case pb.claimed:
		r.mu.Unlock()
		<-pb.done // being delivered now
		return pb.err
	case pb.id == "":
		// No answer yet: the answer decides (logged and back: delivered
		// then; refused: delivered here).
		r.mu.Unlock()
		return &adapter.TimeoutError{Message: "timeout reached while logging a broadcast for recovery"}
	}
	// Stored, but not back: the subscription connection is down, or was
	// when Redis published it. Delivered here, once; the entry stays as a
	// tombstone for the message, should it come, until a newer one came.
	pb.claimed = true
	r.mu.Unlock()
	p.Data = adapter.AppendOffset(p.Data, pb.id)
	p.Seq = pb.seq
	_ = a.local.Broadcast(p, opts)
	close(pb.done)
	return nil
}

// logged receives the answer of logScript, on the publisher's goroutine.
// An error Redis answered, or a script never sent (dropped at Close, no
// connection to Redis), means the broadcast was not published: it is
// delivered here without an offset. Any other error (the connection broke,
// the context ended) leaves it unknown: it is forgotten, and delivered as
// another node's broadcast if its message comes — a copy here could be a
// duplicate.
func (r *recovery) logged(nonce uint64, pb *pendingBroadcast, c goredis.Cmder) {
	id, err := c.(*goredis.Cmd).Text()
	var (
		re goredis.Error
		oe *net.OpError
	)
	notPublished := err != nil && (errors.Is(err, errNotSent) || errors.As(err, &re) ||
		errors.As(err, &oe) && oe.Op == "dial")
	r.mu.Lock()
	deliver := false
	if err == nil {
		pb.id, pb.seq = id, offsetSeq(id)
		if r.pending[nonce] == pb {
			r.known++
		}
	} else {
		pb.err = fmt.Errorf("redis: log broadcast for recovery: %w", err)
		r.dropLocked(nonce, pb)
		deliver = notPublished && !pb.claimed
		pb.claimed = true
	}
	close(pb.settled)
	r.mu.Unlock()
	if deliver {
		_ = r.a.local.Broadcast(pb.p, pb.opts)
		close(pb.done)
	}
}

// dropLocked removes a pending broadcast.
func (r *recovery) dropLocked(nonce uint64, pb *pendingBroadcast) {
	if r.pending[nonce] == pb {
		delete(r.pending, nonce)
		if pb.seq != 0 {
			r.known--
		}
	}
}

// log queues logScript for a broadcast and registers it as pending. The
// nonce is drawn and the
// script queued under one lock: a sender's scripts reach Redis in the order
// of their nonces, which logScript relies on to drop a repeated one.
func (r *recovery) log(pb *pendingBroadcast) error {
	a := r.a
	msg, err := encodeLoggedBroadcast(a.uid, a.name, pb.p, pb.opts)
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	ch := a.bcastChannel
	if len(pb.opts.Rooms) == 1 {
		ch += pb.opts.Rooms[0] + "#"
	}
	if len(msg)+len(ch)+9 > a.f.opts.MaxMessageBytes {
		return fmt.Errorf("redis: publish to %s: %d bytes > MaxMessageBytes (%d): %w",
			ch, len(msg), a.f.opts.MaxMessageBytes, ErrMessageTooLarge)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || a.isClosed() {
		return adapter.ErrClosed
	}
	if len(r.pending) >= 2*a.f.opts.MaxPendingPublishes {
		// Redis is that far behind (or its messages do not come back):
		// this node's clients get the broadcast without an offset.
		return fmt.Errorf("redis: %d broadcasts waiting to be logged: %w", len(r.pending), ErrQueueFull)
	}
	r.nonce++
	nonce := r.nonce
	msg = appendNonce(msg, nonce)
	err = a.f.runScript(logScript, []string{r.logKey, r.logBytesKey, r.sendersKey},
		[]any{ch, msg, r.opts.MaxPackets, r.opts.MaxPacketBytes,
			r.opts.MaxDisconnectionDuration.Milliseconds(), r.keyTTL.Milliseconds(), a.uid, nonce},
		len(msg)+len(ch), func(c goredis.Cmder) { r.logged(nonce, pb, c) })
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	r.pending[nonce] = pb
	return nil
}

// onLogged delivers a logged broadcast that came through the subscription:
// this adapter's own — the packet it holds — or another node's.
func (r *recovery) onLogged(b *inBroadcast) {
	seq := offsetSeq(b.offset)
	var pb *pendingBroadcast
	r.mu.Lock()
	if r.known > 0 {
		// The messages come in log order: a pending broadcast logged
		// before this one whose message has not come never will (it was
		// published while the subscription was down); one delivered by
		// the fallback needs its tombstone no more.
		for n, e := range r.pending {
			if e.seq != 0 && e.seq < seq {
				r.dropLocked(n, e)
			}
		}
	}
	if b.own && b.nonce != 0 {
		if pb = r.pending[b.nonce]; pb != nil {
			r.dropLocked(b.nonce, pb)
			if pb.claimed {
				r.mu.Unlock()
				return // delivered by the fallback
			}
			pb.claimed = true
		}
	}
	r.mu.Unlock()
	if pb != nil {
		// Nobody has delivered it yet: the offset goes on the packet itself.
		pb.p.Data = adapter.AppendOffset(pb.p.Data, b.offset)
		pb.p.Seq = seq
		_ = r.a.local.Broadcast(pb.p, pb.opts)
		close(pb.done)
		return
	}
	p := adapter.NewPacket(r.a.name, adapter.AppendOffset(b.data, b.offset), b.atts)
	p.Seq = seq
	_ = r.a.local.Broadcast(p, b.opts)
}

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

func (r *recovery) saveArgs(s *adapter.Session, state []byte, ttl time.Duration) ([]string, []any) {
	return []string{r.sessPrefix + s.PID, r.indexKey, r.sizesKey, r.sessBytesKey},
		[]any{r.a.uid, s.Version, state, ttl.Milliseconds(), s.PID,
			r.opts.MaxSessions, r.opts.MaxSessionBytes, r.sessPrefix, r.keyTTL.Milliseconds()}
}

// save stores the session of a connected socket and waits for Redis.
func (r *recovery) save(ctx context.Context, s *adapter.Session) error {
	state, err := r.state(s)
	if err != nil {
		return err
	}
	ctx, cancel := r.a.f.ioContextFrom(ctx)
	defer cancel()
	keys, args := r.saveArgs(s, state, r.liveTTL)
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

// saveAsync queues a save; with ttl the window, it is the session of a
// socket that left.
func (r *recovery) saveAsync(s *adapter.Session, ttl time.Duration) {
	state, err := r.state(s)
	if err != nil {
		r.a.f.log.Warn("redis: session not stored for recovery", "nsp", r.a.name, "err", err)
		return
	}
	keys, args := r.saveArgs(s, state, ttl)
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
	a := r.a
	if !validOffset(offset) || pid == "" || len(pid) > 128 {
		return adapter.Restored{}, false
	}
	ctx, cancel := a.f.ioContextFrom(ctx)
	defer cancel()
	key := r.sessPrefix + pid
	vals, err := a.f.client.HMGet(ctx, key, "o", "v", "s").Result()
	if err != nil || len(vals) != 3 {
		a.f.log.Debug("redis: read session", "nsp", a.name, "err", err)
		return adapter.Restored{}, false
	}
	owner, ok1 := vals[0].(string)
	version, ok2 := vals[1].(string)
	state, ok3 := vals[2].(string)
	var st sessionState
	if !ok1 || !ok2 || !ok3 || json.Unmarshal([]byte(state), &st) != nil || st.SID == "" {
		return adapter.Restored{}, false // none, or expired
	}
	if a.local.SocketRooms(st.SID) != nil {
		// Its socket is still here: this node has not seen its connection
		// end yet. A new session is safer than two sockets of one id.
		return adapter.Restored{}, false
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
	res, err := restoreScript.Run(ctx, a.f.client, []string{key, r.logKey, r.indexKey},
		owner, version, a.uid, offset, r.liveTTL.Milliseconds(), r.opts.MaxPackets, pid).Slice()
	if err != nil || len(res) != 2 {
		if err != nil && !errors.Is(err, goredis.Nil) {
			a.f.log.Debug("redis: restore session", "nsp", a.name, "err", err)
		}
		a.local.DelAll(sess.SID)
		return adapter.Restored{}, false
	}
	entries, _ := res[1].([]any)
	out := adapter.Restored{Through: offsetSeq(offset)}
	for _, e := range entries {
		id, msg, ok := streamEntry(e)
		if !ok {
			continue
		}
		out.Through = offsetSeq(id)
		b, err := decodeBroadcastFrom(appendOffsetElement([]byte(msg), id), a.uid, true)
		if err != nil || b.nsp != a.name || !adapter.Selects(sess.Rooms, b.opts.Rooms, b.opts.Except) {
			continue
		}
		p := adapter.NewPacket(a.name, adapter.AppendOffset(b.data, id), b.atts)
		p.Seq = offsetSeq(id)
		out.Missed = append(out.Missed, p)
	}
	r.track(pid, true)
	return out, true
}

// streamEntry reads an entry of XRANGE's reply: [id, ["m", message]].
func streamEntry(e any) (id, msg string, ok bool) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return "", "", false
	}
	id, _ = pair[0].(string)
	fields, _ := pair[1].([]any)
	if len(fields) != 2 || !validOffset(id) {
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
	a.rec.saveAsync(s, a.rec.opts.MaxDisconnectionDuration)
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
			a.rec.saveAsync(sess, a.rec.liveTTL)
		}
	}
}
