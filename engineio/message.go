package engineio

import (
	"encoding/binary"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// Message is one Engine.IO packet queued for sending — almost always a
// "message" packet made by NewMessage. It is immutable once made and may be
// shared by any number of connections: a broadcast creates one Message and
// sends it to every recipient. Its WebSocket frame is built once, on first
// use, and reused by every connection (websocket.PreparedMessage).
type Message struct {
	typ    byte // packet type digit, typeMessage for NewMessage
	binary bool
	data   []byte

	wsOnce sync.Once
	ws     *websocket.PreparedMessage
	wsErr  error

	frameOnce sync.Once
	frame     []byte
	room      []byte // from NewMessageAt: the buffer, with the headroom before data for the frame's head
}

// NewMessage returns a "message" packet carrying data. It takes ownership
// of data: the caller must not modify it afterwards. binary selects a binary
// message (a binary WebSocket frame, or "b"+base64 in polling); otherwise
// data is sent as text. Text that is not valid UTF-8 is sent with each
// invalid sequence replaced by U+FFFD, as Node's Buffer.toString does
// (Data returns the replaced text): invalid text on the wire would make a
// browser fail the whole WebSocket. Valid text is neither copied nor
// scanned more than once.
func NewMessage(data []byte, binary bool) *Message {
	if !binary {
		data = toValidUTF8(data)
	}
	return &Message{typ: typeMessage, binary: binary, data: data}
}

// MessageHeadroom is how many bytes a buffer given to NewMessageAt has
// before its data: room for a WebSocket frame header and the packet type,
// so that the frame is made in place rather than in a copy.
const MessageHeadroom = 11

// NewMessageAt is NewMessage of buf[MessageHeadroom:], for a producer that
// encodes straight after MessageHeadroom free bytes: the message takes
// ownership of the whole of buf, and its WebSocket frame is written in the
// headroom, in front of the data, instead of being copied. buf must be at
// least MessageHeadroom long.
func NewMessageAt(buf []byte, binary bool) *Message {
	data := buf[MessageHeadroom:]
	m := NewMessage(data, binary)
	if len(m.data) == len(data) && (len(data) == 0 || &m.data[0] == &data[0]) {
		m.room = buf
	}
	return m
}

// newPacket returns an internal (non-message) text packet.
func newPacket(typ byte, data string) *Message {
	return &Message{typ: typ, data: []byte(data)}
}

// Shared control packets; their WebSocket frames are prepared once per process.
var (
	pingPacket  = newPacket(typePing, "")
	noopPacket  = newPacket(typeNoop, "")
	closePacket = newPacket(typeClose, "")
	probePacket = newPacket(typePong, "probe")
)

// Data returns the payload. The caller must not modify it.
func (m *Message) Data() []byte { return m.data }

// Binary reports whether m is a binary message.
func (m *Message) Binary() bool { return m.binary }

// prepared returns the WebSocket form of m, building it on first use.
func (m *Message) prepared() (*websocket.PreparedMessage, error) {
	m.wsOnce.Do(func() {
		if m.binary {
			m.ws, m.wsErr = websocket.NewPreparedMessage(websocket.BinaryMessage, m.data)
			return
		}
		b := make([]byte, 1+len(m.data))
		b[0] = m.typ
		copy(b[1:], m.data)
		m.ws, m.wsErr = websocket.NewPreparedMessage(websocket.TextMessage, b)
	})
	return m.ws, m.wsErr
}

// wsFrame returns m as one complete, unmasked WebSocket frame, built on
// first use and shared by every connection that writes it. Connections
// without compression write it straight into their batch buffer: no
// per-connection framing, and none of PreparedMessage's scratch buffers for
// the many messages that go to one connection only.
func (m *Message) wsFrame() []byte {
	m.frameOnce.Do(func() {
		var head [MessageHeadroom]byte
		h := appendFrameHead(head[:0], m.typ, len(m.data), m.binary)
		if m.room != nil {
			// In place: the head ends where the data starts.
			at := MessageHeadroom - len(h)
			copy(m.room[at:], h)
			m.frame = m.room[at:]
			return
		}
		f := make([]byte, 0, len(h)+len(m.data))
		f = append(f, h...)
		m.frame = append(f, m.data...)
	})
	return m.frame
}

// appendFrameHead appends the head of an unmasked, final WebSocket frame of
// a message with n bytes of data: the frame header, then for text the
// packet type digit (counted in the frame's length).
func appendFrameHead(dst []byte, typ byte, n int, bin bool) []byte {
	op := byte(0x81) // FIN + text
	if bin {
		op = 0x82 // FIN + binary
	} else {
		n++ // the type digit
	}
	switch {
	case n <= 125:
		dst = append(dst, op, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, op, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, op, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !bin {
		dst = append(dst, typ)
	}
	return dst
}

// appendPolling appends m's polling encoding: the type digit and the text
// payload, or "b" and the standard padded base64 of a binary payload.
func (m *Message) appendPolling(dst []byte) []byte {
	return eio.AppendText(dst, m.typ, m.data, m.binary)
}
