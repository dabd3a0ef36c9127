package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/jsonscan"
	"github.com/ioswarm/ioswarm/parser"
)

// The messages of the cluster adapters (sharded, streams) are
// socket.io-adapter's ClusterMessage: {type, data, uid, nsp}
// (docs/protocol/redis-adapter.md, B.3 and C).

// MessageType of socket.io-adapter's cluster-adapter (the values the
// sharded adapter uses).
const (
	MsgBroadcast              = 3
	MsgSocketsJoin            = 4
	MsgSocketsLeave           = 5
	MsgDisconnectSockets      = 6
	MsgFetchSockets           = 7
	MsgFetchSocketsResponse   = 8
	MsgServerSideEmit         = 9
	MsgServerSideEmitResponse = 10
	MsgBroadcastClientCount   = 11
	MsgBroadcastAck           = 12
)

// ---------------------------------------------------------------- out

// MessageJSON builds a JSON ClusterMessage around data, the JSON object
// of its "data" member.
func MessageJSON(typ int, data []byte, uid, nsp string) []byte {
	m := NewJSONMsg(48 + len(data) + len(uid) + len(nsp))
	m.Int("type", typ)
	m.Raw("data", data)
	m.Str("uid", uid)
	m.Str("nsp", nsp)
	return m.Bytes()
}

// appendClusterOpts writes {"rooms","except","flags"}: unlike the classic
// adapter's requests, the cluster adapter's carry the flags.
func appendClusterOpts(dst []byte, o adapter.BroadcastOptions) []byte {
	dst = append(dst, `{"rooms":`...)
	dst = appendStrings(dst, o.Rooms)
	dst = append(dst, `,"except":`...)
	dst = appendStrings(dst, o.Except)
	dst = append(dst, `,"flags":{`...)
	f := o.Flags
	sep := ""
	add := func(k string) {
		dst = append(dst, sep...)
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, `":`...)
		sep = ","
	}
	if f.ExpectSingleResponse {
		add("expectSingleResponse")
		dst = append(dst, "true"...)
	}
	if f.Volatile {
		add("volatile")
		dst = append(dst, "true"...)
	}
	if f.Compress != nil {
		add("compress")
		dst = strconv.AppendBool(dst, *f.Compress)
	}
	if f.Timeout > 0 {
		add("timeout")
		dst = AppendJSNumber(dst, float64(f.Timeout)/1e6)
	}
	return append(dst, "}}"...)
}

// Out is a ClusterMessage on its way to other nodes: its data as JSON,
// whose binary placeholders refer to Atts, encoded by the transport in the
// form its wire wants (Encode, Msgpack, DataMsgpack).
type Out struct {
	Type int
	UID  string
	Nsp  string
	// Data is the JSON object of the message's "data" member.
	Data []byte
	// Atts are the binary values of Data's placeholders (a BROADCAST's
	// packet, a BROADCAST_ACK's answer).
	Atts [][]byte
	// Opts are a BROADCAST's selection, for transports that route by room.
	Opts adapter.BroadcastOptions
	// RequestID is set on a request that waits for answers, and on a
	// BROADCAST that waits for acks.
	RequestID string
}

// Binary reports whether the data holds binary values.
func (o *Out) Binary() bool { return len(o.Atts) > 0 }

// Encode returns the message as Node's ClusterAdapter publishes it on
// pub/sub (the sharded adapter): JSON, or msgpack when it holds binary.
func (o *Out) Encode() ([]byte, error) {
	if !o.Binary() {
		return MessageJSON(o.Type, o.Data, o.UID, o.Nsp), nil
	}
	return o.Msgpack()
}

// Msgpack returns the whole message as msgpack {type, data, uid, nsp}.
func (o *Out) Msgpack() ([]byte, error) {
	w := GetWriter(64 + len(o.UID) + len(o.Nsp) + len(o.Data) + AttachmentsLen(o.Atts))
	w.MapLen(4)
	w.Str("type")
	w.Number(float64(o.Type))
	w.Str("data")
	if err := w.JSON(o.Data, o.Atts); err != nil {
		w.Bytes()
		return nil, err
	}
	w.Str("uid")
	w.Str(o.UID)
	w.Str("nsp")
	w.Str(o.Nsp)
	return w.Bytes(), nil
}

// DataMsgpack returns the message's data alone as msgpack.
func (o *Out) DataMsgpack() ([]byte, error) { return JSONToMsgpack(o.Data, o.Atts) }

// BroadcastOut builds a BROADCAST (with a requestId when the broadcast
// waits for acks).
func BroadcastOut(requestID string, p *adapter.Packet, opts adapter.BroadcastOptions) *Out {
	d := NewJSONMsg(64 + len(p.Data) + StringsLen(opts.Rooms) + StringsLen(opts.Except))
	d.Key("packet")
	d.B = append(d.B, `{"type":2,"data":`...)
	d.B = append(d.B, p.Data...)
	d.B = append(d.B, '}')
	if requestID != "" {
		d.Str("requestId", requestID)
	}
	d.Key("opts")
	d.B = appendClusterOpts(d.B, opts)
	return &Out{Type: MsgBroadcast, Data: d.Bytes(), Atts: p.Attachments, Opts: opts, RequestID: requestID}
}

// RoomsOut builds SOCKETS_JOIN or SOCKETS_LEAVE.
func RoomsOut(typ int, opts adapter.BroadcastOptions, rooms []string) *Out {
	d := NewJSONMsg(64 + StringsLen(rooms) + StringsLen(opts.Rooms) + StringsLen(opts.Except))
	d.Key("opts")
	d.B = appendClusterOpts(d.B, opts)
	d.Strs("rooms", rooms)
	return &Out{Type: typ, Data: d.Bytes(), Opts: opts}
}

// DisconnectOut builds DISCONNECT_SOCKETS.
func DisconnectOut(opts adapter.BroadcastOptions, close bool) *Out {
	d := NewJSONMsg(64 + StringsLen(opts.Rooms) + StringsLen(opts.Except))
	d.Key("opts")
	d.B = appendClusterOpts(d.B, opts)
	d.Boolean("close", close)
	return &Out{Type: MsgDisconnectSockets, Data: d.Bytes(), Opts: opts}
}

// FetchOut builds FETCH_SOCKETS.
func FetchOut(requestID string, opts adapter.BroadcastOptions) *Out {
	d := NewJSONMsg(64 + StringsLen(opts.Rooms) + StringsLen(opts.Except))
	d.Key("opts")
	d.B = appendClusterOpts(d.B, opts)
	d.Str("requestId", requestID)
	return &Out{Type: MsgFetchSockets, Data: d.Bytes(), Opts: opts, RequestID: requestID}
}

// ServerSideEmitOut builds SERVER_SIDE_EMIT; requestID is empty when no
// answer is wanted.
func ServerSideEmitOut(requestID string, args []byte) *Out {
	d := NewJSONMsg(32 + len(args))
	if requestID != "" {
		d.Str("requestId", requestID)
	}
	d.Raw("packet", args)
	return &Out{Type: MsgServerSideEmit, Data: d.Bytes(), RequestID: requestID}
}

// AckOut builds the BROADCAST_ACK carrying one client's answer.
func AckOut(requestID string, arg parser.Raw) *Out {
	j := arg.JSON
	if len(bytes.TrimSpace(j)) == 0 {
		j = []byte("null")
	}
	d := NewJSONMsg(32 + len(j))
	d.Str("requestId", requestID)
	d.Raw("packet", j)
	return &Out{Type: MsgBroadcastAck, Data: d.Bytes(), Atts: arg.Attachments, RequestID: requestID}
}

// ---------------------------------------------------------------- in

// Message is a ClusterMessage received from another node.
type Message struct {
	Typ  int
	Uid  string
	Nsp  string
	Data clusterData
	// Packet is data.Packet: JSON, or (mp set) its raw msgpack, where
	// binary values must survive.
	Packet []byte
	Mp     bool
	// Offset is the message's stream entry id, when it came from a
	// stream: with Config.Offsets, a logged broadcast gets it appended.
	Offset string
}

// clusterData holds the members of a message's data that are not its
// packet.
type clusterData struct {
	RequestID   string          `json:"requestId"`
	Opts        *Opts           `json:"opts"`
	Rooms       RoomList        `json:"rooms"`
	Close       bool            `json:"close"`
	Sockets     json.RawMessage `json:"sockets"`
	ClientCount int             `json:"clientCount"`
	Packet      json.RawMessage `json:"packet"`
	// Error is set in answers that replace one the answering node could
	// not send (answerError); Node ignores it.
	Error json.RawMessage `json:"error"`
}

type Opts struct {
	Rooms  RoomList                   `json:"rooms"`
	Except RoomList                   `json:"except"`
	Flags  map[string]json.RawMessage `json:"flags"`
}

// Options returns the selection of a request with its flags; values of an
// unexpected type are ignored rather than failing the message.
func (o *Opts) Options() adapter.BroadcastOptions {
	if o == nil {
		return adapter.BroadcastOptions{}
	}
	out := adapter.BroadcastOptions{Rooms: o.Rooms, Except: o.Except}
	for k, v := range o.Flags {
		switch k {
		case "volatile":
			out.Flags.Volatile = string(v) == "true"
		case "compress":
			if b := string(v); b == "true" || b == "false" {
				c := b == "true"
				out.Flags.Compress = &c
			}
		case "expectSingleResponse":
			out.Flags.ExpectSingleResponse = string(v) == "true"
		case "timeout":
			out.Flags.Timeout = flagTimeout(v)
		}
	}
	return out
}

// MaxFlagTimeout bounds the timeout a peer may ask for (a timer and an
// entry live that long).
const MaxFlagTimeout = 24 * 3600 * 1000

// flagTimeout reads flags.timeout, in milliseconds; 0 when absent or
// unusable.
func flagTimeout(v json.RawMessage) time.Duration {
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || !(f > 0) {
		return 0
	}
	return time.Duration(min(f, MaxFlagTimeout) * 1e6)
}

var ErrNotClusterMessage = errors.New("redis: not a cluster message")

// Decode decodes a message: JSON when it starts with '{',
// msgpack otherwise (Node's test). The members of a msgpack data but its
// packet are transcoded to JSON, binary as Node's Buffer JSON.
func Decode(msg []byte) (*Message, error) {
	if len(msg) > 0 && msg[0] == '{' {
		return DecodeJSON(msg)
	}
	m := new(Message)
	r := GetReader(msg)
	defer PutReader(r)
	typ, hasNsp := int64(-1), false
	ok, err := r.MapKeys(func(key []byte) error {
		var err error
		switch string(key) {
		case "type":
			var ok bool
			if typ, ok, err = r.IntValue(); !ok {
				typ = -1
			}
		case "uid":
			m.Uid, _, err = r.Str()
		case "nsp":
			m.Nsp, hasNsp, err = r.Str()
		case "data":
			return m.readMsgpackData(r)
		default:
			err = r.Skip(0)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok || !r.Done() || typ < 0 || !hasNsp {
		return nil, ErrNotClusterMessage
	}
	m.Typ = int(typ)
	return m, nil
}

// readMsgpackData reads a msgpack data map: its packet is kept as
// msgpack, where binary values must survive; its other members are
// transcoded to JSON, binary as Node's Buffer JSON.
func (m *Message) readMsgpackData(r *Reader) error {
	js := []byte{'{'}
	if _, err := r.MapKeys(func(key []byte) error {
		if string(key) == "packet" {
			var err error
			m.Packet, err = r.Span()
			m.Mp = true
			return err
		}
		if len(js) > 1 {
			js = append(js, ',')
		}
		js = AppendJSString(js, key)
		js = append(js, ':')
		var err error
		js, _, err = r.ToJSON(js, nil, BinBufferJSON)
		return err
	}); err != nil {
		return err
	}
	// The transcoder writes valid JSON: read without validating again.
	return m.Data.fromJSON(append(js, '}'))
}

// DecodeParts builds a message from members that travel apart (the
// fields of a Redis stream entry): data is the JSON object of its data,
// or, with mp, its msgpack map.
func DecodeParts(typ int, uid, nsp string, data []byte, mp bool) (*Message, error) {
	m := &Message{Typ: typ, Uid: uid, Nsp: nsp}
	if len(data) == 0 {
		return m, nil
	}
	if !mp {
		var sc jsonscan.Scanner
		if _, _, err := sc.Whole(data); err != nil {
			return nil, err
		}
		if data[0] != '{' {
			return nil, errNotObject
		}
		if err := m.Data.fromJSON(data); err != nil {
			return nil, err
		}
		m.Packet = m.Data.Packet
		return m, nil
	}
	r := GetReader(data)
	defer PutReader(r)
	if err := m.readMsgpackData(r); err != nil {
		return nil, err
	}
	if !r.Done() {
		return nil, ErrTrailing
	}
	return m, nil
}

// Event returns the EVENT of a BROADCAST: its data array as Socket.IO
// JSON, with placeholders for its attachments.
func (m *Message) Event() (data []byte, atts [][]byte, err error) {
	if m.Mp {
		r := GetReader(m.Packet)
		defer PutReader(r)
		_, data, atts, err = r.EventPacket()
		return data, atts, err
	}
	data, err = jsonEvent(m.Packet)
	return data, nil, err
}

// AckValue returns the client answer of a BROADCAST_ACK.
func (m *Message) AckValue() (parser.Raw, error) {
	if m.Mp {
		r := GetReader(m.Packet)
		defer PutReader(r)
		js, atts, err := r.ToJSON(nil, nil, BinPlaceholder)
		if err != nil {
			return parser.Raw{}, err
		}
		return parser.Raw{JSON: js, Attachments: atts}, nil
	}
	if len(m.Packet) == 0 {
		return parser.Raw{JSON: json.RawMessage("null")}, nil
	}
	return parser.Raw{JSON: m.Packet}, nil
}

// JSONPacket returns the packet of a SERVER_SIDE_EMIT or its response as
// JSON, binary as Node's Buffer JSON (what a listener of this node
// receives in place of a Buffer).
func (m *Message) JSONPacket() (json.RawMessage, error) {
	if m.Mp {
		r := GetReader(m.Packet)
		defer PutReader(r)
		js, _, err := r.ToJSON(nil, nil, BinBufferJSON)
		return js, err
	}
	if len(m.Packet) == 0 {
		return json.RawMessage("null"), nil
	}
	return m.Packet, nil
}

// JSLength is a string's length in JavaScript (UTF-16 code units): Node
// takes every room whose name has 20 of them for a socket id.
func JSLength(s string) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		n++
		if r > 0xffff {
			n++
		}
	}
	return n
}
