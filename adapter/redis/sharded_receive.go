package redis

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// onRaw handles a message of one of the adapter's channels: answers on its
// own answers channel, everything else through onMessage (Node's
// onRawMessage).
func (a *ShardedAdapter) onRaw(payload []byte, response bool) {
	m, err := decodeClusterMsg(payload)
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
func (a *ShardedAdapter) onMessage(m *clusterMsg) {
	if m.uid == a.uid || m.nsp != a.name {
		return // the publisher applied its own message locally
	}
	ctx := context.Background()
	switch m.typ {
	case msgBroadcast:
		data, atts, err := m.event()
		if err != nil {
			a.f.log.Debug("redis: broadcast ignored", "nsp", a.name, "err", err)
			return
		}
		opts := m.data.Opts.options()
		opts.Flags.Local = false
		p := adapter.NewPacket(a.name, data, atts)
		if m.data.RequestID == "" {
			_ = a.local.Broadcast(p, opts)
			return
		}
		p.ID, p.HasID = a.nsp.NextAckID(), true
		r := &shardedAckResponder{a: a, to: m.uid, requestID: m.data.RequestID}
		_ = a.local.BroadcastWithAck(p, opts, r.count, r.ack)

	case msgSocketsJoin:
		_ = a.local.AddSockets(ctx, m.data.Opts.options(), m.data.Rooms)
		a.reconcile(m.data.Rooms)

	case msgSocketsLeave:
		_ = a.local.DelSockets(ctx, m.data.Opts.options(), m.data.Rooms)
		a.reconcile(m.data.Rooms)

	case msgDisconnectSockets:
		_ = a.local.DisconnectSockets(ctx, m.data.Opts.options(), m.data.Close)

	case msgFetchSockets:
		if m.data.RequestID == "" {
			return
		}
		socks, _ := a.local.FetchSockets(ctx, m.data.Opts.options())
		d := newJSONMsg(64 + 512*len(socks))
		d.str("requestId", m.data.RequestID)
		d.key("sockets")
		d.b = append(d.b, '[')
		for i, s := range socks {
			if len(d.b) > a.f.opts.MaxMessageBytes {
				// Too large already: count the rest instead of building it.
				a.answerTooLarge(m.uid, msgFetchSocketsResponse, m.data.RequestID, answerLen(d.b, socks[i:]))
				return
			}
			if i > 0 {
				d.b = append(d.b, ',')
			}
			d.b = appendSocket(d.b, s)
		}
		d.b = append(d.b, ']')
		a.answer(m.uid, msgFetchSocketsResponse, m.data.RequestID, clusterJSON(msgFetchSocketsResponse, d.bytes(), a.uid, a.name))

	case msgServerSideEmit:
		pk, err := m.jsonPacket()
		if err != nil {
			return
		}
		args, err := parser.SplitArray(pk)
		if err != nil {
			return
		}
		var ack func(json.RawMessage)
		if id := m.data.RequestID; id != "" {
			var once sync.Once
			to := m.uid
			ack = func(v json.RawMessage) {
				once.Do(func() {
					d := newJSONMsg(32 + len(v))
					d.str("requestId", id)
					d.raw("packet", v)
					a.answer(to, msgServerSideEmitResponse, id, clusterJSON(msgServerSideEmitResponse, d.bytes(), a.uid, a.name))
				})
			}
		}
		a.f.events.run(func() { a.nsp.HandleServerSideEmit(args, ack) })

	case msgFetchSocketsResponse, msgServerSideEmitResponse, msgBroadcastClientCount, msgBroadcastAck:
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
	ae := answerError{Code: codeTooLarge, UID: a.uid, Size: size, Limit: a.f.opts.MaxMessageBytes}
	e, _ := json.Marshal(ae)
	d := newJSONMsg(160)
	d.str("requestId", requestID)
	switch typ {
	case msgFetchSocketsResponse:
		d.raw("sockets", json.RawMessage("[]"))
	default:
		d.raw("packet", json.RawMessage("null"))
	}
	d.raw("error", e)
	if err := a.f.publish(a.channel+to+"#", clusterJSON(typ, d.bytes(), a.uid, a.name)); err != nil {
		a.f.log.Debug("redis: answer dropped", "err", err)
	}
}

// onResponse handles an answer to a request of this adapter.
func (a *ShardedAdapter) onResponse(m *clusterMsg) {
	id := m.data.RequestID
	if id == "" {
		return
	}
	a.mu.Lock()
	ack := a.acks[id]
	req := a.requests[id]
	a.mu.Unlock()
	failed := decodeAnswerError(m.data.Error)
	switch m.typ {
	case msgBroadcastClientCount:
		if ack != nil {
			ack.onClientCount(m.data.ClientCount)
		}
		return
	case msgBroadcastAck:
		if ack == nil {
			return
		}
		v, err := m.ackValue()
		if err != nil {
			a.f.log.Debug("redis: malformed acknowledgement ignored", "err", err)
			return
		}
		ack.onAck([]parser.Raw{v})
		return
	case msgFetchSocketsResponse, msgServerSideEmitResponse:
	default:
		return
	}
	if req == nil || (req.typ == msgFetchSockets) != (m.typ == msgFetchSocketsResponse) {
		return // another request, or too late
	}
	if failed != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.requests[id] == req {
			delete(a.requests, id)
			req.finish(&remoteError{op: shardedRequestName(req.typ), e: *failed})
		}
		return
	}
	// Decode outside the lock.
	var socks []wireSocket
	var v json.RawMessage
	if m.typ == msgFetchSocketsResponse {
		if len(m.data.Sockets) > 0 && json.Unmarshal(m.data.Sockets, &socks) != nil {
			socks = nil
		}
	} else {
		var err error
		if v, err = m.jsonPacket(); err != nil || len(v) == 0 {
			v = json.RawMessage("null")
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.requests[id] != req {
		return
	}
	req.received++
	if m.typ == msgFetchSocketsResponse {
		for _, s := range socks {
			req.sockets = append(req.sockets, adapter.SocketInfo{ID: s.ID, Handshake: s.Handshake, Rooms: s.Rooms, Data: s.Data})
		}
	} else {
		req.responses = append(req.responses, v)
	}
	if req.received >= req.expected {
		delete(a.requests, id)
		req.finish(nil)
	}
}

func shardedRequestName(typ int) string {
	if typ == msgFetchSockets {
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
	d := newJSONMsg(48)
	d.str("requestId", r.requestID)
	d.int("clientCount", n)
	msg := clusterJSON(msgBroadcastClientCount, d.bytes(), r.a.uid, r.a.name)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counted = true
	r.a.answer(r.to, msgBroadcastClientCount, r.requestID, msg)
	for _, p := range r.pending {
		r.a.answer(r.to, msgBroadcastAck, r.requestID, p)
	}
	r.pending = nil
}

func (r *shardedAckResponder) ack(args []parser.Raw) {
	arg := parser.Raw{JSON: json.RawMessage("null")}
	if len(args) > 0 {
		arg = args[0]
	}
	msg, err := encodeClusterAck(r.a.uid, r.a.name, r.requestID, arg)
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
	r.a.answer(r.to, msgBroadcastAck, r.requestID, msg)
}
