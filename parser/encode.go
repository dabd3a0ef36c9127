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
	dst = AppendHead(dst, p.Type, p.Nsp, p.ID, p.HasID, len(p.Attachments))
	return append(dst, p.Data...)
}

// AppendHead appends the text form of a packet up to its data: what
// AppendEncode writes before p.Data for a packet of type t to namespace
// nsp, with id when hasID, and atts attachments. An encoder that appends
// the data itself right after it (AppendValues) makes the packet's text in
// one buffer.
func AppendHead(dst []byte, t Type, nsp string, id uint64, hasID bool, atts int) []byte {
	if atts > 0 {
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
		dst = strconv.AppendUint(dst, uint64(atts), 10)
		dst = append(dst, '-')
	}
	if nsp != "" && nsp != "/" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	if hasID {
		dst = strconv.AppendUint(dst, id, 10)
	}
	return dst
}
