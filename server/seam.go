package server

import (
	"encoding/json"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/parser"
)

// The adapter seam: what an adapter needs of a namespace and of its sockets
// (adapter.Namespace, adapter.Socket) is implemented by these views of the
// server's own types, so that the plumbing (delivering a broadcast packet,
// running server-side listeners, drawing ack ids) is not part of the
// Namespace and Socket the application sees. A view is the same pointer
// under another type: converting costs nothing and allocates nothing.

// nsSeam is a Namespace as its adapter sees it.
type nsSeam Namespace

// sockSeam is a Socket as its adapter sees it.
type sockSeam Socket

var (
	_ adapter.Namespace     = (*nsSeam)(nil)
	_ adapter.SessionSocket = (*sockSeam)(nil)
)

func (n *Namespace) seam() *nsSeam { return (*nsSeam)(n) }
func (s *Socket) seam() *sockSeam  { return (*sockSeam)(s) }

// socketOf returns the Socket behind an adapter's socket; nil for a socket
// of another server (an adapter shared by mistake).
func socketOf(s adapter.Socket) *Socket {
	if v, ok := s.(*sockSeam); ok {
		return (*Socket)(v)
	}
	return nil
}

// Name implements adapter.Namespace.
func (n *nsSeam) Name() string { return n.name }

// NextAckID implements adapter.Namespace: ack ids of broadcasts arriving
// from other nodes come from the namespace's counter.
func (n *nsSeam) NextAckID() uint64 { return (*Namespace)(n).nextAckID() }

// HandleServerSideEmit implements adapter.Namespace.
func (n *nsSeam) HandleServerSideEmit(args []json.RawMessage, ack func(json.RawMessage)) {
	(*Namespace)(n).handleServerSideEmit(args, ack)
}

// ID implements adapter.Socket.
func (s *sockSeam) ID() string { return s.id }

// Deliver implements adapter.Socket: it queues a broadcast packet, encoded
// once for all its recipients on this node (packetFrames).
func (s *sockSeam) Deliver(p *adapter.Packet, flags adapter.Flags, ack adapter.AckFunc) {
	(*Socket)(s).deliver(p, flags, ack)
}

// Info implements adapter.Socket.
func (s *sockSeam) Info() adapter.SocketInfo { return (*Socket)(s).info() }

// Session implements adapter.SessionSocket.
func (s *sockSeam) Session() *adapter.Session { return (*Socket)(s).snapshot() }

// Disconnect implements adapter.Socket.
func (s *sockSeam) Disconnect(close bool) { (*Socket)(s).Disconnect(close) }

// packetFrames returns the Engine.IO messages of a broadcast packet, made
// by the first recipient and shared by every other (adapter.Packet.Encoded).
func packetFrames(p *adapter.Packet) []*engineio.Message {
	return p.Encoded(encodeBroadcast).([]*engineio.Message)
}

func encodeBroadcast(p *adapter.Packet) any {
	return packetMessages(&parser.Packet{
		Type:        parser.Event,
		Nsp:         p.Nsp,
		ID:          p.ID,
		HasID:       p.HasID,
		Data:        p.Data,
		Attachments: p.Attachments,
	})
}
