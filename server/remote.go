package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
)

// RemoteSocket is a socket found by FetchSockets, on this node or another.
// Its methods act on the socket wherever it is.
type RemoteSocket struct {
	// ID is the socket id.
	ID string
	// Handshake is the socket's handshake (for a remote socket, as it came
	// through the cluster: Time has millisecond precision).
	Handshake *Handshake
	// Rooms are the socket's rooms when it was fetched, sorted.
	Rooms []string
	// Data is the socket's data as JSON; Decode it with json.Unmarshal.
	Data json.RawMessage

	nsp   *Namespace
	local *Socket
	flags time.Duration
}

func newRemoteSocket(ns *Namespace, info adapter.SocketInfo) *RemoteSocket {
	r := &RemoteSocket{ID: info.ID, Rooms: info.Rooms, Data: info.Data, nsp: ns}
	if s, ok := info.Local.(*Socket); ok {
		r.local = s
		r.Handshake = s.handshake
	} else {
		r.Handshake = new(Handshake)
		if err := json.Unmarshal(info.Handshake, r.Handshake); err != nil {
			r.Handshake = &Handshake{}
		}
	}
	return r
}

// Local returns the socket when it lives on this node, nil otherwise.
func (r *RemoteSocket) Local() *Socket { return r.local }

func (r *RemoteSocket) operator() *BroadcastOperator {
	op := r.nsp.To(r.ID)
	op.flags.ExpectSingleResponse = true
	op.flags.Timeout = r.flags
	return op
}

// Timeout returns a copy whose acknowledgements time out after d.
func (r *RemoteSocket) Timeout(d time.Duration) *RemoteSocket {
	c := *r
	c.flags = d
	return &c
}

// Emit sends an event to the socket. With Timeout, a trailing
// AckErrCallback receives the client's answer (its first argument) as the
// single element of args.
func (r *RemoteSocket) Emit(event string, args ...any) error {
	return r.operator().Emit(event, args...)
}

// EmitWithAck sends an event and waits for the client's answer (its first
// argument), until the Timeout or ctx ends.
func (r *RemoteSocket) EmitWithAck(ctx context.Context, event string, args ...any) (any, error) {
	res, err := r.operator().EmitWithAck(ctx, event, args...)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, ErrAckTimeout
	}
	return res[0], nil
}

// Join makes the socket join rooms.
func (r *RemoteSocket) Join(ctx context.Context, rooms ...string) error {
	if r.local != nil {
		r.local.Join(rooms...)
		return nil
	}
	return r.operator().SocketsJoin(ctx, rooms...)
}

// Leave makes the socket leave a room.
func (r *RemoteSocket) Leave(ctx context.Context, room string) error {
	if r.local != nil {
		r.local.Leave(room)
		return nil
	}
	return r.operator().SocketsLeave(ctx, room)
}

// Disconnect disconnects the socket; close also closes its connection.
func (r *RemoteSocket) Disconnect(ctx context.Context, close bool) error {
	if r.local != nil {
		r.local.Disconnect(close)
		return nil
	}
	return r.operator().DisconnectSockets(ctx, close)
}
