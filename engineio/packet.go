package engineio

import "github.com/ioswarm/ioswarm/internal/eio"

// The packet codec is internal/eio's, shared with the client; these names
// keep the server's code short.
const (
	typeOpen    = eio.Open
	typeClose   = eio.Close
	typePing    = eio.Ping
	typePong    = eio.Pong
	typeMessage = eio.Message
	typeUpgrade = eio.Upgrade
	typeNoop    = eio.Noop
)

// recordSeparator joins the packets of a polling payload.
const recordSeparator = eio.RecordSeparator

// errParse is wrapped by every decoding error.
var errParse = eio.ErrParse

// packet is one decoded Engine.IO packet.
type packet = eio.Packet

func decodePacket(b []byte) (packet, error) { return eio.DecodePacket(b) }

func decodePayload(payload []byte, dst []packet) ([]packet, error) {
	return eio.DecodePayload(payload, dst)
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
