package redis

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/parser"
)

// onRaw handles a message of one of the adapter's channels: answers on its
// own answers channel, everything else through onMessage (Node's
// onRawMessage).
func (a *ShardedAdapter) onRaw(payload []byte, response bool) {
	m, err := cluster.Decode(payload)
	if err != nil {
		a.f.log.Debug("redis: malformed cluster message ignored", "nsp", a.name, "err", err)
		return
	}
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
func (a *ShardedAdapter) onMessage(m *cluster.Message) {
	if m.Uid == a.uid || m.Nsp != a.name {
		return // the publisher applied its own message locally
	}
	ctx := context.Background()
	switch m.Typ {
	case cluster.MsgBroadcast:
		data, atts, err := m.Event()
		if err != nil {
			a.f.log.Debug("redis: broadcast ignored", "nsp", a.name, "err", err)
			return
		}
		opts := m.Data.Opts.Options()
		opts.Flags.Local = false
		p := adapter.NewPacket(a.name, data, atts)
		if m.Data.RequestID == "" {
			_ = a.local.Broadcast(p, opts)
			return
		}
		p.ID, p.HasID = a.nsp.NextAckID(), true
		r := &shardedAckResponder{a: a, to: m.Uid, requestID: m.Data.RequestID}
		_ = a.local.BroadcastWithAck(p, opts, r.count, r.ack)

	case cluster.MsgSocketsJoin:
		_ = a.local.AddSockets(ctx, m.Data.Opts.Options(), m.Data.Rooms)
		a.reconcile(m.Data.Rooms)

	case cluster.MsgSocketsLeave:
		_ = a.local.DelSockets(ctx, m.Data.Opts.Options(), m.Data.Rooms)
		a.reconcile(m.Data.Rooms)

	case cluster.MsgDisconnectSockets:
		_ = a.local.DisconnectSockets(ctx, m.Data.Opts.Options(), m.Data.Close)

	case cluster.MsgFetchSockets:
		if m.Data.RequestID == "" {
			return
		}
		socks, _ := a.local.FetchSockets(ctx, m.Data.Opts.Options())
		d := cluster.NewJSONMsg(64 + 512*len(socks))
		d.Str("requestId", m.Data.RequestID)
		d.Key("sockets")
		d.B = append(d.B, '[')
		for i, s := range socks {
			if len(d.B) > a.f.opts.MaxMessageBytes {
				// Too large already: count the rest instead of building it.
				a.answerTooLarge(m.Uid, cluster.MsgFetchSocketsResponse, m.Data.RequestID, cluster.AnswerLen(d.B, socks[i:]))
				return
			}
			if i > 0 {
				d.B = append(d.B, ',')
			}
			d.B = cluster.AppendSocket(d.B, s)
		}
		d.B = append(d.B, ']')
		a.answer(m.Uid, cluster.MsgFetchSocketsResponse, m.Data.RequestID, cluster.MessageJSON(cluster.MsgFetchSocketsResponse, d.Bytes(), a.uid, a.name))

	case cluster.MsgServerSideEmit:
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
					d := cluster.NewJSONMsg(32 + len(v))
					d.Str("requestId", id)
					d.Raw("packet", v)
					a.answer(to, cluster.MsgServerSideEmitResponse, id, cluster.MessageJSON(cluster.MsgServerSideEmitResponse, d.Bytes(), a.uid, a.name))
				})
			}
		}
		a.f.events.Run(func() { a.nsp.HandleServerSideEmit(args, ack) })

	case cluster.MsgFetchSocketsResponse, cluster.MsgServerSideEmitResponse, cluster.MsgBroadcastClientCount, cluster.MsgBroadcastAck:
		// Adapters that do not tell requests from answers send them here
		// (ClusterAdapter.onMessage passes them on too).
		a.onResponse(m)
	}
}

// answer publishes an answer on the requester's own channel, or, when it
// exceeds MaxMessageBytes, a small answer saying so (the requester would
// otherwise wait until its timeout without knowing why).
func (a *ShardedAdapter) answer(to string, typ int, requestID string, msg []byte) {
	if len(msg) > a.f.opts.MaxMessageBytes {
		a.answerTooLarge(to, typ, requestID, len(msg))
		return
	}
	if err := a.f.publish(a.channel+to+"#", msg); err != nil {
		a.f.log.Debug("redis: answer dropped", "err", err)
	}
}

// answerTooLarge publishes the answer that replaces one of size bytes: the
// empty answer Node counts, with an "error" member a Go requester turns
// into an error matching ErrMessageTooLarge.
func (a *ShardedAdapter) answerTooLarge(to string, typ int, requestID string, size int) {
	a.f.log.Warn("redis: answer too large for Redis; the asker gets an error instead",
		"nsp", a.name, "type", typ, "bytes", size, "limit", a.f.opts.MaxMessageBytes)
	ae := cluster.AnswerError{Code: cluster.CodeTooLarge, UID: a.uid, Size: size, Limit: a.f.opts.MaxMessageBytes}
	e, _ := json.Marshal(ae)
	d := cluster.NewJSONMsg(160)
	d.Str("requestId", requestID)
	switch typ {
	case cluster.MsgFetchSocketsResponse:
		d.Raw("sockets", json.RawMessage("[]"))
	default:
		d.Raw("packet", json.RawMessage("null"))
	}
	d.Raw("error", e)
	if err := a.f.publish(a.channel+to+"#", cluster.MessageJSON(typ, d.Bytes(), a.uid, a.name)); err != nil {
		a.f.log.Debug("redis: answer dropped", "err", err)
	}
}

// onResponse handles an answer to a request of this adapter.
func (a *ShardedAdapter) onResponse(m *cluster.Message) {
	id := m.Data.RequestID
	if id == "" {
		return
	}
	a.pend.Mu.Lock()
	ack := a.pend.Acks[id]
	req := a.pend.Requests[id]
	a.pend.Mu.Unlock()
	failed := cluster.DecodeAnswerError(m.Data.Error)
	switch m.Typ {
	case cluster.MsgBroadcastClientCount:
		if ack != nil {
			ack.OnClientCount(m.Data.ClientCount)
		}
		return
	case cluster.MsgBroadcastAck:
		if ack == nil {
			return
		}
		v, err := m.AckValue()
		if err != nil {
			a.f.log.Debug("redis: malformed acknowledgement ignored", "err", err)
			return
		}
		ack.OnAck([]parser.Raw{v})
		return
	case cluster.MsgFetchSocketsResponse, cluster.MsgServerSideEmitResponse:
	default:
		return
	}
	if req == nil || (req.Typ == cluster.MsgFetchSockets) != (m.Typ == cluster.MsgFetchSocketsResponse) {
		return // another request, or too late
	}
	if failed != nil {
		a.pend.Mu.Lock()
		defer a.pend.Mu.Unlock()
		if a.pend.Requests[id] == req {
			delete(a.pend.Requests, id)
			req.Finish(&cluster.RemoteError{Op: shardedRequestName(req.Typ), E: *failed})
		}
		return
	}
	// Decode outside the lock.
	var socks []cluster.WireSocket
	var v json.RawMessage
	if m.Typ == cluster.MsgFetchSocketsResponse {
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
	if m.Typ == cluster.MsgFetchSocketsResponse {
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

func shardedRequestName(typ int) string {
	if typ == cluster.MsgFetchSockets {
		return "fetchSockets"
	}
	return "serverSideEmit"
}

// shardedAckResponder answers a BROADCAST with acks from another node: one
// BROADCAST_CLIENT_COUNT, then one BROADCAST_ACK per client answer (held
// back until the count is out, so that the requester sees them in that
// order).
type shardedAckResponder struct {
	a         *ShardedAdapter
	to        string
	requestID string

	mu      sync.Mutex
	counted bool
	pending [][]byte
}

func (r *shardedAckResponder) count(n int) {
	d := cluster.NewJSONMsg(48)
	d.Str("requestId", r.requestID)
	d.Int("clientCount", n)
	msg := cluster.MessageJSON(cluster.MsgBroadcastClientCount, d.Bytes(), r.a.uid, r.a.name)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counted = true
	r.a.answer(r.to, cluster.MsgBroadcastClientCount, r.requestID, msg)
	for _, p := range r.pending {
		r.a.answer(r.to, cluster.MsgBroadcastAck, r.requestID, p)
	}
	r.pending = nil
}

func (r *shardedAckResponder) ack(args []parser.Raw) {
	arg := parser.Raw{JSON: json.RawMessage("null")}
	if len(args) > 0 {
		arg = args[0]
	}
	msg, err := cluster.EncodeAck(r.a.uid, r.a.name, r.requestID, arg)
	if err != nil {
		r.a.f.log.Debug("redis: acknowledgement not forwarded", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.counted {
		r.pending = append(r.pending, msg)
		return
	}
	r.a.answer(r.to, cluster.MsgBroadcastAck, r.requestID, msg)
}
