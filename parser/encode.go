package parser

import "strconv"

// AppendEncode appends the text form of p to dst and returns the extended
// slice: <type>[<attachments>-][<nsp>,][<id>][<data>], exactly as the
// reference encoder writes it. The namespace is written only when it is
// neither "" nor "/", and then always followed by ','. An EVENT or ACK with
// attachments is written as BINARY_EVENT or BINARY_ACK; the attachment count
// is len(p.Attachments). Data is copied verbatim and must be valid for the
// packet type (see AppendValues).
//
// The attachments themselves are not written: the caller sends each of them
// as a separate binary Engine.IO message after the text.
//
// AppendEncode is safe for concurrent use (p is only read).
func AppendEncode(dst []byte, p *Packet) []byte {
	t := p.Type
	if len(p.Attachments) > 0 {
		switch t {
		case Event:
			t = BinaryEvent
		case Ack:
			t = BinaryAck
		}
	}
	if t < 10 {
		dst = append(dst, '0'+byte(t))
	} else {
		dst = strconv.AppendUint(dst, uint64(t), 10)
	}
	if t == BinaryEvent || t == BinaryAck {
		dst = strconv.AppendUint(dst, uint64(len(p.Attachments)), 10)
		dst = append(dst, '-')
	}
	if p.Nsp != "" && p.Nsp != "/" {
		dst = append(dst, p.Nsp...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}
