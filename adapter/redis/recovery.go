package redis

import (
	"fmt"
	"hash/fnv"
	"sync"
	"time"

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
//   - an index of the sessions of sockets that left, by expiry, their sizes
//     and their total, which bound them to MaxSessions and MaxSessionBytes
//     (the soonest to expire goes first); live sessions are bounded by the
//     nodes' connections, each by MaxSessionBytes.
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
	done    chan struct{} // closed by whoever claimed it, once delivered to the local sockets (at once when it delivers nothing)
	settled chan struct{} // closed once Redis answered (id or err set)
	claimed bool          // delivered (or being delivered) by someone
	id      string        // its offset, once logged
	seq     uint64        // cluster.OffsetSeq(id), once logged
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
