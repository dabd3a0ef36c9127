package redis

import "github.com/ioswarm/ioswarm/adapter"

// Connection state recovery on one node: the sessions and the packet log
// are the local memory adapter's, so a client that comes back to the node
// it left is recovered; one that reaches another node gets a new session.
// (Node's @socket.io/redis-adapter recovers nothing: it extends the base
// Adapter, whose persistSession and restoreSession do nothing.)
//
// The wire towards other nodes does not change: Broadcast publishes the
// packet before the local memory adapter appends its offset (which it does
// to a copy of the data), so other nodes — Go or Node — never see one. A
// broadcast that arrives from another node is logged by the local memory
// adapter like a local one and gets a local offset, as Node's
// ClusterAdapter does with addOffsetIfNecessary on a received BROADCAST —
// including one to a single room no local socket is in any more
// (onBroadcast does not skip it): that room may be a waiting session's.

// PersistSession implements adapter.Recoverer.
func (a *Adapter) PersistSession(s *adapter.Session) { a.local.PersistSession(s) }

// RestoreSession implements adapter.Recoverer.
func (a *Adapter) RestoreSession(pid, offset string, attach func(*adapter.Session) adapter.Socket) ([]*adapter.Packet, bool) {
	return a.local.RestoreSession(pid, offset, attach)
}
