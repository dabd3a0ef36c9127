package parser

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

// Decode decodes the text form of one packet (the content of an Engine.IO
// message, without Engine.IO's leading '4').
//
// For BINARY_EVENT and BINARY_ACK packets, attachments is the number of
// binary messages announced by the header (at most maxAttachments; zero or
// negative selects DefaultMaxAttachments) and p.Attachments is nil: the
// caller collects them, or uses a Decoder, which does. Every placeholder in
// the payload is checked to name an attachment below that count.
//
// p.Data aliases text. Errors match ErrInvalidPacket (and
// ErrTooManyAttachments when the count is over the limit).
//
// Decode is safe for concurrent use.
func Decode(text []byte, maxAttachments int) (p *Packet, attachments int, err error) {
	var s decodeScratch
	p = new(Packet)
	attachments, err = decodeText(text, maxAttachments, p, &s)
	if err != nil {
		return nil, 0, err
	}
	return p, attachments, nil
}

// Decoder reassembles packets from a sequence of Engine.IO messages: the text
// header of a binary packet is followed by its attachments, one binary message
// each.
//
// The zero value is ready to use. A Decoder is not safe for concurrent use;
// use one per connection.
type Decoder struct {
	// MaxAttachments bounds the number of attachments a packet may announce.
	// Zero or negative means DefaultMaxAttachments.
	MaxAttachments int

	pending *Packet // binary packet waiting for attachments
	want    int     // number of attachments pending needs in total
	scratch decodeScratch
}

// decodeScratch is what decodeText reuses between the packets of a Decoder.
type decodeScratch struct {
	scan jsonscan.Scanner
	nsp  string // the last namespace seen, reused to save an allocation
}

// Add feeds one Engine.IO message to the decoder: binary reports whether it
// arrived as a binary message. It returns the completed packet, or (nil, nil)
// while attachments of a binary packet are still expected.
//
// A binary message when no attachment is expected, a text message while
// attachments are expected, an attachment count over MaxAttachments and any
// malformed packet are errors (all matching ErrInvalidPacket); after an error
// the decoder is reset and may be used for further messages.
//
// The returned packet keeps references to data and to the binary messages
// (Data, and each of Attachments, alias them): the caller hands over their
// ownership and must not modify them afterwards.
func (d *Decoder) Add(data []byte, binary bool) (*Packet, error) {
	if binary {
		p := d.pending
		if p == nil {
			return nil, &packetError{kind: ErrUnexpectedBinary, msg: "no attachment is expected"}
		}
		p.Attachments = append(p.Attachments, data)
		if len(p.Attachments) < d.want {
			return nil, nil
		}
		d.pending, d.want = nil, 0
		return p, nil
	}
	if d.pending != nil {
		missing := d.want - len(d.pending.Attachments)
		d.Reset()
		return nil, invalid("text message while " + strconv.Itoa(missing) + " attachment(s) are still expected")
	}
	p := new(Packet)
	n, err := decodeText(data, d.MaxAttachments, p, &d.scratch)
	if cap(d.scratch.scan.Placeholders) > 1024 {
		d.scratch.scan.Placeholders = nil // do not pin a huge scratch buffer
	}
	if err != nil {
		return nil, err
	}
	if n > 0 {
		p.Attachments = make([][]byte, 0, n)
		d.pending, d.want = p, n
		return nil, nil
	}
	return p, nil
}

// Reset discards a partially received binary packet, if any.
func (d *Decoder) Reset() {
	d.pending, d.want = nil, 0
}

// decodeText parses the text form of a packet into p, following the
// reference Decoder.decodeString rules, and returns the announced attachment
// count. It uses s as scratch space (s.nsp caches the last namespace).
func decodeText(text []byte, maxAttachments int, p *Packet, s *decodeScratch) (int, error) {
	if maxAttachments <= 0 {
		maxAttachments = DefaultMaxAttachments
	}
	if len(text) == 0 {
		return 0, invalid("empty packet")
	}
	c := text[0]
	if c < '0' || c > '6' {
		return 0, invalid("unknown packet type " + jsonscan.QuoteChar(c))
	}
	p.Type = Type(c - '0')
	binary := p.Type == BinaryEvent || p.Type == BinaryAck
	i, n := 1, 0

	if binary {
		start, tooMany := i, false
		for ; i < len(text) && jsonscan.IsDigit(text[i]); i++ {
			if !tooMany {
				n = n*10 + int(text[i]-'0')
				tooMany = n > maxAttachments
			}
		}
		if i == start {
			return 0, invalid("missing attachment count")
		}
		if i == len(text) || text[i] != '-' {
			return 0, invalid("attachment count not followed by '-'")
		}
		if tooMany {
			return 0, &packetError{kind: ErrTooManyAttachments,
				msg: string(text[start:i]) + " announced, at most " + strconv.Itoa(maxAttachments) + " allowed"}
		}
		i++
	}

	p.Nsp = "/"
	if i < len(text) && text[i] == '/' {
		start := i
		for i < len(text) && text[i] != ',' {
			i++
		}
		if nsp := text[start:i]; string(nsp) == s.nsp {
			p.Nsp = s.nsp
		} else if string(nsp) != "/" {
			p.Nsp = string(nsp)
			s.nsp = p.Nsp
		}
		if i < len(text) {
			i++ // the ',' ends the namespace and is not part of it
		}
	}

	if i < len(text) && jsonscan.IsDigit(text[i]) {
		var id uint64
		for ; i < len(text) && jsonscan.IsDigit(text[i]); i++ {
			d := uint64(text[i] - '0')
			if id > (math.MaxUint64-d)/10 {
				return 0, invalid("ack id overflows uint64")
			}
			id = id*10 + d
		}
		p.ID, p.HasID = id, true
	}

	if i == len(text) {
		switch p.Type {
		case Event, Ack, BinaryEvent, BinaryAck:
			return 0, invalid(p.Type.String() + " without payload")
		}
		return n, nil
	}
	data := text[i:]
	s.scan.FindPlaceholders = binary
	start, end, err := s.scan.Whole(data)
	if err != nil {
		return 0, invalidJSON("payload is not valid JSON", err)
	}
	if err := checkPayload(p.Type, data[start:end]); err != nil {
		return 0, err
	}
	for _, ref := range s.scan.Placeholders {
		if !ref.Names(n) {
			return 0, invalid("placeholder at offset " + strconv.Itoa(i+ref.Start) + " does not name one of the " +
				strconv.Itoa(n) + " attachment(s)")
		}
	}
	p.Data = data[start:end:end]
	return n, nil
}

// checkPayload applies the per-type payload rules to a valid JSON value.
func checkPayload(t Type, v []byte) error {
	switch t {
	case Connect:
		if v[0] != '{' {
			return invalid("CONNECT payload must be an object")
		}
	case Disconnect:
		return invalid("DISCONNECT must not have a payload")
	case ConnectError:
		if v[0] != '{' && v[0] != '"' {
			return invalid("CONNECT_ERROR payload must be a string or an object")
		}
	case Ack, BinaryAck:
		if v[0] != '[' {
			return invalid(t.String() + " payload must be an array")
		}
	case Event, BinaryEvent:
		if v[0] != '[' {
			return invalid(t.String() + " payload must be an array")
		}
		i := jsonscan.SkipSpace(v, 1)
		switch c := v[i]; {
		case c == ']':
			return invalid(t.String() + " payload must not be empty")
		case c == '-' || jsonscan.IsDigit(c):
			// numeric event names are accepted
		case c == '"':
			end, escaped, _ := jsonscan.ScanString(v, i)
			name := v[i+1 : end-1]
			if escaped {
				var s string
				_ = json.Unmarshal(v[i:end], &s) // v is valid JSON
				name = []byte(s)
			}
			if isReserved(name) {
				return invalid("reserved event name " + strconv.Quote(string(name)))
			}
		default:
			return invalid("event name must be a string or a number")
		}
	}
	return nil
}

// isReserved is IsReservedEvent for a byte slice, without allocating.
func isReserved(name []byte) bool {
	switch string(name) {
	case "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener":
		return true
	}
	return false
}
