package redis

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// The messages of the sharded adapter are socket.io-adapter's
// ClusterMessage: {type, data, uid, nsp}, JSON unless data holds binary
// (docs/protocol/redis-adapter.md, B.3).

// MessageType of socket.io-adapter's cluster-adapter (the values the
// sharded adapter uses).
const (
	msgBroadcast              = 3
	msgSocketsJoin            = 4
	msgSocketsLeave           = 5
	msgDisconnectSockets      = 6
	msgFetchSockets           = 7
	msgFetchSocketsResponse   = 8
	msgServerSideEmit         = 9
	msgServerSideEmitResponse = 10
	msgBroadcastClientCount   = 11
	msgBroadcastAck           = 12
)

// ---------------------------------------------------------------- out

// clusterJSON builds a JSON ClusterMessage around data, the JSON object
// of its "data" member.
func clusterJSON(typ int, data []byte, uid, nsp string) []byte {
	m := newJSONMsg(48 + len(data) + len(uid) + len(nsp))
	m.int("type", typ)
	m.raw("data", data)
	m.str("uid", uid)
	m.str("nsp", nsp)
	return m.bytes()
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
		dst = appendJSNumber(dst, float64(f.Timeout)/1e6)
	}
	return append(dst, "}}"...)
}

// encodeClusterBroadcast builds a BROADCAST (with a requestId when the
// broadcast waits for acks): JSON, or notepack msgpack when the packet
// has attachments, as Node decides.
func encodeClusterBroadcast(uid, nsp, requestID string, p *adapter.Packet, opts adapter.BroadcastOptions) ([]byte, error) {
	if len(p.Attachments) == 0 {
		d := newJSONMsg(64 + len(p.Data) + stringsLen(opts.Rooms) + stringsLen(opts.Except))
		d.key("packet")
		d.b = append(d.b, `{"type":2,"data":`...)
		d.b = append(d.b, p.Data...)
		d.b = append(d.b, '}')
		if requestID != "" {
			d.str("requestId", requestID)
		}
		d.key("opts")
		d.b = appendClusterOpts(d.b, opts)
		return clusterJSON(msgBroadcast, d.bytes(), uid, nsp), nil
	}
	w := getWriter(128 + len(uid) + len(nsp) + len(p.Data) + attachmentsLen(p.Attachments) +
		stringsLen(opts.Rooms) + stringsLen(opts.Except))
	w.mapLen(4)
	w.str("type")
	w.number(msgBroadcast)
	w.str("data")
	if requestID != "" {
		w.mapLen(3)
	} else {
		w.mapLen(2)
	}
	w.str("packet")
	w.mapLen(2)
	w.str("type")
	w.number(packetEvent)
	w.str("data")
	if err := w.json(p.Data, p.Attachments); err != nil {
		w.bytes()
		return nil, err
	}
	if requestID != "" {
		w.str("requestId")
		w.str(requestID)
	}
	w.str("opts")
	w.opts(opts)
	w.str("uid")
	w.str(uid)
	w.str("nsp")
	w.str(nsp)
	return w.bytes(), nil
}

// encodeClusterRooms builds SOCKETS_JOIN or SOCKETS_LEAVE.
func encodeClusterRooms(typ int, uid, nsp string, opts adapter.BroadcastOptions, rooms []string) []byte {
	d := newJSONMsg(64 + stringsLen(rooms) + stringsLen(opts.Rooms) + stringsLen(opts.Except))
	d.key("opts")
	d.b = appendClusterOpts(d.b, opts)
	d.strs("rooms", rooms)
	return clusterJSON(typ, d.bytes(), uid, nsp)
}

// encodeClusterDisconnect builds DISCONNECT_SOCKETS.
func encodeClusterDisconnect(uid, nsp string, opts adapter.BroadcastOptions, close bool) []byte {
	d := newJSONMsg(64 + stringsLen(opts.Rooms) + stringsLen(opts.Except))
	d.key("opts")
	d.b = appendClusterOpts(d.b, opts)
	d.boolean("close", close)
	return clusterJSON(msgDisconnectSockets, d.bytes(), uid, nsp)
}

// encodeClusterFetch builds FETCH_SOCKETS.
func encodeClusterFetch(uid, nsp, requestID string, opts adapter.BroadcastOptions) []byte {
	d := newJSONMsg(64 + stringsLen(opts.Rooms) + stringsLen(opts.Except))
	d.key("opts")
	d.b = appendClusterOpts(d.b, opts)
	d.str("requestId", requestID)
	return clusterJSON(msgFetchSockets, d.bytes(), uid, nsp)
}

// encodeClusterServerSideEmit builds SERVER_SIDE_EMIT; requestID is empty
// when no answer is wanted.
func encodeClusterServerSideEmit(uid, nsp, requestID string, args []byte) []byte {
	d := newJSONMsg(32 + len(args))
	if requestID != "" {
		d.str("requestId", requestID)
	}
	d.raw("packet", args)
	return clusterJSON(msgServerSideEmit, d.bytes(), uid, nsp)
}

// encodeClusterAck builds the BROADCAST_ACK carrying one client's answer.
func encodeClusterAck(uid, nsp, requestID string, arg parser.Raw) ([]byte, error) {
	j := arg.JSON
	if len(bytes.TrimSpace(j)) == 0 {
		j = []byte("null")
	}
	if len(arg.Attachments) == 0 {
		d := newJSONMsg(32 + len(j))
		d.str("requestId", requestID)
		d.raw("packet", j)
		return clusterJSON(msgBroadcastAck, d.bytes(), uid, nsp), nil
	}
	w := getWriter(64 + len(uid) + len(nsp) + len(j) + attachmentsLen(arg.Attachments))
	w.mapLen(4)
	w.str("type")
	w.number(msgBroadcastAck)
	w.str("data")
	w.mapLen(2)
	w.str("requestId")
	w.str(requestID)
	w.str("packet")
	if err := w.json(j, arg.Attachments); err != nil {
		w.bytes()
		return nil, err
	}
	w.str("uid")
	w.str(uid)
	w.str("nsp")
	w.str(nsp)
	return w.bytes(), nil
}

// ---------------------------------------------------------------- in

// clusterMsg is a ClusterMessage received from another node.
type clusterMsg struct {
	typ  int
	uid  string
	nsp  string
	data clusterData
	// packet is data.packet: JSON, or (mp set) its raw msgpack, where
	// binary values must survive.
	packet []byte
	mp     bool
}

// clusterData holds the members of a message's data that are not its
// packet.
type clusterData struct {
	RequestID   string          `json:"requestId"`
	Opts        *clusterOpts    `json:"opts"`
	Rooms       roomList        `json:"rooms"`
	Close       bool            `json:"close"`
	Sockets     json.RawMessage `json:"sockets"`
	ClientCount int             `json:"clientCount"`
	Packet      json.RawMessage `json:"packet"`
	// Error is set in answers that replace one the answering node could
	// not send (answerError); Node ignores it.
	Error json.RawMessage `json:"error"`
}

type clusterOpts struct {
	Rooms  roomList                   `json:"rooms"`
	Except roomList                   `json:"except"`
	Flags  map[string]json.RawMessage `json:"flags"`
}

// options returns the selection of a request with its flags; values of an
// unexpected type are ignored rather than failing the message.
func (o *clusterOpts) options() adapter.BroadcastOptions {
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

// maxFlagTimeout bounds the timeout a peer may ask for (a timer and an
// entry live that long).
const maxFlagTimeout = 24 * 3600 * 1000

// flagTimeout reads flags.timeout, in milliseconds; 0 when absent or
// unusable.
func flagTimeout(v json.RawMessage) time.Duration {
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || !(f > 0) {
		return 0
	}
	return time.Duration(min(f, maxFlagTimeout) * 1e6)
}

var errNotClusterMessage = errors.New("redis: not a cluster message")

// decodeClusterMsg decodes a message: JSON when it starts with '{',
// msgpack otherwise (Node's test). The members of a msgpack data but its
// packet are transcoded to JSON, binary as Node's Buffer JSON.
func decodeClusterMsg(msg []byte) (*clusterMsg, error) {
	if len(msg) > 0 && msg[0] == '{' {
		return decodeClusterJSON(msg)
	}
	m := new(clusterMsg)
	r := getReader(msg)
	defer putReader(r)
	typ, hasNsp := int64(-1), false
	ok, err := r.mapKeys(func(key []byte) error {
		var err error
		switch string(key) {
		case "type":
			var ok bool
			if typ, ok, err = r.intValue(); !ok {
				typ = -1
			}
		case "uid":
			m.uid, _, err = r.str()
		case "nsp":
			m.nsp, hasNsp, err = r.str()
		case "data":
			js := []byte{'{'}
			if _, err := r.mapKeys(func(key []byte) error {
				if string(key) == "packet" {
					var err error
					m.packet, err = r.span()
					m.mp = true
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
			}); err != nil {
				return err
			}
			// The transcoder writes valid JSON: read without validating again.
			return m.data.fromJSON(append(js, '}'))
		default:
			err = r.skip(0)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok || !r.done() || typ < 0 || !hasNsp {
		return nil, errNotClusterMessage
	}
	m.typ = int(typ)
	return m, nil
}

// event returns the EVENT of a BROADCAST: its data array as Socket.IO
// JSON, with placeholders for its attachments.
func (m *clusterMsg) event() (data []byte, atts [][]byte, err error) {
	if m.mp {
		r := getReader(m.packet)
		defer putReader(r)
		_, data, atts, err = r.eventPacket()
		return data, atts, err
	}
	data, err = jsonEvent(m.packet)
	return data, nil, err
}

// ackValue returns the client answer of a BROADCAST_ACK.
func (m *clusterMsg) ackValue() (parser.Raw, error) {
	if m.mp {
		r := getReader(m.packet)
		defer putReader(r)
		js, atts, err := r.toJSON(nil, nil, binPlaceholder)
		if err != nil {
			return parser.Raw{}, err
		}
		return parser.Raw{JSON: js, Attachments: atts}, nil
	}
	if len(m.packet) == 0 {
		return parser.Raw{JSON: json.RawMessage("null")}, nil
	}
	return parser.Raw{JSON: m.packet}, nil
}

// jsonPacket returns the packet of a SERVER_SIDE_EMIT or its response as
// JSON, binary as Node's Buffer JSON (what a listener of this node
// receives in place of a Buffer).
func (m *clusterMsg) jsonPacket() (json.RawMessage, error) {
	if m.mp {
		r := getReader(m.packet)
		defer putReader(r)
		js, _, err := r.toJSON(nil, nil, binBufferJSON)
		return js, err
	}
	if len(m.packet) == 0 {
		return json.RawMessage("null"), nil
	}
	return m.packet, nil
}

// jsLength is a string's length in JavaScript (UTF-16 code units): Node
// takes every room whose name has 20 of them for a socket id.
func jsLength(s string) int {
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
