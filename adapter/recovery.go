package adapter

import "time"

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

// Session is what is kept of a socket disconnected for a reason that allows
// recovery (Node's Session: sid, pid, rooms, data).
type Session struct {
	SID   string
	PID   string
	Rooms []string
	// Data is the socket's data, kept as the Go value on this node.
	Data any
	// DataBytes is the size of Data as JSON, counted in the session budget.
	DataBytes int64
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
// recovery (the in-memory adapter, and the Redis adapter for clients that
// come back to the same node). With recovery on, their Broadcast logs
// every EVENT that has no ack id and is not volatile and appends its offset
// to the packet's Data, before the first delivery.
type Recoverer interface {
	// PersistSession keeps s until MaxDisconnectionDuration has passed or
	// a bound pushes it out.
	PersistSession(s *Session)
	// RestoreSession takes the session of pid when it has not expired and
	// offset is still in the packet log; otherwise it returns false and
	// changes nothing. On success it calls attach with the session (attach
	// builds the socket and must not call into the adapter), makes the
	// socket join the session's rooms, and returns the packets logged after
	// offset that the session's rooms select, oldest first.
	//
	// It is atomic with respect to Broadcast: a packet logged after the
	// returned ones is delivered to the socket live, one logged before is
	// among them and not delivered live — each missed packet reaches the
	// socket exactly once, as long as the socket holds its live deliveries
	// until it has queued the returned packets.
	RestoreSession(pid, offset string, attach func(*Session) Socket) (missed []*Packet, ok bool)
}

// Loggable reports whether a broadcast is kept in the packet log and gets
// an offset: as on Node, every EVENT without an ack id that is not
// volatile.
func Loggable(p *Packet, opts BroadcastOptions) bool {
	return !p.HasID && !opts.Flags.Volatile
}
