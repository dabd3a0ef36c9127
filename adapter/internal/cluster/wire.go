package cluster

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// Socket.IO packet types a broadcast may carry.
const (
	PacketEvent       = 2
	PacketBinaryEvent = 5
)

func AttachmentsLen(atts [][]byte) int {
	n := 0
	for _, a := range atts {
		n += len(a) + 5
	}
	return n
}

func StringsLen(list []string) int {
	n := 0
	for _, s := range list {
		n += len(s) + 5
	}
	return n
}

// Opts writes {rooms, except, flags}; flags hold what Node's broadcast
// operator would carry (never local: local broadcasts are not published).
func (w *Writer) Opts(o adapter.BroadcastOptions) {
	w.MapLen(3)
	w.Str("rooms")
	w.Strs(o.Rooms)
	w.Str("except")
	w.Strs(o.Except)
	w.Str("flags")
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
	w.MapLen(n)
	if f.ExpectSingleResponse {
		w.Str("expectSingleResponse")
		w.Boolean(true)
	}
	if f.Volatile {
		w.Str("volatile")
		w.Boolean(true)
	}
	if f.Compress != nil {
		w.Str("compress")
		w.Boolean(*f.Compress)
	}
	if f.Timeout > 0 {
		w.Str("timeout")
		w.Number(float64(f.Timeout) / 1e6) // milliseconds
	}
}

// JSONMsg builds the JSON messages (every request and response but
// BROADCAST and BROADCAST_ACK) with the keys in Node's order.
type JSONMsg struct{ B []byte }

func NewJSONMsg(size int) *JSONMsg { return &JSONMsg{B: append(make([]byte, 0, size), '{')} }

func (m *JSONMsg) Key(k string) {
	if len(m.B) > 1 {
		m.B = append(m.B, ',')
	}
	m.B = AppendJSStringText(m.B, k)
	m.B = append(m.B, ':')
}

func (m *JSONMsg) Str(k, v string) {
	m.Key(k)
	m.B = AppendJSStringText(m.B, v)
}

func (m *JSONMsg) Int(k string, v int) {
	m.Key(k)
	m.B = strconv.AppendInt(m.B, int64(v), 10)
}

func (m *JSONMsg) Boolean(k string, v bool) {
	m.Key(k)
	m.B = strconv.AppendBool(m.B, v)
}

func (m *JSONMsg) Raw(k string, v json.RawMessage) {
	m.Key(k)
	if len(v) == 0 {
		v = json.RawMessage("null")
	}
	m.B = append(m.B, v...)
}

func (m *JSONMsg) Strs(k string, list []string) {
	m.Key(k)
	m.B = appendStrings(m.B, list)
}

// Opts writes {"rooms":[…],"except":[…]}.
func (m *JSONMsg) Opts(o adapter.BroadcastOptions) {
	m.Key("opts")
	m.B = append(m.B, `{"rooms":`...)
	m.B = appendStrings(m.B, o.Rooms)
	m.B = append(m.B, `,"except":`...)
	m.B = appendStrings(m.B, o.Except)
	m.B = append(m.B, '}')
}

func (m *JSONMsg) Bytes() []byte { return append(m.B, '}') }

func appendStrings(dst []byte, list []string) []byte {
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSStringText(dst, s)
	}
	return append(dst, ']')
}

// ValidEvent reports whether data, a compact JSON array written by the
// transcoder, is an EVENT a client accepts: its first element is a number,
// or a string that is not a reserved event name (the client would drop the
// connection).
func ValidEvent(data []byte) bool {
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
		if name, err = Unquote(nil, data[1:end]); err != nil {
			return false
		}
	}
	return !parser.IsReservedEvent(string(name))
}

// ---------------------------------------------------------------- in: requests and responses

// RoomList reads an array of rooms, accepting the numbers Node allows as
// room names.
type RoomList []string

func (l *RoomList) UnmarshalJSON(b []byte) error {
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
			out = append(out, JSNumberKey(f))
		}
	}
	*l = out
	return nil
}

// EventPacket reads a packet map {type, data, nsp} that must be an EVENT
// (or BINARY_EVENT) with a valid event array; data becomes Socket.IO JSON
// with binary placeholders. A missing nsp is "/", as Node takes it; one that
// is not a string matches no namespace.
func (r *Reader) EventPacket() (nsp string, data []byte, atts [][]byte, err error) {
	nsp = "/"
	typ := int64(-1)
	ok, err := r.MapKeys(func(key []byte) error {
		var err error
		switch string(key) {
		case "type":
			var ok bool
			if typ, ok, err = r.IntValue(); !ok {
				typ = -1
			}
		case "data":
			c, err := r.Peek()
			if err != nil {
				return err
			}
			if !IsArrayCode(c) {
				return r.Skip(0)
			}
			data, atts, err = r.ToJSON(nil, nil, BinPlaceholder)
			return err
		case "nsp":
			var isStr bool
			if nsp, isStr, err = r.Str(); !isStr {
				nsp = "\x00" // matches no namespace
			}
		default:
			err = r.Skip(0)
		}
		return err
	})
	if err != nil {
		return "", nil, nil, err
	}
	if !ok || data == nil || (typ != PacketEvent && typ != PacketBinaryEvent) || !ValidEvent(data) {
		return "", nil, nil, ErrNotAnEvent
	}
	return nsp, data, atts, nil
}

// WireSocket is one socket of a REMOTE_FETCH response.
type WireSocket struct {
	ID        string          `json:"id"`
	Handshake json.RawMessage `json:"handshake"`
	Rooms     RoomList        `json:"rooms"`
	Data      json.RawMessage `json:"data"`
}

// AppendRawArray appends the JSON array of args (null for an empty one).
func AppendRawArray(dst []byte, args []json.RawMessage) []byte {
	dst = append(dst, '[')
	for i, v := range args {
		if i > 0 {
			dst = append(dst, ',')
		}
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		dst = append(dst, v...)
	}
	return append(dst, ']')
}
