package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
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

	data  json.RawMessage // socket.data as it crossed the cluster
	nsp   *Namespace
	local *Socket
	flags time.Duration
}

func newRemoteSocket(ns *Namespace, info adapter.SocketInfo) *RemoteSocket {
	r := &RemoteSocket{ID: info.ID, Rooms: info.Rooms, data: info.Data, nsp: ns}
	if s := socketOf(info.Local); s != nil {
		r.local = s
		r.Handshake = s.Handshake()
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

// DecodeData decodes the socket's data (Socket.SetData) as it was when
// fetched into v, as Socket.DecodeData does: through its JSON form, the
// same on every node. It fails with a *DecodeError (ErrDecode).
func (r *RemoteSocket) DecodeData(v any) error {
	return parser.WrapDecodeError(-1, v, json.Unmarshal(r.data, v))
}

// Emit sends an event to the socket.
func (r *RemoteSocket) Emit(event string, args ...any) error {
	return r.operator().Emit(event, args...)
}

// EmitWithAck sends an event and waits for the client's answer, until the
// Timeout or ctx ends. Only the first argument of the answer crosses the
// cluster (as on Node): the result holds that one element.
func (r *RemoteSocket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	res, err := r.operator().EmitWithAck(ctx, event, args...)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, errAckTimeout
	}
	return res[:1], nil
}

// EmitWithAckFunc sends an event and returns; ack receives the client's
// answer (one element, its first argument) or the error that ended the
// wait — set a Timeout: as on Node, without it the wait ends at once. ack
// runs on a goroutine of its own.
func (r *RemoteSocket) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	if ack == nil {
		return r.Emit(event, args...)
	}
	return r.operator().EmitWithAckFunc(event, func(res Args, err error) {
		if err == nil && len(res) == 0 {
			err = errAckTimeout
		}
		ack(res, err)
	}, args...)
}

// Join makes the socket join rooms.
func (r *RemoteSocket) Join(ctx context.Context, rooms ...string) error {
	if r.local != nil {
		return r.local.Join(rooms...)
	}
	return r.operator().SocketsJoin(ctx, rooms...)
}

// Leave makes the socket leave rooms.
func (r *RemoteSocket) Leave(ctx context.Context, rooms ...string) error {
	if r.local != nil {
		return r.local.Leave(rooms...)
	}
	return r.operator().SocketsLeave(ctx, rooms...)
}

// Disconnect disconnects the socket; close also closes its connection.
func (r *RemoteSocket) Disconnect(ctx context.Context, close bool) error {
	if r.local != nil {
		r.local.Disconnect(close)
		return nil
	}
	return r.operator().DisconnectSockets(ctx, close)
}
