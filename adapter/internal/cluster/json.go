package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

// The JSON ClusterMessages are read without encoding/json: the message is
// validated once, then its members are cut out of it. Decoding through
// structs validated the packet's data four times and cost some 10 µs for a
// chat message (27 µs for 1 KiB), which capped a node's receiving rate
// well under the classic adapter's.

var errNotObject = errors.New("redis: JSON value is not an object")

// DecodeJSON decodes a JSON ClusterMessage.
func DecodeJSON(msg []byte) (*Message, error) {
	var sc jsonscan.Scanner
	if _, _, err := sc.Whole(msg); err != nil {
		return nil, err
	}
	m := new(Message)
	hasType, hasNsp := false, false
	err := eachMember(msg, func(key, val []byte) error {
		switch string(key) {
		case "type":
			m.Typ, hasType = jsonInt(val)
		case "uid":
			m.Uid, _ = jsonStr(val)
		case "nsp":
			m.Nsp, hasNsp = jsonStr(val)
		case "data":
			if val[0] == '{' {
				return m.Data.fromJSON(val)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !hasType || !hasNsp {
		return nil, ErrNotClusterMessage
	}
	m.Packet = m.Data.Packet
	return m, nil
}

// fromJSON reads the members of a message's data (a valid JSON object).
func (d *clusterData) fromJSON(obj []byte) error {
	return eachMember(obj, func(key, val []byte) error {
		switch string(key) {
		case "requestId":
			d.RequestID, _ = jsonStr(val)
		case "opts":
			if val[0] != '{' {
				d.Opts = nil
				return nil
			}
			d.Opts = new(Opts)
			return d.Opts.fromJSON(val)
		case "rooms":
			d.Rooms = jsonRooms(val)
		case "close":
			d.Close = string(val) == "true"
		case "sockets":
			d.Sockets = json.RawMessage(val)
		case "clientCount":
			d.ClientCount, _ = jsonInt(val)
		case "packet":
			d.Packet = json.RawMessage(val)
		case "error":
			d.Error = json.RawMessage(val)
		}
		return nil
	})
}

// fromJSON reads {rooms, except, flags} (a valid JSON object).
func (o *Opts) fromJSON(obj []byte) error {
	return eachMember(obj, func(key, val []byte) error {
		switch string(key) {
		case "rooms":
			o.Rooms = jsonRooms(val)
		case "except":
			o.Except = jsonRooms(val)
		case "flags":
			if val[0] != '{' {
				return nil
			}
			o.Flags = make(map[string]json.RawMessage, 4)
			return eachMember(val, func(key, val []byte) error {
				o.Flags[string(key)] = json.RawMessage(val)
				return nil
			})
		}
		return nil
	})
}

// eachMember calls fn for every member of obj, a valid JSON object, with
// its key unquoted and its value without surrounding whitespace (both
// aliasing obj). A later member of the same key comes later, as the one
// encoding/json keeps.
func eachMember(obj []byte, fn func(key, val []byte) error) error {
	i := jsonscan.SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errNotObject
	}
	i = jsonscan.SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for i < len(obj) && obj[i] == '"' {
		kEnd, escaped, err := jsonscan.ScanString(obj, i)
		if err != nil {
			return err
		}
		key := obj[i+1 : kEnd-1]
		if escaped || !utf8.Valid(key) {
			if key, err = jsonscan.Unquote(nil, obj[i:kEnd]); err != nil {
				return err
			}
		}
		i = jsonscan.SkipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return ErrBadEnvelope
		}
		i = jsonscan.SkipSpace(obj, i+1)
		end := skipValid(obj, i)
		if end <= i {
			return ErrBadEnvelope
		}
		if err := fn(key, obj[i:end]); err != nil {
			return err
		}
		i = jsonscan.SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return nil // '}'
		}
		i = jsonscan.SkipSpace(obj, i+1)
	}
	return nil
}

// skipValid returns the end of the JSON value at d[i], which the caller
// validated: strings are skipped with their escapes, containers by their
// depth.
func skipValid(d []byte, i int) int {
	if i >= len(d) {
		return i
	}
	switch d[i] {
	case '"':
		end, _, _ := jsonscan.ScanString(d, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				end, _, _ := jsonscan.ScanString(d, j)
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(d)
	}
	j := i
	for j < len(d) && d[j] != ',' && d[j] != '}' && d[j] != ']' && !jsonscan.IsSpace(d[j]) {
		j++
	}
	return j
}

// jsonStr returns the text of a JSON string value; false for other values.
// Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func jsonStr(val []byte) (string, bool) {
	if len(val) < 2 || val[0] != '"' {
		return "", false
	}
	s := val[1 : len(val)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), true
	}
	u, err := jsonscan.Unquote(nil, val)
	if err != nil {
		return "", false
	}
	return string(u), true
}

// jsonInt returns an integral JSON number; false for other values.
func jsonInt(val []byte) (int, bool) {
	if len(val) == 0 || (val[0] != '-' && !jsonscan.IsDigit(val[0])) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(val), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int(f), true
}

// jsonRooms reads an array of rooms, accepting the numbers Node allows as
// room names (as roomList does); other elements are skipped.
func jsonRooms(val []byte) []string {
	if val[0] != '[' {
		return nil
	}
	var buf [8][]byte
	elems, err := jsonscan.AppendElements(buf[:0], val)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		switch {
		case e[0] == '"':
			if s, ok := jsonStr(e); ok {
				out = append(out, s)
			}
		case e[0] == '-' || jsonscan.IsDigit(e[0]):
			f, err := strconv.ParseFloat(string(e), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				continue
			}
			out = append(out, JSNumberKey(f))
		}
	}
	return out
}

// jsonEvent reads a BROADCAST's packet, {type, data}: data, when it is an
// EVENT a client accepts.
func jsonEvent(packet []byte) ([]byte, error) {
	if len(packet) == 0 || packet[0] != '{' {
		return nil, ErrNotAnEvent
	}
	typ, ok := -1, false
	var data []byte
	if err := eachMember(packet, func(key, val []byte) error {
		switch string(key) {
		case "type":
			if typ, ok = jsonInt(val); !ok {
				typ = -1
			}
		case "data":
			data = val
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if data == nil || (typ != PacketEvent && typ != PacketBinaryEvent) {
		return nil, ErrNotAnEvent
	}
	if !ValidEvent(data) {
		// Not compact (Node's JSON.stringify is): compact it and look again.
		var buf bytes.Buffer
		if json.Compact(&buf, data) != nil || !ValidEvent(buf.Bytes()) {
			return nil, ErrNotAnEvent
		}
		return buf.Bytes(), nil
	}
	// data aliases the message: dispatch gives each adapter a copy of its
	// own.
	return data, nil
}
