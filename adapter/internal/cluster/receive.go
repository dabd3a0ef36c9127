package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// Receive handles a message for a's namespace from the wire: an answer
// to one of its requests when response is set (its own answers channel),
// a request or broadcast of another node otherwise (Node's onRawMessage).
// It is a function, not a method, to keep it off the adapter's API.
func Receive(a *Adapter, payload []byte, response bool) {
	m, err := Decode(payload)
	if err != nil {
		a.log.Debug("redis: malformed cluster message ignored", "nsp", a.name, "err", err)
		return
	}
	ReceiveMessage(a, m, response)
}

// ReceiveMessage is Receive for a message decoded by the transport.
func ReceiveMessage(a *Adapter, m *Message, response bool) {
	if a.isClosed() {
		return
	}
	if response {
		a.onResponse(m)
		return
	}
	a.onMessage(m)
}

// onMessage handles a message of the namespace's or a room's channel
// (ClusterAdapter.onMessage).
func (a *Adapter) onMessage(m *Message) {
	if m.Uid == a.uid || m.Nsp != a.name {
		return // the publisher applied its own message locally
	}
	ctx := context.Background()
	switch m.Typ {
	case MsgBroadcast:
		data, atts, err := m.Event()
		if err != nil {
			a.log.Debug("redis: broadcast ignored", "nsp", a.name, "err", err)
			return
		}
		opts := m.Data.Opts.Options()
		opts.Flags.Local = false
		p := adapter.NewPacket(a.name, data, atts)
		if m.Data.RequestID == "" {
			if a.cfg.Offsets && m.Offset != "" && adapter.Loggable(p, opts) {
				p.Data = adapter.AppendOffset(p.Data, m.Offset)
				p.Seq = OffsetSeq(m.Offset)
			}
			_ = a.local.Broadcast(p, opts)
			return
		}
		p.ID, p.HasID = a.nsp.NextAckID(), true
		r := &ackResponder{a: a, to: m.Uid, requestID: m.Data.RequestID}
		_ = a.local.BroadcastWithAck(p, opts, r.count, r.ack)

	case MsgSocketsJoin:
		_ = a.local.AddSockets(ctx, m.Data.Opts.Options(), m.Data.Rooms)
		a.roomsChanged(m.Data.Rooms)

	case MsgSocketsLeave:
		_ = a.local.DelSockets(ctx, m.Data.Opts.Options(), m.Data.Rooms)
		a.roomsChanged(m.Data.Rooms)

	case MsgDisconnectSockets:
		_ = a.local.DisconnectSockets(ctx, m.Data.Opts.Options(), m.Data.Close)

	case MsgFetchSockets:
		if m.Data.RequestID == "" {
			return
		}
		socks, _ := a.local.FetchSockets(ctx, m.Data.Opts.Options())
		d := NewJSONMsg(64 + 512*len(socks))
		d.Str("requestId", m.Data.RequestID)
		d.Key("sockets")
		d.B = append(d.B, '[')
		for i, s := range socks {
			if len(d.B) > a.cfg.MaxMessageBytes {
				// Too large already: count the rest instead of building it.
				a.answerTooLarge(m.Uid, MsgFetchSocketsResponse, m.Data.RequestID, AnswerLen(d.B, socks[i:]))
				return
			}
			if i > 0 {
				d.B = append(d.B, ',')
			}
			d.B = AppendSocket(d.B, s)
		}
		d.B = append(d.B, ']')
		a.answer(m.Uid, &Out{Type: MsgFetchSocketsResponse, Data: d.Bytes(), RequestID: m.Data.RequestID})

	case MsgServerSideEmit:
		pk, err := m.JSONPacket()
		if err != nil {
			return
		}
		args, err := parser.SplitArray(pk)
		if err != nil {
			return
		}
		var ack func(json.RawMessage)
		if id := m.Data.RequestID; id != "" {
			var once sync.Once
			to := m.Uid
			ack = func(v json.RawMessage) {
				once.Do(func() {
					d := NewJSONMsg(32 + len(v))
					d.Str("requestId", id)
					d.Raw("packet", v)
					a.answer(to, &Out{Type: MsgServerSideEmitResponse, Data: d.Bytes(), RequestID: id})
				})
			}
		}
		a.cfg.Events.Run(func() { a.nsp.HandleServerSideEmit(args, ack) })

	case MsgFetchSocketsResponse, MsgServerSideEmitResponse, MsgBroadcastClientCount, MsgBroadcastAck:
		// Adapters that do not tell requests from answers send them here
		// (ClusterAdapter.onMessage passes them on too).
		a.onResponse(m)
	}
}

// answer sends an answer to the requester, or, when it exceeds
// MaxMessageBytes, a small answer saying so (the requester would
// otherwise wait until its timeout without knowing why).
func (a *Adapter) answer(to string, out *Out) {
	out.UID, out.Nsp = a.uid, a.name
	err := a.cfg.Transport.Respond(to, out)
	if errors.Is(err, ErrMessageTooLarge) {
		a.answerTooLarge(to, out.Type, out.RequestID, len(out.Data)+AttachmentsLen(out.Atts))
		return
	}
	if err != nil {
		a.log.Debug("redis: answer dropped", "err", err)
	}
}

// answerTooLarge publishes the answer that replaces one of size bytes: the
// empty answer Node counts, with an "error" member a Go requester turns
// into an error matching ErrMessageTooLarge.
func (a *Adapter) answerTooLarge(to string, typ int, requestID string, size int) {
	a.log.Warn("redis: answer too large for Redis; the asker gets an error instead",
		"nsp", a.name, "type", typ, "bytes", size, "limit", a.cfg.MaxMessageBytes)
	ae := AnswerError{Code: CodeTooLarge, UID: a.uid, Size: size, Limit: a.cfg.MaxMessageBytes}
	e, _ := json.Marshal(ae)
	d := NewJSONMsg(160)
	d.Str("requestId", requestID)
	switch typ {
	case MsgFetchSocketsResponse:
		d.Raw("sockets", json.RawMessage("[]"))
	default:
		d.Raw("packet", json.RawMessage("null"))
	}
	d.Raw("error", e)
	if err := a.cfg.Transport.Respond(to, &Out{Type: typ, UID: a.uid, Nsp: a.name, Data: d.Bytes(), RequestID: requestID}); err != nil {
		a.log.Debug("redis: answer dropped", "err", err)
	}
}

// onResponse handles an answer to a request of this adapter.
func (a *Adapter) onResponse(m *Message) {
	id := m.Data.RequestID
	if id == "" {
		return
	}
	a.pend.Mu.Lock()
	ack := a.pend.Acks[id]
	req := a.pend.Requests[id]
	a.pend.Mu.Unlock()
	failed := DecodeAnswerError(m.Data.Error)
	switch m.Typ {
	case MsgBroadcastClientCount:
		if ack != nil {
			ack.OnClientCount(m.Data.ClientCount)
		}
		return
	case MsgBroadcastAck:
		if ack == nil {
			return
		}
		v, err := m.AckValue()
		if err != nil {
			a.log.Debug("redis: malformed acknowledgement ignored", "err", err)
			return
		}
		ack.OnAck([]parser.Raw{v})
		return
	case MsgFetchSocketsResponse, MsgServerSideEmitResponse:
	default:
		return
	}
	if req == nil || (req.Typ == MsgFetchSockets) != (m.Typ == MsgFetchSocketsResponse) {
		return // another request, or too late
	}
	if failed != nil {
		a.pend.Mu.Lock()
		defer a.pend.Mu.Unlock()
		if a.pend.Requests[id] == req {
			delete(a.pend.Requests, id)
			req.Finish(&RemoteError{Op: requestName(req.Typ), E: *failed})
		}
		return
	}
	// Decode outside the lock.
	var socks []WireSocket
	var v json.RawMessage
	if m.Typ == MsgFetchSocketsResponse {
		if len(m.Data.Sockets) > 0 && json.Unmarshal(m.Data.Sockets, &socks) != nil {
			socks = nil
		}
	} else {
		var err error
		if v, err = m.JSONPacket(); err != nil || len(v) == 0 {
			v = json.RawMessage("null")
		}
	}
	a.pend.Mu.Lock()
	defer a.pend.Mu.Unlock()
	if a.pend.Requests[id] != req {
		return
	}
	req.Received++
	if m.Typ == MsgFetchSocketsResponse {
		for _, s := range socks {
			req.Sockets = append(req.Sockets, adapter.SocketInfo{ID: s.ID, Handshake: s.Handshake, Rooms: s.Rooms, Data: s.Data})
		}
	} else {
		req.Responses = append(req.Responses, v)
	}
	if req.Received >= req.Expected {
		delete(a.pend.Requests, id)
		req.Finish(nil)
	}
}

func requestName(typ int) string {
	if typ == MsgFetchSockets {
		return "fetchSockets"
	}
	return "serverSideEmit"
}

// ackResponder answers a BROADCAST with acks from another node: one
// BROADCAST_CLIENT_COUNT, then one BROADCAST_ACK per client answer (held
// back until the count is out, so that the requester sees them in that
// order).
type ackResponder struct {
	a         *Adapter
	to        string
	requestID string

	mu      sync.Mutex
	counted bool
	pending []*Out
}

func (r *ackResponder) count(n int) {
	d := NewJSONMsg(48)
	d.Str("requestId", r.requestID)
	d.Int("clientCount", n)
	msg := &Out{Type: MsgBroadcastClientCount, Data: d.Bytes(), RequestID: r.requestID}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counted = true
	r.a.answer(r.to, msg)
	for _, p := range r.pending {
		r.a.answer(r.to, p)
	}
	r.pending = nil
}

func (r *ackResponder) ack(args []parser.Raw) {
	arg := parser.Raw{JSON: json.RawMessage("null")}
	if len(args) > 0 {
		arg = args[0]
	}
	msg := AckOut(r.requestID, arg)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.counted {
		r.pending = append(r.pending, msg)
		return
	}
	r.a.answer(r.to, msg)
}
