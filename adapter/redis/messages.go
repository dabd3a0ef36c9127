package redis

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
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

// ---------------------------------------------------------------- msgpack out

// encodeBroadcast builds a broadcast message, [uid, packet, opts].
func encodeBroadcast(uid, nsp string, p *adapter.Packet, opts adapter.BroadcastOptions) ([]byte, error) {
	return encodeBroadcastElems(3, uid, nsp, p, opts)
}

// encodeBroadcastElems writes the first three elements of a broadcast
// message whose array has n elements.
func encodeBroadcastElems(n int, uid, nsp string, p *adapter.Packet, opts adapter.BroadcastOptions) ([]byte, error) {
	w := cluster.GetWriter(64 + 9*(n-3) + len(uid) + len(nsp) + len(p.Data) + cluster.AttachmentsLen(p.Attachments) +
		cluster.StringsLen(opts.Rooms) + cluster.StringsLen(opts.Except))
	w.ArrayLen(n)
	w.Str(uid)
	if err := writePacket(w, nsp, p); err != nil {
		w.Bytes()
		return nil, err
	}
	w.Opts(opts)
	return w.Bytes(), nil
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
	w := cluster.GetWriter(96 + len(uid) + len(nsp) + len(p.Data) + cluster.AttachmentsLen(p.Attachments) +
		cluster.StringsLen(opts.Rooms) + cluster.StringsLen(opts.Except))
	w.MapLen(5)
	w.Str("uid")
	w.Str(uid)
	w.Str("requestId")
	w.Str(requestID)
	w.Str("type")
	w.Number(typeBroadcast)
	w.Str("packet")
	if err := writePacket(w, nsp, p); err != nil {
		w.Bytes()
		return nil, err
	}
	w.Str("opts")
	w.Opts(opts)
	return w.Bytes(), nil
}

// encodeBroadcastAck builds the BROADCAST_ACK response carrying one
// client's answer (its first argument).
func encodeBroadcastAck(requestID string, arg parser.Raw) ([]byte, error) {
	w := cluster.GetWriter(32 + len(requestID) + len(arg.JSON) + cluster.AttachmentsLen(arg.Attachments))
	w.MapLen(3)
	w.Str("type")
	w.Number(typeBroadcastAck)
	w.Str("requestId")
	w.Str(requestID)
	w.Str("packet")
	j := arg.JSON
	if len(bytes.TrimSpace(j)) == 0 {
		j = []byte("null")
	}
	if err := w.JSON(j, arg.Attachments); err != nil {
		w.Bytes()
		return nil, err
	}
	return w.Bytes(), nil
}

// packet writes {type: 2, data, nsp}: the EVENT as Node's adapter
// publishes it (no ack id; the type stays EVENT even with binary data).
func writePacket(w *cluster.Writer, nsp string, p *adapter.Packet) error {
	w.MapLen(3)
	w.Str("type")
	w.Number(cluster.PacketEvent)
	w.Str("data")
	if err := w.JSON(p.Data, p.Attachments); err != nil {
		return err
	}
	w.Str("nsp")
	w.Str(nsp)
	return nil
}

// ---------------------------------------------------------------- JSON out

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
	errOwnMessage = errors.New("redis: own message")
)

// decodeBroadcast decodes [uid, packet, opts]; it stops early with
// errOwnMessage when uid is own.
func decodeBroadcast(msg []byte, own string) (*inBroadcast, error) {
	return decodeBroadcastFrom(msg, own, false)
}

// decodeBroadcastFrom is decodeBroadcast that, with keepOwn, decodes a
// message of this adapter too (marked own) instead of refusing it.
func decodeBroadcastFrom(msg []byte, own string, keepOwn bool) (*inBroadcast, error) {
	r := cluster.GetReader(msg)
	defer cluster.PutReader(r)
	c, err := r.Peek()
	if err != nil {
		return nil, err
	}
	if !cluster.IsArrayCode(c) {
		return nil, cluster.ErrBadEnvelope
	}
	n, err := r.Dec.DecodeArrayLen()
	if err != nil || n < 2 {
		return nil, cluster.ErrBadEnvelope
	}
	uid, isStr, err := r.Str()
	if err != nil {
		return nil, err
	}
	isOwn := isStr && uid == own
	if isOwn && !keepOwn {
		return nil, errOwnMessage
	}
	b := &inBroadcast{own: isOwn}
	if b.nsp, b.data, b.atts, err = r.EventPacket(); err != nil {
		return nil, err
	}
	if n >= 3 {
		if _, err := r.MapKeys(func(key []byte) error {
			var err error
			switch string(key) {
			case "rooms":
				b.opts.Rooms, err = r.StringList()
			case "except":
				b.opts.Except, err = r.StringList()
			case "flags":
				_, err = r.MapKeys(func(key []byte) error {
					switch string(key) {
					case "volatile":
						v, err := r.BoolValue()
						b.opts.Flags.Volatile = v
						return err
					case "compress":
						c, err := r.Peek()
						if err != nil || (c != 0xc2 && c != 0xc3) {
							return r.Skip(0)
						}
						v, err := r.BoolValue()
						b.opts.Flags.Compress = &v
						return err
					}
					return r.Skip(0)
				})
			default:
				err = r.Skip(0)
			}
			return err
		}); err != nil {
			return nil, err
		}
	}
	if n >= 5 {
		nonce, ok, err := r.IntValue()
		if err != nil {
			return nil, err
		}
		if ok && nonce > 0 {
			b.nonce = uint64(nonce)
		}
		if b.offset, _, err = r.Str(); err != nil {
			return nil, err
		}
		if !cluster.ValidOffset(b.offset) {
			b.offset = ""
		}
	}
	return b, nil
}

type wireOpts struct {
	Rooms  cluster.RoomList `json:"rooms"`
	Except cluster.RoomList `json:"except"`
}

func (o *wireOpts) options() adapter.BroadcastOptions {
	if o == nil {
		return adapter.BroadcastOptions{}
	}
	return adapter.BroadcastOptions{Rooms: o.Rooms, Except: o.Except}
}

// envelope is a request or a response, decoded from JSON or msgpack.
type envelope struct {
	UID         *string          `json:"uid"`
	RequestID   string           `json:"requestId"`
	Type        *int             `json:"type"`
	Opts        *wireOpts        `json:"opts"`
	Rooms       cluster.RoomList `json:"rooms"`
	Close       bool             `json:"close"`
	Data        json.RawMessage  `json:"data"`
	Sid         *string          `json:"sid"`
	Room        string           `json:"room"`
	Sockets     json.RawMessage  `json:"sockets"`
	ClientCount int              `json:"clientCount"`
	Packet      json.RawMessage  `json:"packet"`
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
	r := cluster.GetReader(msg)
	defer cluster.PutReader(r)
	js := []byte{'{'}
	ok, err := r.MapKeys(func(key []byte) error {
		if string(key) == "packet" {
			var err error
			e.mpPacket, err = r.Span()
			return err
		}
		if len(js) > 1 {
			js = append(js, ',')
		}
		js = cluster.AppendJSString(js, key)
		js = append(js, ':')
		var err error
		js, _, err = r.ToJSON(js, nil, cluster.BinBufferJSON)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok || !r.Done() {
		return nil, cluster.ErrBadEnvelope
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
		return "", nil, nil, cluster.ErrNotAnEvent
	}
	r := cluster.GetReader(e.mpPacket)
	defer cluster.PutReader(r)
	return r.EventPacket()
}

// ackValue returns the client answer of a BROADCAST_ACK.
func (e *envelope) ackValue() (parser.Raw, error) {
	if e.mpPacket != nil {
		r := cluster.GetReader(e.mpPacket)
		defer cluster.PutReader(r)
		js, atts, err := r.ToJSON(nil, nil, cluster.BinPlaceholder)
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
