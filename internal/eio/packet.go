// Package eio is the Engine.IO v4 packet codec that the server
// (package engineio) and the client (package client) share: packet types,
// the text encoding of one packet, and the polling payload that joins
// packets with a record separator. It knows nothing of connections.
package eio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// Engine.IO v4 packet type digits.
const (
	Open    byte = '0'
	Close   byte = '1'
	Ping    byte = '2'
	Pong    byte = '3'
	Message byte = '4'
	Upgrade byte = '5'
	Noop    byte = '6'
)

// RecordSeparator joins the packets of a polling payload.
const RecordSeparator byte = 0x1e

// ErrParse is wrapped by every decoding error.
var ErrParse = errors.New("engineio: parse error")

// Packet is one decoded Engine.IO packet.
type Packet struct {
	Type   byte // '0'..'6'; binary messages have Message
	Binary bool
	Data   []byte
}

// DecodePacket decodes one text-encoded packet: a type digit followed by the
// payload, or "b" followed by the base64 of a binary message. The returned
// text data aliases b, with its capacity capped so that appending to it
// cannot overwrite what follows b; binary data is freshly allocated.
func DecodePacket(b []byte) (Packet, error) {
	if len(b) == 0 {
		return Packet{}, fmt.Errorf("%w: empty packet", ErrParse)
	}
	switch c := b[0]; {
	case c == 'b':
		data, err := decodeBase64(b[1:])
		if err != nil {
			return Packet{}, err
		}
		return Packet{Type: Message, Binary: true, Data: data}, nil
	case c >= Open && c <= Noop:
		return Packet{Type: c, Data: b[1:len(b):len(b)]}, nil
	default:
		return Packet{}, fmt.Errorf("%w: unknown packet type %q", ErrParse, c)
	}
}

// decodeBase64 accepts standard base64, padded or not (Node is lenient too).
func decodeBase64(src []byte) ([]byte, error) {
	// The unpadded length bound is never smaller than the padded one.
	dst := make([]byte, base64.RawStdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		n, err = base64.RawStdEncoding.Decode(dst, src)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid base64 in binary packet", ErrParse)
		}
	}
	return dst[:n:n], nil
}

// DecodePayload splits a polling payload at the record separator and
// appends the decoded packets to dst. On error it returns the packets decoded
// before the bad one along with the error, so that they can still be
// processed in order (as Node does).
func DecodePayload(payload []byte, dst []Packet) ([]Packet, error) {
	for {
		i := bytes.IndexByte(payload, RecordSeparator)
		seg := payload
		if i >= 0 {
			seg = payload[:i]
		}
		p, err := DecodePacket(seg)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
		if i < 0 {
			return dst, nil
		}
		payload = payload[i+1:]
	}
}

// AppendText appends the text encoding of a packet, as a polling payload
// carries it: the type digit and the data, or "b" and the base64 of a
// binary message.
func AppendText(dst []byte, typ byte, data []byte, binary bool) []byte {
	if binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, data)
	}
	dst = append(dst, typ)
	return append(dst, data...)
}
