package memory

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
)

// recovery keeps the sessions of disconnected sockets and the log of the
// packets broadcast in the namespace (Node's SessionAwareAdapter), bounded
// by the window, in count and in bytes.
//
// Exactly once across a restore: Broadcast holds gate for reading while it
// logs a packet and selects its recipients; RestoreSession holds it for
// writing while it reads the missed packets and joins the rooms. A packet
// is therefore either logged before the restore (it is among the missed
// packets, and its selection, made before the join, does not contain the
// socket) or logged after it (its selection, made after the join, contains
// the socket and it is delivered live). The server holds the restored
// socket's live deliveries until the missed packets are queued, so the
// order is kept too.
type recovery struct {
	opts adapter.RecoveryOptions

	gate sync.RWMutex // see above; taken before mu, member.mu and the shard locks

	mu        sync.Mutex
	closed    bool
	log       []logEntry // log[head:] is live, oldest first, consecutive seqs
	head      int
	firstSeq  uint64 // seq of log[head] (nextSeq when the log is empty)
	nextSeq   uint64
	logBytes  int64
	sessions  map[string]*sessEntry // by pid
	order     []*sessEntry          // persisted order, with taken entries left in place
	sessBytes int64
	timer     *time.Timer // one sweep timer per adapter, nil when idle
}

type logEntry struct {
	seq    uint64
	p      *adapter.Packet
	rooms  []string
	except []string
	at     time.Time
	size   int64
}

type sessEntry struct {
	s     *adapter.Session
	at    time.Time
	size  int64
	taken bool // restored or evicted: only a tombstone in order
}

func newRecovery(opts adapter.RecoveryOptions) *recovery {
	// Offsets start from the clock, so that an offset a client kept from an
	// earlier process is unlikely to name a packet of this one.
	seq := uint64(time.Now().UnixMilli()) << 16
	return &recovery{opts: opts, firstSeq: seq, nextSeq: seq, sessions: make(map[string]*sessEntry)}
}

func formatOffset(seq uint64) string { return strconv.FormatUint(seq, 36) }

func packetSize(p *adapter.Packet, opts adapter.BroadcastOptions) int64 {
	n := int64(len(p.Data)) + 96
	for _, a := range p.Attachments {
		n += int64(len(a))
	}
	for _, r := range opts.Rooms {
		n += int64(len(r)) + 16
	}
	for _, r := range opts.Except {
		n += int64(len(r)) + 16
	}
	return n
}

// logPacket gives p its offset and appends it to the log. The caller holds
// gate for reading.
func (r *recovery) logPacket(p *adapter.Packet, opts adapter.BroadcastOptions) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.nextSeq
	r.nextSeq++
	p.Data = adapter.AppendOffset(p.Data, formatOffset(seq))
	p.Seq = seq
	e := logEntry{seq: seq, p: p, rooms: opts.Rooms, except: opts.Except, at: now, size: packetSize(p, opts)}
	r.log = append(r.log, e)
	r.logBytes += e.size
	r.trimLocked(now)
	r.armLocked()
}

// trimLocked drops what expired or exceeds a bound, oldest first. The
// newest packet is kept even when it alone is over MaxPacketBytes, so that
// the offset the client gets for it stays valid for a while.
func (r *recovery) trimLocked(now time.Time) {
	threshold := now.Add(-r.opts.MaxDisconnectionDuration)
	for r.head < len(r.log) {
		e := &r.log[r.head]
		live := len(r.log) - r.head
		over := live > r.opts.MaxPackets || (r.logBytes > r.opts.MaxPacketBytes && live > 1)
		if !over && !e.at.Before(threshold) {
			break
		}
		r.logBytes -= e.size
		*e = logEntry{}
		r.head++
		r.firstSeq++
	}
	if r.head == len(r.log) {
		r.log, r.head = r.log[:0], 0
	} else if r.head > 64 && r.head > len(r.log)/2 {
		n := copy(r.log, r.log[r.head:])
		clear(r.log[n:])
		r.log, r.head = r.log[:n], 0
	}

	for len(r.order) > 0 {
		e := r.order[0]
		over := len(r.sessions) > r.opts.MaxSessions || r.sessBytes > r.opts.MaxSessionBytes
		if !e.taken && !over && !e.at.Before(threshold) {
			break
		}
		if !e.taken {
			r.dropLocked(e)
		}
		r.order[0] = nil
		r.order = r.order[1:]
	}
	// Tombstones of restored sessions are removed here when they outnumber
	// the live ones, so order stays within twice MaxSessions.
	if len(r.order) > 2*len(r.sessions)+64 {
		kept := make([]*sessEntry, 0, len(r.sessions))
		for _, e := range r.order {
			if !e.taken {
				kept = append(kept, e)
			}
		}
		r.order = kept
	}
}

func (r *recovery) dropLocked(e *sessEntry) {
	e.taken = true
	delete(r.sessions, e.s.PID)
	r.sessBytes -= e.size
}

// armLocked starts the sweep timer when something is kept and none runs:
// entries expire even when the namespace falls silent. One timer per
// adapter, stopped by Close.
func (r *recovery) armLocked() {
	if r.timer != nil || r.closed {
		return
	}
	if r.head == len(r.log) && len(r.sessions) == 0 {
		return
	}
	r.timer = time.AfterFunc(r.opts.MaxDisconnectionDuration/2+time.Millisecond, r.sweep)
}

func (r *recovery) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.closed {
		return
	}
	r.trimLocked(time.Now())
	r.armLocked()
}

func (r *recovery) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.log, r.head, r.logBytes = nil, 0, 0
	r.firstSeq = r.nextSeq
	r.sessions, r.order, r.sessBytes = map[string]*sessEntry{}, nil, 0
}

func (r *recovery) persist(s *adapter.Session) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	s.DataJSON = nil // the Go value is kept; DataBytes still counts its size
	if old := r.sessions[s.PID]; old != nil {
		r.dropLocked(old)
	}
	e := &sessEntry{s: s, at: now, size: s.Size()}
	r.sessions[s.PID] = e
	r.order = append(r.order, e)
	r.sessBytes += e.size
	r.trimLocked(now)
	r.armLocked()
}

// take removes and returns the session of pid and the packets after offset
// that it selects, when both are still kept. The caller holds gate for
// writing.
func (r *recovery) take(pid, offset string) (*adapter.Session, []*adapter.Packet, bool) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trimLocked(now)
	e := r.sessions[pid]
	if e == nil {
		return nil, nil, false
	}
	seq, err := strconv.ParseUint(offset, 36, 64)
	if err != nil || offset != formatOffset(seq) || seq < r.firstSeq || seq >= r.nextSeq {
		return nil, nil, false // the offset may be too old
	}
	var missed []*adapter.Packet
	for i := r.head + int(seq-r.firstSeq) + 1; i < len(r.log); i++ {
		if l := &r.log[i]; adapter.Selects(e.s.Rooms, l.rooms, l.except) {
			missed = append(missed, l.p)
		}
	}
	r.dropLocked(e)
	return e.s, missed, true
}

// PersistSession implements adapter.Recoverer.
func (a *Adapter) PersistSession(s *adapter.Session) {
	if a.rec != nil {
		a.rec.persist(s)
	}
}

// RestoreSession implements adapter.Recoverer.
// It restores under the lock that Broadcast takes to log and select, so no
// live delivery of a packet among the missed ones reaches the socket
// (Restored.Through is zero).
func (a *Adapter) RestoreSession(_ context.Context, pid, offset string, attach func(*adapter.Session) adapter.Socket) (adapter.Restored, bool) {
	if a.rec == nil {
		return adapter.Restored{}, false
	}
	a.rec.gate.Lock()
	defer a.rec.gate.Unlock()
	s, missed, ok := a.rec.take(pid, offset)
	if !ok {
		return adapter.Restored{}, false
	}
	a.AddAll(attach(s), s.Rooms)
	return adapter.Restored{Missed: missed}, true
}

// RecoveryStats reports what the adapter keeps for recovery: logged
// packets and their bytes, sessions and their bytes. For tests and
// monitoring.
func (a *Adapter) RecoveryStats() (packets int, packetBytes int64, sessions int, sessionBytes int64) {
	if a.rec == nil {
		return
	}
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	return len(a.rec.log) - a.rec.head, a.rec.logBytes, len(a.rec.sessions), a.rec.sessBytes
}
