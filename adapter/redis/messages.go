package redis

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// Request types of @socket.io/redis-adapter 8 (its RequestType enum).
const (
	typeSockets              = 0 // legacy, still answered
	typeAllRooms             = 1
	typeRemoteJoin           = 2
	typeRemoteLeave          = 3
	typeRemoteDisconnect     = 4
	typeRemoteFetch          = 5
	typeServerSideEmit       = 6
	typeBroadcast            = 7 // msgpack
	typeBroadcastClientCount = 8
	typeBroadcastAck         = 9 // msgpack
)

// Socket.IO packet types a broadcast may carry.
const (
	packetEvent       = 2
	packetBinaryEvent = 5
)

func attachmentsLen(atts [][]byte) int {
	n := 0
	for _, a := range atts {
		n += len(a) + 5
	}
	return n
}

func stringsLen(list []string) int {
	n := 0
	for _, s := range list {
		n += len(s) + 5
	}
	return n
}

// ---------------------------------------------------------------- msgpack out

// encodeBroadcast builds a broadcast message, [uid, packet, opts].
func encodeBroadcast(uid, nsp string, p *adapter.Packet, opts adapter.BroadcastOptions) ([]byte, error) {
	return encodeBroadcastElems(3, uid, nsp, p, opts)
}

// encodeBroadcastElems writes the first three elements of a broadcast
// message whose array has n elements.
func encodeBroadcastElems(n int, uid, nsp string, p *adapter.Packet, opts adapter.BroadcastOptions) ([]byte, error) {
	w := getWriter(64 + 9*(n-3) + len(uid) + len(nsp) + len(p.Data) + attachmentsLen(p.Attachments) +
		stringsLen(opts.Rooms) + stringsLen(opts.Except))
	w.arrayLen(n)
	w.str(uid)
	if err := w.packet(nsp, p); err != nil {
		w.bytes()
		return nil, err
	}
	w.opts(opts)
	return w.bytes(), nil
}

// sentBy reports whether a broadcast message comes from the adapter uid,
// reading no more than its envelope's first element.
func sentBy(payload, uid string) bool {
	if len(payload) < 2+len(uid) || payload[0]&0xf0 != 0x90 {
		return false
	}
	n := len(uid)
	if n >= 32 {
		return false
	}
	return payload[1] == 0xa0|byte(n) && payload[2:2+n] == uid
}

// encodeLoggedBroadcast builds the message of a broadcast logged for
// recovery without its last two elements, the nonce (appendNonce) and the
// offset, which the log appends (recovery.go): [uid, packet, opts, nonce,
// offset]. Node's adapter reads the first three, as in every broadcast.
func encodeLoggedBroadcast(uid, nsp string, p *adapter.Packet, opts adapter.BroadcastOptions) ([]byte, error) {
	return encodeBroadcastElems(5, uid, nsp, p, opts)
}

// appendNonce appends a nonce as a msgpack uint 64.
func appendNonce(msg []byte, nonce uint64) []byte {
	return append(msg, 0xcf, byte(nonce>>56), byte(nonce>>48), byte(nonce>>40), byte(nonce>>32),
		byte(nonce>>24), byte(nonce>>16), byte(nonce>>8), byte(nonce))
}

// encodeBroadcastRequest builds the BROADCAST request of a broadcast with
// acknowledgements.
func encodeBroadcastRequest(uid, requestID, nsp string, p *adapter.Packet, opts adapter.BroadcastOptions) ([]byte, error) {
	w := getWriter(96 + len(uid) + len(nsp) + len(p.Data) + attachmentsLen(p.Attachments) +
		stringsLen(opts.Rooms) + stringsLen(opts.Except))
	w.mapLen(5)
	w.str("uid")
	w.str(uid)
	w.str("requestId")
	w.str(requestID)
	w.str("type")
	w.number(typeBroadcast)
	w.str("packet")
	if err := w.packet(nsp, p); err != nil {
		w.bytes()
		return nil, err
	}
	w.str("opts")
	w.opts(opts)
	return w.bytes(), nil
}

// encodeBroadcastAck builds the BROADCAST_ACK response carrying one
// client's answer (its first argument).
func encodeBroadcastAck(requestID string, arg parser.Raw) ([]byte, error) {
	w := getWriter(32 + len(requestID) + len(arg.JSON) + attachmentsLen(arg.Attachments))
	w.mapLen(3)
	w.str("type")
	w.number(typeBroadcastAck)
	w.str("requestId")
	w.str(requestID)
	w.str("packet")
	j := arg.JSON
	if len(bytes.TrimSpace(j)) == 0 {
		j = []byte("null")
	}
	if err := w.json(j, arg.Attachments); err != nil {
		w.bytes()
		return nil, err
	}
	return w.bytes(), nil
}

// packet writes {type: 2, data, nsp}: the EVENT as Node's adapter
// publishes it (no ack id; the type stays EVENT even with binary data).
func (w *mpWriter) packet(nsp string, p *adapter.Packet) error {
	w.mapLen(3)
	w.str("type")
	w.number(packetEvent)
	w.str("data")
	if err := w.json(p.Data, p.Attachments); err != nil {
		return err
	}
	w.str("nsp")
	w.str(nsp)
	return nil
}

// opts writes {rooms, except, flags}; flags hold what Node's broadcast
// operator would carry (never local: local broadcasts are not published).
func (w *mpWriter) opts(o adapter.BroadcastOptions) {
	w.mapLen(3)
	w.str("rooms")
	w.strs(o.Rooms)
	w.str("except")
	w.strs(o.Except)
	w.str("flags")
	f := o.Flags
	n := 0
	if f.ExpectSingleResponse {
		n++
	}
	if f.Volatile {
		n++
	}
	if f.Compress != nil {
		n++
	}
	if f.Timeout > 0 {
		n++
	}
	w.mapLen(n)
	if f.ExpectSingleResponse {
		w.str("expectSingleResponse")
		w.boolean(true)
	}
	if f.Volatile {
		w.str("volatile")
		w.boolean(true)
	}
	if f.Compress != nil {
		w.str("compress")
		w.boolean(*f.Compress)
	}
	if f.Timeout > 0 {
		w.str("timeout")
		w.number(float64(f.Timeout) / 1e6) // milliseconds
	}
}

// ---------------------------------------------------------------- JSON out

// jsonMsg builds the JSON messages (every request and response but
// BROADCAST and BROADCAST_ACK) with the keys in Node's order.
type jsonMsg struct{ b []byte }

func newJSONMsg(size int) *jsonMsg { return &jsonMsg{b: append(make([]byte, 0, size), '{')} }

func (m *jsonMsg) key(k string) {
	if len(m.b) > 1 {
		m.b = append(m.b, ',')
	}
	m.b = appendJSStringText(m.b, k)
	m.b = append(m.b, ':')
}

func (m *jsonMsg) str(k, v string) {
	m.key(k)
	m.b = appendJSStringText(m.b, v)
}

func (m *jsonMsg) int(k string, v int) {
	m.key(k)
	m.b = strconv.AppendInt(m.b, int64(v), 10)
}

func (m *jsonMsg) boolean(k string, v bool) {
	m.key(k)
	m.b = strconv.AppendBool(m.b, v)
}

func (m *jsonMsg) raw(k string, v json.RawMessage) {
	m.key(k)
	if len(v) == 0 {
		v = json.RawMessage("null")
	}
	m.b = append(m.b, v...)
}

func (m *jsonMsg) strs(k string, list []string) {
	m.key(k)
	m.b = appendStrings(m.b, list)
}

// opts writes {"rooms":[…],"except":[…]}.
func (m *jsonMsg) opts(o adapter.BroadcastOptions) {
	m.key("opts")
	m.b = append(m.b, `{"rooms":`...)
	m.b = appendStrings(m.b, o.Rooms)
	m.b = append(m.b, `,"except":`...)
	m.b = appendStrings(m.b, o.Except)
	m.b = append(m.b, '}')
}

func (m *jsonMsg) bytes() []byte { return append(m.b, '}') }

func appendStrings(dst []byte, list []string) []byte {
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSStringText(dst, s)
	}
	return append(dst, ']')
}

// ---------------------------------------------------------------- in: broadcasts

// inBroadcast is a broadcast message received from another node.
type inBroadcast struct {
	nsp  string
	data []byte   // the EVENT's JSON array, with placeholders
	atts [][]byte // alias the message
	opts adapter.BroadcastOptions

	// A broadcast logged for recovery (recovery.go) carries two more
	// elements, which Node's adapter ignores: the sender's nonce and the
	// offset the log gave it.
	own    bool // sent by this adapter (only with keepOwn)
	nonce  uint64
	offset string
}

var (
	errOwnMessage  = errors.New("redis: own message")
	errNotAnEvent  = errors.New("redis: broadcast is not a valid EVENT")
	errBadEnvelope = errors.New("redis: malformed message")
)

// decodeBroadcast decodes [uid, packet, opts]; it stops early with
// errOwnMessage when uid is own.
func decodeBroadcast(msg []byte, own string) (*inBroadcast, error) {
	return decodeBroadcastFrom(msg, own, false)
}

// decodeBroadcastFrom is decodeBroadcast that, with keepOwn, decodes a
// message of this adapter too (marked own) instead of refusing it.
func decodeBroadcastFrom(msg []byte, own string, keepOwn bool) (*inBroadcast, error) {
	r := getReader(msg)
	defer putReader(r)
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	if !isArrayCode(c) {
		return nil, errBadEnvelope
	}
	n, err := r.dec.DecodeArrayLen()
	if err != nil || n < 2 {
		return nil, errBadEnvelope
	}
	uid, isStr, err := r.str()
	if err != nil {
		return nil, err
	}
	isOwn := isStr && uid == own
	if isOwn && !keepOwn {
		return nil, errOwnMessage
	}
	b := &inBroadcast{own: isOwn}
	if b.nsp, b.data, b.atts, err = r.eventPacket(); err != nil {
		return nil, err
	}
	if n >= 3 {
		if _, err := r.mapKeys(func(key []byte) error {
			var err error
			switch string(key) {
			case "rooms":
				b.opts.Rooms, err = r.stringList()
			case "except":
				b.opts.Except, err = r.stringList()
			case "flags":
				_, err = r.mapKeys(func(key []byte) error {
					switch string(key) {
					case "volatile":
						v, err := r.boolValue()
						b.opts.Flags.Volatile = v
						return err
					case "compress":
						c, err := r.peek()
						if err != nil || (c != 0xc2 && c != 0xc3) {
							return r.skip(0)
						}
						v, err := r.boolValue()
						b.opts.Flags.Compress = &v
						return err
					}
					return r.skip(0)
				})
			default:
				err = r.skip(0)
			}
			return err
		}); err != nil {
			return nil, err
		}
	}
	if n >= 5 {
		nonce, ok, err := r.intValue()
		if err != nil {
			return nil, err
		}
		if ok && nonce > 0 {
			b.nonce = uint64(nonce)
		}
		if b.offset, _, err = r.str(); err != nil {
			return nil, err
		}
		if !validOffset(b.offset) {
			b.offset = ""
		}
	}
	return b, nil
}

// validEvent reports whether data, a compact JSON array written by the
// transcoder, is an EVENT a client accepts: its first element is a number,
// or a string that is not a reserved event name (the client would drop the
// connection).
func validEvent(data []byte) bool {
	if len(data) < 3 || data[0] != '[' {
		return false
	}
	switch c := data[1]; {
	case c == '-' || isDigit(c):
		return true
	case c != '"':
		return false
	}
	end, escaped, err := scanJSString(data, 1)
	if err != nil {
		return false
	}
	name := data[2 : end-1]
	if escaped {
		var err error
		if name, err = unquote(nil, data[1:end]); err != nil {
			return false
		}
	}
	return !parser.IsReservedEvent(string(name))
}

// ---------------------------------------------------------------- in: requests and responses

// roomList reads an array of rooms, accepting the numbers Node allows as
// room names.
type roomList []string

func (l *roomList) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return err
	}
	out := make([]string, 0, len(raws))
	for _, r := range raws {
		if len(r) == 0 {
			continue
		}
		switch {
		case r[0] == '"':
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return err
			}
			out = append(out, s)
		case r[0] == '-' || isDigit(r[0]):
			f, err := strconv.ParseFloat(string(r), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return err
			}
			out = append(out, jsNumberKey(f))
		}
	}
	*l = out
	return nil
}

type wireOpts struct {
	Rooms  roomList `json:"rooms"`
	Except roomList `json:"except"`
}

func (o *wireOpts) options() adapter.BroadcastOptions {
	if o == nil {
		return adapter.BroadcastOptions{}
	}
	return adapter.BroadcastOptions{Rooms: o.Rooms, Except: o.Except}
}

// envelope is a request or a response, decoded from JSON or msgpack.
type envelope struct {
	UID         *string         `json:"uid"`
	RequestID   string          `json:"requestId"`
	Type        *int            `json:"type"`
	Opts        *wireOpts       `json:"opts"`
	Rooms       roomList        `json:"rooms"`
	Close       bool            `json:"close"`
	Data        json.RawMessage `json:"data"`
	Sid         *string         `json:"sid"`
	Room        string          `json:"room"`
	Sockets     json.RawMessage `json:"sockets"`
	ClientCount int             `json:"clientCount"`
	Packet      json.RawMessage `json:"packet"`
	// Error is set in the answers that replace one the answering node
	// could not send (see answerError); Node ignores it.
	Error json.RawMessage `json:"error"`

	// mpPacket is the raw msgpack of "packet" in a msgpack message
	// (BROADCAST, BROADCAST_ACK), where binary data must survive.
	mpPacket []byte
}

func (e *envelope) uid() string {
	if e.UID == nil {
		return ""
	}
	return *e.UID
}

// decodeEnvelope decodes a request or response: JSON when it starts with
// '{', msgpack otherwise, as Node's adapter decides.
func decodeEnvelope(msg []byte) (*envelope, error) {
	e := new(envelope)
	if len(msg) > 0 && msg[0] == '{' {
		if err := json.Unmarshal(msg, e); err != nil {
			return nil, err
		}
		return e, nil
	}
	// msgpack: every member but "packet" is transcoded to JSON (binary as
	// Node's Buffer JSON, what those members become on Node's JSON paths)
	// and read like a JSON message.
	r := getReader(msg)
	defer putReader(r)
	js := []byte{'{'}
	ok, err := r.mapKeys(func(key []byte) error {
		if string(key) == "packet" {
			var err error
			e.mpPacket, err = r.span()
			return err
		}
		if len(js) > 1 {
			js = append(js, ',')
		}
		js = appendJSString(js, key)
		js = append(js, ':')
		var err error
		js, _, err = r.toJSON(js, nil, binBufferJSON)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok || !r.done() {
		return nil, errBadEnvelope
	}
	js = append(js, '}')
	if err := json.Unmarshal(js, e); err != nil {
		return nil, err
	}
	return e, nil
}

// broadcastPacket decodes the "packet" of a BROADCAST request:
// {type, data, nsp}.
func (e *envelope) broadcastPacket() (nsp string, data []byte, atts [][]byte, err error) {
	if e.mpPacket == nil {
		return "", nil, nil, errNotAnEvent
	}
	r := getReader(e.mpPacket)
	defer putReader(r)
	return r.eventPacket()
}

// eventPacket reads a packet map {type, data, nsp} that must be an EVENT
// (or BINARY_EVENT) with a valid event array; data becomes Socket.IO JSON
// with binary placeholders. A missing nsp is "/", as Node takes it; one that
// is not a string matches no namespace.
func (r *mpReader) eventPacket() (nsp string, data []byte, atts [][]byte, err error) {
	nsp = "/"
	typ := int64(-1)
	ok, err := r.mapKeys(func(key []byte) error {
		var err error
		switch string(key) {
		case "type":
			var ok bool
			if typ, ok, err = r.intValue(); !ok {
				typ = -1
			}
		case "data":
			c, err := r.peek()
			if err != nil {
				return err
			}
			if !isArrayCode(c) {
				return r.skip(0)
			}
			data, atts, err = r.toJSON(nil, nil, binPlaceholder)
			return err
		case "nsp":
			var isStr bool
			if nsp, isStr, err = r.str(); !isStr {
				nsp = "\x00" // matches no namespace
			}
		default:
			err = r.skip(0)
		}
		return err
	})
	if err != nil {
		return "", nil, nil, err
	}
	if !ok || data == nil || (typ != packetEvent && typ != packetBinaryEvent) || !validEvent(data) {
		return "", nil, nil, errNotAnEvent
	}
	return nsp, data, atts, nil
}

// ackValue returns the client answer of a BROADCAST_ACK.
func (e *envelope) ackValue() (parser.Raw, error) {
	if e.mpPacket != nil {
		r := getReader(e.mpPacket)
		defer putReader(r)
		js, atts, err := r.toJSON(nil, nil, binPlaceholder)
		if err != nil {
			return parser.Raw{}, err
		}
		return parser.Raw{JSON: js, Attachments: atts}, nil
	}
	if len(e.Packet) == 0 {
		return parser.Raw{JSON: json.RawMessage("null")}, nil
	}
	return parser.Raw{JSON: e.Packet}, nil
}

// wireSocket is one socket of a REMOTE_FETCH response.
type wireSocket struct {
	ID        string          `json:"id"`
	Handshake json.RawMessage `json:"handshake"`
	Rooms     roomList        `json:"rooms"`
	Data      json.RawMessage `json:"data"`
}
