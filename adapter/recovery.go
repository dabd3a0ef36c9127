package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Connection state recovery (Node's connectionStateRecovery): a socket
// disconnected for a transport reason leaves a Session behind, and a client
// that comes back in time with the session's private id (pid) and the
// offset of the last packet it received gets its socket back — same id,
// rooms and data — with the packets it missed. The adapter keeps the
// sessions and a log of the packets it broadcast, each with an offset that
// travels to the client as the last argument of the EVENT.

// RecoveryOptions are what an adapter needs to keep sessions and the
// packet log. Every bound applies per namespace; the oldest entries go
// first when one is reached.
type RecoveryOptions struct {
	// MaxDisconnectionDuration is how long a session and a logged packet
	// are kept (Node's maxDisconnectionDuration).
	MaxDisconnectionDuration time.Duration
	// MaxSessions and MaxSessionBytes bound the sessions kept.
	MaxSessions     int
	MaxSessionBytes int64
	// MaxPackets and MaxPacketBytes bound the packet log.
	MaxPackets     int
	MaxPacketBytes int64
}

// RecoveryNamespace is implemented by a Namespace whose server has
// connection state recovery on; adapters that can recover sessions check
// for it when they are created.
type RecoveryNamespace interface {
	Namespace
	// Recovery returns the options, nil when recovery is off.
	Recovery() *RecoveryOptions
}

// Session is what is kept of a socket for recovery (Node's Session: sid,
// pid, rooms, data).
type Session struct {
	SID   string
	PID   string
	Rooms []string
	// Data is the socket's data: the Go value on the node that made the
	// session; what decoding DataJSON gives (map[string]any, float64, …)
	// on a node that read it from a store.
	Data any
	// DataJSON is Data in its JSON form (as Node would write it), what a
	// store outside the node keeps; DataBytes is its size, counted in the
	// session budget.
	DataJSON  json.RawMessage
	DataBytes int64
	// Version orders the snapshots of one socket's session: a store keeps
	// the one with the highest version it was given, whatever the order
	// in which they reach it.
	Version uint64
}

// Size is what the session counts against MaxSessionBytes.
func (s *Session) Size() int64 {
	n := int64(len(s.SID)+len(s.PID)) + s.DataBytes + 64
	for _, r := range s.Rooms {
		n += int64(len(r)) + 16
	}
	return n
}

// Recoverer is implemented by adapters that support connection state
// recovery (the in-memory adapter on one node; the Redis adapter across the
// cluster). With recovery on, their Broadcast logs every EVENT that has no
// ack id and is not volatile (Loggable), appends its offset to the packet's
// Data and sets its Seq, before the first delivery.
type Recoverer interface {
	// PersistSession keeps s, the session of a socket that disconnected
	// for a reason that allows recovery, until MaxDisconnectionDuration
	// has passed or a bound pushes it out. It does not wait for a store.
	PersistSession(s *Session)
	// RestoreSession takes the session of pid when it has not expired and
	// offset is still in the packet log; otherwise it returns false. It
	// calls attach with the session (attach builds the socket and must not
	// call into the adapter), makes the socket join the session's rooms,
	// and returns the packets logged after offset that the session's rooms
	// select, oldest first. An adapter may call attach before it knows
	// whether the restore succeeds: on failure it has taken the socket out
	// of the rooms again, and the caller drops it. It may call attach more
	// than once (a session that changed under it is read again); the socket
	// of the last call is the one.
	//
	// Each missed packet reaches the socket exactly once, as long as the
	// socket holds its live deliveries until it has queued the returned
	// packets, then drops the held ones that Restored.Covers.
	RestoreSession(ctx context.Context, pid, offset string, attach func(*Session) Socket) (Restored, bool)
}

// Restored is what a successful RestoreSession returns.
type Restored struct {
	// Missed are the packets the session missed, oldest first.
	Missed []*Packet
	// Through is the Seq of the newest packet the restore read from the
	// log, zero when the adapter keeps live deliveries of older packets
	// from the socket by itself (the in-memory adapter restores under a
	// lock that Broadcast takes).
	Through uint64
}

// Covers reports whether a live delivery that reached the socket during the
// restore is one the restore read from the log — among Missed if the
// session selects it — and is to be dropped.
func (r Restored) Covers(p *Packet) bool {
	return r.Through != 0 && p.Seq != 0 && p.Seq <= r.Through
}

// SessionStore is implemented by adapters that keep sessions outside the
// node (the Redis adapter), so that a socket whose node died — stopped or
// killed — is recovered by another node. The server then stores the
// session of every connected socket, not only of those that left.
type SessionStore interface {
	Recoverer
	// SaveSession stores the session of a connected socket and returns
	// once it is stored: the server calls it at connect, before the
	// CONNECT reply, and after each change of the socket's rooms or data,
	// before the call that changed them returns.
	SaveSession(ctx context.Context, s *Session) error
	// DiscardSession forgets the session of a socket that left for a
	// reason that does not allow recovery. It does not wait.
	DiscardSession(pid string)
}

// SessionSocket is implemented by the sockets of a server with recovery
// on: a SessionStore asks a socket whose rooms it changed itself
// (AddSockets, DelSockets, from any node) for its session.
type SessionSocket interface {
	Socket
	// Session returns a new snapshot of the socket's session, nil when
	// the socket has none.
	Session() *Session
}

// Loggable reports whether a broadcast is kept in the packet log and gets
// an offset: as on Node, every EVENT without an ack id that is not
// volatile.
func Loggable(p *Packet, opts BroadcastOptions) bool {
	return !p.HasID && !opts.Flags.Volatile
}

// AppendOffset returns data, a JSON array, with off as one more string
// element, as Node appends a packet's offset to its arguments; data itself
// is not modified (other recipients may hold the same bytes).
func AppendOffset(data json.RawMessage, off string) json.RawMessage {
	end := bytes.LastIndexByte(data, ']')
	if end < 0 {
		return data
	}
	out := make([]byte, 0, end+len(off)+4)
	out = append(out, data[:end]...)
	if len(bytes.TrimSpace(data[:end])) > 1 { // not "["
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, off...)
	out = append(out, '"', ']')
	return out
}

// Selects reports whether a logged broadcast to rooms, except the
// except-rooms, is one a session in sessionRooms missed (Node's
// shouldIncludePacket): a broadcast to everyone or to one of its rooms, and
// to none of the rooms it is in.
func Selects(sessionRooms, rooms, except []string) bool {
	included := len(rooms) == 0
	for _, r := range sessionRooms {
		if !included && slices.Contains(rooms, r) {
			included = true
		}
		if slices.Contains(except, r) {
			return false
		}
	}
	return included
}
