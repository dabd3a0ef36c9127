package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// errTimedOut ends a request whose answers did not all come in time; the
// callers turn it into Node's error text.
var errTimedOut = errors.New("redis: request timed out")

// request is a request of this node waiting for the answers of the others.
// Its fields are guarded by Adapter.mu until done is closed or the request
// is removed from Adapter.requests.
type request struct {
	typ       int
	expected  int // answers expected: the other nodes
	received  int
	sockets   []adapter.SocketInfo
	rooms     map[string]struct{}
	responses []json.RawMessage
	done      chan struct{}
	err       error
}

func newRequest(typ, expected int) *request {
	return &request{typ: typ, expected: expected, done: make(chan struct{})}
}

// finish completes the request; the caller holds Adapter.mu and has
// removed it from Adapter.requests.
func (r *request) finish(err error) {
	r.err = err
	close(r.done)
}

// addRequest registers req under a new request id.
func (a *Adapter) addRequest(req *request) (string, error) { return a.pending.addRequest(req, newID) }

// send publishes a request and waits for its answers, until
// RequestsTimeout or ctx's deadline (errTimedOut), or ctx's cancellation.
func (a *Adapter) send(id string, req *request, msg []byte, ctx context.Context) error {
	return a.await(ctx, id, req, a.f.opts.RequestsTimeout, func() error { return a.f.publish(a.requestChannel, msg) })
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
	a.mu.Lock()
	defer a.mu.Unlock()
	_, req := a.requests[e.RequestID]
	_, ack := a.acks[e.RequestID]
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

// answerLen returns the size of a REMOTE_FETCH answer that starts with
// head (up to its last socket, comma excluded) and goes on with socks.
func answerLen(head []byte, socks []adapter.SocketInfo) int {
	n := len(head) + len("]}")
	var scratch []byte
	first := len(head) > 0 && head[len(head)-1] == '['
	for i, s := range socks {
		if i > 0 || !first {
			n++ // comma
		}
		hs, data := s.Handshake, s.Data
		s.Handshake, s.Data = nil, nil
		scratch = appendSocket(scratch[:0], s) // "null" for both
		n += len(scratch)
		if len(hs) > 0 {
			n += len(hs) - len("null")
		}
		if len(data) > 0 {
			n += len(data) - len("null")
		}
	}
	return n
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
		m := newJSONMsg(32 + stringsLen(ids))
		m.str("requestId", e.RequestID)
		m.strs("sockets", ids)
		a.respond(e, typeSockets, m.bytes(), 0)

	case typeAllRooms:
		if a.isOwn(e) {
			return
		}
		rooms := a.local.LocalRooms()
		m := newJSONMsg(32 + stringsLen(rooms))
		m.str("requestId", e.RequestID)
		m.strs("rooms", rooms)
		a.respond(e, typeAllRooms, m.bytes(), 0)

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
		m := newJSONMsg(64 + 512*len(socks))
		m.str("requestId", e.RequestID)
		m.key("sockets")
		m.b = append(m.b, '[')
		for i, s := range socks {
			if len(m.b) > a.f.opts.MaxMessageBytes {
				// Too large already: count the rest instead of building it.
				a.respond(e, typeRemoteFetch, nil, answerLen(m.b, socks[i:]))
				return
			}
			if i > 0 {
				m.b = append(m.b, ',')
			}
			m.b = appendSocket(m.b, s)
		}
		m.b = append(m.b, ']')
		a.respond(e, typeRemoteFetch, m.bytes(), 0)

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
					m := newJSONMsg(48 + len(v))
					m.int("type", typeServerSideEmit)
					m.str("requestId", id)
					m.raw("data", v)
					// Always the shared channel, as on Node.
					a.publishAnswer(a.responseChannel, typeServerSideEmit, id, m.bytes(), 0)
				})
			}
		}
		a.f.events.run(func() { a.nsp.HandleServerSideEmit(args, ack) })

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
	m := newJSONMsg(32)
	m.str("requestId", e.RequestID)
	a.respond(e, *e.Type, m.bytes(), 0)
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
	m := newJSONMsg(48)
	m.int("type", typeBroadcastClientCount)
	m.str("requestId", r.e.RequestID)
	m.int("clientCount", n)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counted = true
	r.a.respond(r.e, typeBroadcastClientCount, m.bytes(), 0)
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
	a.mu.Lock()
	ack := a.acks[e.RequestID]
	req := a.requests[e.RequestID]
	a.mu.Unlock()
	failed := decodeAnswerError(e.Error)
	if ack != nil {
		if e.Type == nil {
			return
		}
		switch *e.Type {
		case typeBroadcastClientCount:
			ack.onClientCount(e.ClientCount)
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
					"nsp", a.name, "err", (&remoteError{op: "broadcast acknowledgement", e: *failed}).Error())
			}
			ack.onAck([]parser.Raw{v})
		}
		return
	}
	if req == nil {
		return // another node's request, or too late
	}
	if failed != nil {
		// Fail fast: the answer will not come.
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.requests[e.RequestID] == req {
			delete(a.requests, e.RequestID)
			req.finish(&remoteError{op: requestName(req.typ), e: *failed})
		}
		return
	}
	// Decode outside the lock.
	var socks []wireSocket
	var rooms roomList
	switch req.typ {
	case typeRemoteFetch:
		if len(e.Sockets) > 0 && json.Unmarshal(e.Sockets, &socks) != nil {
			socks = nil
		}
	case typeAllRooms:
		rooms = e.Rooms
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.requests[e.RequestID] != req {
		return
	}
	req.received++
	switch req.typ {
	case typeRemoteFetch:
		for _, s := range socks {
			req.sockets = append(req.sockets, adapter.SocketInfo{ID: s.ID, Handshake: s.Handshake, Rooms: s.Rooms, Data: s.Data})
		}
	case typeAllRooms:
		for _, r := range rooms {
			req.rooms[r] = struct{}{}
		}
	case typeServerSideEmit:
		v := e.Data
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		req.responses = append(req.responses, v)
	}
	if req.received >= req.expected {
		delete(a.requests, e.RequestID)
		req.finish(nil)
	}
}

// appendSocket writes a socket of a REMOTE_FETCH answer:
// {"id","handshake","rooms","data"}.
func appendSocket(dst []byte, s adapter.SocketInfo) []byte {
	m := jsonMsg{b: append(dst, `{"id":`...)} // key() adds the commas from here on
	m.b = appendJSStringText(m.b, s.ID)
	m.raw("handshake", s.Handshake)
	m.strs("rooms", s.Rooms)
	m.raw("data", s.Data)
	return append(m.b, '}')
}

// ---------------------------------------------------------------- answers too large

// codeTooLarge is the code of an answer that exceeded the answering node's
// MaxMessageBytes.
const codeTooLarge = "messageTooLarge"

// answerError is the "error" member of an answer that replaces one the
// answering node could not send. Node's adapter ignores members it does not
// know; the rest of the answer is Node's, with an empty result, so that a
// Node asker counts it.
type answerError struct {
	Code  string `json:"code"`
	UID   string `json:"uid"`   // the answering adapter
	Size  int    `json:"size"`  // bytes of the answer that was not sent
	Limit int    `json:"limit"` // the answering node's MaxMessageBytes
}

// decodeAnswerError reads an "error" member; nil when there is none, or
// when it is not one of ours.
func decodeAnswerError(raw json.RawMessage) *answerError {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var ae answerError
	if json.Unmarshal(raw, &ae) != nil || ae.Code == "" {
		return nil
	}
	return &ae
}

// tooLargeAnswer builds the answer of kind typ that replaces one of size
// bytes.
func (a *Adapter) tooLargeAnswer(typ int, requestID string, size int) []byte {
	ae := answerError{Code: codeTooLarge, UID: a.uid, Size: size, Limit: a.f.opts.MaxMessageBytes}
	if typ == typeBroadcastAck {
		w := getWriter(128)
		w.mapLen(4)
		w.str("type")
		w.number(typeBroadcastAck)
		w.str("requestId")
		w.str(requestID)
		w.str("packet")
		w.null()
		w.str("error")
		w.mapLen(4)
		w.str("code")
		w.str(ae.Code)
		w.str("uid")
		w.str(ae.UID)
		w.str("size")
		w.number(float64(ae.Size))
		w.str("limit")
		w.number(float64(ae.Limit))
		return w.bytes()
	}
	m := newJSONMsg(160)
	switch typ {
	case typeServerSideEmit:
		m.int("type", typeServerSideEmit)
		m.str("requestId", requestID)
		m.raw("data", json.RawMessage("null"))
	case typeSockets, typeRemoteFetch:
		m.str("requestId", requestID)
		m.raw("sockets", json.RawMessage("[]"))
	case typeAllRooms:
		m.str("requestId", requestID)
		m.raw("rooms", json.RawMessage("[]"))
	default:
		m.str("requestId", requestID)
	}
	m.key("error")
	m.b = append(m.b, `{"code":`...)
	m.b = appendJSStringText(m.b, ae.Code)
	m.b = append(m.b, `,"uid":`...)
	m.b = appendJSStringText(m.b, ae.UID)
	m.b = append(m.b, `,"size":`...)
	m.b = strconv.AppendInt(m.b, int64(ae.Size), 10)
	m.b = append(m.b, `,"limit":`...)
	m.b = strconv.AppendInt(m.b, int64(ae.Limit), 10)
	m.b = append(m.b, '}')
	return m.bytes()
}

// remoteError is the error of a request another node answered with an
// error.
type remoteError struct {
	op string
	e  answerError
}

func (r *remoteError) Error() string {
	if r.e.Code == codeTooLarge {
		return fmt.Sprintf("redis: %s: node %s answered too large (%d bytes > %d)", r.op, r.e.UID, r.e.Size, r.e.Limit)
	}
	return fmt.Sprintf("redis: %s: node %s could not answer (%s)", r.op, r.e.UID, r.e.Code)
}

// Is reports whether target is ErrMessageTooLarge and the answer was too
// large.
func (r *remoteError) Is(target error) bool {
	return target == ErrMessageTooLarge && r.e.Code == codeTooLarge
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
