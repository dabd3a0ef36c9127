package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// Engine.IO v4 packet type digits.
const (
	typeOpen    byte = '0'
	typeClose   byte = '1'
	typePing    byte = '2'
	typePong    byte = '3'
	typeMessage byte = '4'
	typeUpgrade byte = '5'
	typeNoop    byte = '6'
)

// recordSeparator joins the packets of a polling payload.
const recordSeparator byte = 0x1e

// errParse is wrapped by every decoding error.
var errParse = errors.New("engineio: parse error")

// packet is one decoded Engine.IO packet.
type packet struct {
	typ    byte // '0'..'6'; binary messages have typeMessage
	binary bool
	data   []byte
}

// decodePacket decodes one text-encoded packet: a type digit followed by the
// payload, or "b" followed by the base64 of a binary message. The returned
// text data aliases b, with its capacity capped so that appending to it
// cannot overwrite what follows b; binary data is freshly allocated.
func decodePacket(b []byte) (packet, error) {
	if len(b) == 0 {
		return packet{}, fmt.Errorf("%w: empty packet", errParse)
	}
	switch c := b[0]; {
	case c == 'b':
		data, err := decodeBase64(b[1:])
		if err != nil {
			return packet{}, err
		}
		return packet{typ: typeMessage, binary: true, data: data}, nil
	case c >= typeOpen && c <= typeNoop:
		return packet{typ: c, data: b[1:len(b):len(b)]}, nil
	default:
		return packet{}, fmt.Errorf("%w: unknown packet type %q", errParse, c)
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
			return nil, fmt.Errorf("%w: invalid base64 in binary packet", errParse)
		}
	}
	return dst[:n:n], nil
}

// decodePayload splits a polling payload at the record separator and
// appends the decoded packets to dst. On error it returns the packets decoded
// before the bad one along with the error, so that they can still be
// processed in order (as Node does).
func decodePayload(payload []byte, dst []packet) ([]packet, error) {
	for {
		i := bytes.IndexByte(payload, recordSeparator)
		seg := payload
		if i >= 0 {
			seg = payload[:i]
		}
		p, err := decodePacket(seg)
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

// appendPayload appends the polling encoding of msgs, joined by the record
// separator.
func appendPayload(dst []byte, msgs []*Message) []byte {
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		dst = m.appendPolling(dst)
	}
	return dst
}
