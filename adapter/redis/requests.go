package redis

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/parser"
)

// addRequest registers req under a new request id.
func (a *Adapter) addRequest(req *cluster.Request) (string, error) {
	return a.pend.AddRequest(req, newID)
}

// send publishes a request and waits for its answers, until
// RequestsTimeout or ctx's deadline (errTimedOut), or ctx's cancellation.
func (a *Adapter) send(id string, req *cluster.Request, msg []byte, ctx context.Context) error {
	return a.pend.Await(ctx, id, req, a.f.opts.RequestsTimeout, func() error { return a.f.publish(a.requestChannel, msg) })
}

// ---------------------------------------------------------------- receiving

// onBroadcast handles a message of the broadcast channels, following the
// Node adapter: a single-room channel whose room has no local socket is
// dropped without decoding; so are own messages and other namespaces'.
func (a *Adapter) onBroadcast(channel, payload string) {
	if !strings.HasPrefix(channel, a.bcastChannel) {
		return
	}
	if len(channel) > len(a.bcastChannel) {
		room := channel[len(a.bcastChannel) : len(channel)-1]
		// With recovery on, this adapter's own logged broadcasts come back
		// here, and a broadcast of its own waits for it.
		if room != "" && !a.hasLocalRoom(room) && (a.rec == nil || !sentBy(payload, a.uid)) {
			return
		}
	}
	b, err := decodeBroadcastFrom([]byte(payload), a.uid, a.rec != nil)
	if err != nil {
		if err != errOwnMessage {
			a.f.log.Debug("redis: broadcast ignored", "channel", channel, "err", err)
		}
		return
	}
	if b.nsp != a.name || a.isClosed() {
		return
	}
	if a.rec != nil {
		if b.offset != "" {
			a.rec.onLogged(b)
			return
		}
		if b.own {
			return // not logged: delivered here when it was sent
		}
	}
	_ = a.local.Broadcast(adapter.NewPacket(a.name, b.data, b.atts), b.opts)
}

// isOwn reports whether a request comes from this adapter.
func (a *Adapter) isOwn(e *envelope) bool {
	if e.UID != nil && *e.UID == a.uid {
		return true
	}
	if e.RequestID == "" {
		return false
	}
	a.pend.Mu.Lock()
	defer a.pend.Mu.Unlock()
	_, req := a.pend.Requests[e.RequestID]
	_, ack := a.pend.Acks[e.RequestID]
	return req || ack
}

// respond publishes an answer of kind typ to a request: on the shared
// response channel, or on the requester's own one with
// PublishOnSpecificResponseChannel. size, when not 0, is the size of an
// answer too large to be built (msg is then nil).
func (a *Adapter) respond(e *envelope, typ int, msg []byte, size int) {
	ch := a.responseChannel
	if a.f.opts.PublishOnSpecificResponseChannel && e.uid() != "" {
		ch += e.uid() + "#"
	}
	a.publishAnswer(ch, typ, e.RequestID, msg, size)
}

// publishAnswer publishes an answer, or, when it exceeds MaxMessageBytes,
// a small answer saying so: one too large would be refused by publish, and
// the asker would wait until its timeout without knowing why.
func (a *Adapter) publishAnswer(ch string, typ int, requestID string, msg []byte, size int) {
	if size == 0 {
		size = len(msg)
	}
	if size > a.f.opts.MaxMessageBytes {
		a.f.log.Warn("redis: answer too large for Redis; the asker gets an error instead",
			"nsp", a.name, "type", typ, "bytes", size, "limit", a.f.opts.MaxMessageBytes)
		msg = a.tooLargeAnswer(typ, requestID, size)
	}
	if err := a.f.publish(ch, msg); err != nil {
		a.f.log.Debug("redis: answer dropped", "err", err)
	}
}

// onRequest handles a message of the request channel.
func (a *Adapter) onRequest(payload string) {
	e, err := decodeEnvelope([]byte(payload))
	if err != nil || e.Type == nil {
		a.f.log.Debug("redis: malformed request ignored", "err", err)
		return
	}
	if a.isClosed() {
		return
	}
	switch *e.Type {
	case typeSockets:
		if a.isOwn(e) {
			return
		}
		ids := []string{}
		a.local.LocalSockets(adapter.BroadcastOptions{Rooms: e.Rooms}, func(s adapter.Socket) bool {
			ids = append(ids, s.ID())
			return true
		})
		m := cluster.NewJSONMsg(32 + cluster.StringsLen(ids))
		m.Str("requestId", e.RequestID)
		m.Strs("sockets", ids)
		a.respond(e, typeSockets, m.Bytes(), 0)

	case typeAllRooms:
		if a.isOwn(e) {
			return
		}
		rooms := a.local.LocalRooms()
		m := cluster.NewJSONMsg(32 + cluster.StringsLen(rooms))
		m.Str("requestId", e.RequestID)
		m.Strs("rooms", rooms)
		a.respond(e, typeAllRooms, m.Bytes(), 0)

	case typeRemoteJoin, typeRemoteLeave, typeRemoteDisconnect:
		if e.Opts == nil {
			a.onLegacyRequest(e)
			return
		}
		// This node applied its own request when it sent it.
		if e.UID != nil && *e.UID == a.uid {
			return
		}
		opts := e.Opts.options()
		ctx := context.Background()
		switch *e.Type {
		case typeRemoteJoin:
			a.changeRooms(opts, func() { _ = a.local.AddSockets(ctx, opts, e.Rooms) })
		case typeRemoteLeave:
			a.changeRooms(opts, func() { _ = a.local.DelSockets(ctx, opts, e.Rooms) })
		default:
			_ = a.local.DisconnectSockets(ctx, opts, e.Close)
		}

	case typeRemoteFetch:
		if a.isOwn(e) {
			return
		}
		socks, _ := a.local.FetchSockets(context.Background(), e.Opts.options())
		m := cluster.NewJSONMsg(64 + 512*len(socks))
		m.Str("requestId", e.RequestID)
		m.Key("sockets")
		m.B = append(m.B, '[')
		for i, s := range socks {
			if len(m.B) > a.f.opts.MaxMessageBytes {
				// Too large already: count the rest instead of building it.
				a.respond(e, typeRemoteFetch, nil, cluster.AnswerLen(m.B, socks[i:]))
				return
			}
			if i > 0 {
				m.B = append(m.B, ',')
			}
			m.B = cluster.AppendSocket(m.B, s)
		}
		m.B = append(m.B, ']')
		a.respond(e, typeRemoteFetch, m.Bytes(), 0)

	case typeServerSideEmit:
		if e.UID != nil && *e.UID == a.uid {
			return
		}
		args, err := parser.SplitArray(e.Data)
		if err != nil {
			return
		}
		var ack func(json.RawMessage)
		if e.RequestID != "" {
			var once sync.Once
			id := e.RequestID
			ack = func(v json.RawMessage) {
				once.Do(func() {
					m := cluster.NewJSONMsg(48 + len(v))
					m.Int("type", typeServerSideEmit)
					m.Str("requestId", id)
					m.Raw("data", v)
					// Always the shared channel, as on Node.
					a.publishAnswer(a.responseChannel, typeServerSideEmit, id, m.Bytes(), 0)
				})
			}
		}
		a.f.events.Run(func() { a.nsp.HandleServerSideEmit(args, ack) })

	case typeBroadcast:
		if a.isOwn(e) {
			return
		}
		_, data, atts, err := e.broadcastPacket()
		if err != nil {
			a.f.log.Debug("redis: broadcast request ignored", "err", err)
			return
		}
		p := adapter.NewPacket(a.name, data, atts)
		p.ID, p.HasID = a.nsp.NextAckID(), true
		r := &ackResponder{a: a, e: e}
		// Node's receivers select by rooms and except only (no flags).
		_ = a.local.BroadcastWithAck(p, e.Opts.options(), r.count, r.ack)
	}
}

// onLegacyRequest answers the single-socket forms of REMOTE_JOIN,
// REMOTE_LEAVE and REMOTE_DISCONNECT that adapters before 7.x sent.
func (a *Adapter) onLegacyRequest(e *envelope) {
	if e.Sid == nil {
		return
	}
	sid := *e.Sid
	var sock adapter.Socket
	a.local.LocalSockets(adapter.BroadcastOptions{Rooms: []string{sid}}, func(s adapter.Socket) bool {
		if s.ID() == sid {
			sock = s
			return false
		}
		return true
	})
	if sock == nil {
		return
	}
	switch *e.Type {
	case typeRemoteJoin:
		a.local.AddAll(sock, []string{e.Room})
	case typeRemoteLeave:
		a.local.Del(sid, e.Room)
	default:
		sock.Disconnect(e.Close)
	}
	m := cluster.NewJSONMsg(32)
	m.Str("requestId", e.RequestID)
	a.respond(e, *e.Type, m.Bytes(), 0)
}

// ackResponder answers a BROADCAST request from another node: one
// BROADCAST_CLIENT_COUNT, then one BROADCAST_ACK per client answer (held
// back until the count is out, so that the requester sees them in that
// order).
type ackResponder struct {
	a *Adapter
	e *envelope

	mu      sync.Mutex
	counted bool
	pending [][]byte
}

func (r *ackResponder) count(n int) {
	m := cluster.NewJSONMsg(48)
	m.Int("type", typeBroadcastClientCount)
	m.Str("requestId", r.e.RequestID)
	m.Int("clientCount", n)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counted = true
	r.a.respond(r.e, typeBroadcastClientCount, m.Bytes(), 0)
	for _, p := range r.pending {
		r.a.respond(r.e, typeBroadcastAck, p, 0)
	}
	r.pending = nil
}

func (r *ackResponder) ack(args []parser.Raw) {
	arg := parser.Raw{JSON: json.RawMessage("null")}
	if len(args) > 0 {
		arg = args[0]
	}
	msg, err := encodeBroadcastAck(r.e.RequestID, arg)
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
	r.a.respond(r.e, typeBroadcastAck, msg, 0)
}

// onResponse handles a message of the response channels.
func (a *Adapter) onResponse(payload string) {
	e, err := decodeEnvelope([]byte(payload))
	if err != nil || e.RequestID == "" {
		return
	}
	a.pend.Mu.Lock()
	ack := a.pend.Acks[e.RequestID]
	req := a.pend.Requests[e.RequestID]
	a.pend.Mu.Unlock()
	failed := cluster.DecodeAnswerError(e.Error)
	if ack != nil {
		if e.Type == nil {
			return
		}
		switch *e.Type {
		case typeBroadcastClientCount:
			ack.OnClientCount(e.ClientCount)
		case typeBroadcastAck:
			v, err := e.ackValue()
			if err != nil {
				a.f.log.Debug("redis: malformed acknowledgement ignored", "err", err)
				return
			}
			if failed != nil {
				// The client's answer is counted as null, as on a Node
				// asker: the ack callback has no way to carry an error.
				a.f.log.Warn("redis: a client's acknowledgement could not be forwarded; counted as null",
					"nsp", a.name, "err", (&cluster.RemoteError{Op: "broadcast acknowledgement", E: *failed}).Error())
			}
			ack.OnAck([]parser.Raw{v})
		}
		return
	}
	if req == nil {
		return // another node's request, or too late
	}
	if failed != nil {
		// Fail fast: the answer will not come.
		a.pend.Mu.Lock()
		defer a.pend.Mu.Unlock()
		if a.pend.Requests[e.RequestID] == req {
			delete(a.pend.Requests, e.RequestID)
			req.Finish(&cluster.RemoteError{Op: requestName(req.Typ), E: *failed})
		}
		return
	}
	// Decode outside the lock.
	var socks []cluster.WireSocket
	var rooms cluster.RoomList
	switch req.Typ {
	case typeRemoteFetch:
		if len(e.Sockets) > 0 && json.Unmarshal(e.Sockets, &socks) != nil {
			socks = nil
		}
	case typeAllRooms:
		rooms = e.Rooms
	}
	a.pend.Mu.Lock()
	defer a.pend.Mu.Unlock()
	if a.pend.Requests[e.RequestID] != req {
		return
	}
	req.Received++
	switch req.Typ {
	case typeRemoteFetch:
		for _, s := range socks {
			req.Sockets = append(req.Sockets, adapter.SocketInfo{ID: s.ID, Handshake: s.Handshake, Rooms: s.Rooms, Data: s.Data})
		}
	case typeAllRooms:
		for _, r := range rooms {
			req.Rooms[r] = struct{}{}
		}
	case typeServerSideEmit:
		v := e.Data
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		req.Responses = append(req.Responses, v)
	}
	if req.Received >= req.Expected {
		delete(a.pend.Requests, e.RequestID)
		req.Finish(nil)
	}
}

// tooLargeAnswer builds the answer of kind typ that replaces one of size
// bytes.
func (a *Adapter) tooLargeAnswer(typ int, requestID string, size int) []byte {
	ae := cluster.AnswerError{Code: cluster.CodeTooLarge, UID: a.uid, Size: size, Limit: a.f.opts.MaxMessageBytes}
	if typ == typeBroadcastAck {
		w := cluster.GetWriter(128)
		w.MapLen(4)
		w.Str("type")
		w.Number(typeBroadcastAck)
		w.Str("requestId")
		w.Str(requestID)
		w.Str("packet")
		w.Null()
		w.Str("error")
		w.MapLen(4)
		w.Str("code")
		w.Str(ae.Code)
		w.Str("uid")
		w.Str(ae.UID)
		w.Str("size")
		w.Number(float64(ae.Size))
		w.Str("limit")
		w.Number(float64(ae.Limit))
		return w.Bytes()
	}
	m := cluster.NewJSONMsg(160)
	switch typ {
	case typeServerSideEmit:
		m.Int("type", typeServerSideEmit)
		m.Str("requestId", requestID)
		m.Raw("data", json.RawMessage("null"))
	case typeSockets, typeRemoteFetch:
		m.Str("requestId", requestID)
		m.Raw("sockets", json.RawMessage("[]"))
	case typeAllRooms:
		m.Str("requestId", requestID)
		m.Raw("rooms", json.RawMessage("[]"))
	default:
		m.Str("requestId", requestID)
	}
	m.Key("error")
	m.B = append(m.B, `{"code":`...)
	m.B = cluster.AppendJSStringText(m.B, ae.Code)
	m.B = append(m.B, `,"uid":`...)
	m.B = cluster.AppendJSStringText(m.B, ae.UID)
	m.B = append(m.B, `,"size":`...)
	m.B = strconv.AppendInt(m.B, int64(ae.Size), 10)
	m.B = append(m.B, `,"limit":`...)
	m.B = strconv.AppendInt(m.B, int64(ae.Limit), 10)
	m.B = append(m.B, '}')
	return m.Bytes()
}

// requestName names a request type in errors, as Node's API does.
func requestName(typ int) string {
	switch typ {
	case typeSockets:
		return "sockets"
	case typeAllRooms:
		return "allRooms"
	case typeRemoteFetch:
		return "fetchSockets"
	case typeServerSideEmit:
		return "serverSideEmit"
	}
	return "request " + strconv.Itoa(typ)
}
