package engineio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// readMessage reads the next data message of w, enforcing what gorilla
// does not:
//
//   - The size limit applies to the message as the application sees it.
//     gorilla's read limit (SetReadLimit, set to MaxPayload) counts frame
//     payload bytes, which for a compressed message are the deflated ones:
//     200 KiB of them can inflate to gigabytes. The inflated bytes are read
//     through a limit of MaxPayload+1; past it, errTooLarge (close code
//     1009, "message too big"). Uncompressed messages hit gorilla's limit
//     first, at exactly MaxPayload, as before.
//   - A text message must be valid UTF-8 (RFC 6455 §8.1); otherwise
//     errInvalidUTF8 (close code 1007), as Node's ws answers.
//
// On either error it records the close code for the goodbye frame.
func (w *wsConn) readMessage(max int64) (int, []byte, error) {
	mt, r, err := w.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	data, err := readMessageBytes(r, max)
	if errors.Is(err, errTooLarge) {
		w.closeCode.Store(websocket.CloseMessageTooBig)
		return 0, nil, err
	}
	if err != nil {
		return 0, nil, err
	}
	if mt == websocket.TextMessage && !utf8.Valid(data) {
		w.closeCode.Store(websocket.CloseInvalidFramePayloadData)
		return 0, nil, errInvalidUTF8
	}
	return mt, data, nil
}

// readCloseReason maps a WebSocket read error to a close reason: the peer
// going away is "transport close", anything else "transport error".
func readCloseReason(err error) (string, error) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) {
		return ReasonTransportClose, nil
	}
	return ReasonTransportError, err
}

// smallMessage is the size of the pooled buffer a message is first read
// into: one that fits is kept as an exact copy, one allocation of its own
// size (readAtMost would start at minReadBuffer, and most messages are far
// smaller).
const smallMessage = 2 << 10

var smallMessages = sync.Pool{New: func() any {
	b := make([]byte, smallMessage)
	return &b
}}

// readMessageBytes reads r to EOF as readAtMost does, at most max bytes.
func readMessageBytes(r io.Reader, max int64) ([]byte, error) {
	sp := smallMessages.Get().(*[]byte)
	defer smallMessages.Put(sp)
	buf := *sp
	if int64(len(buf)) > max+1 {
		buf = buf[:max+1]
	}
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			if int64(n) > max {
				return nil, errTooLarge
			}
			return bytes.Clone(buf[:n]), nil
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(n) > max {
		return nil, errTooLarge
	}
	// Larger: the rest as readAtMost reads it, then both in one slice.
	rest, err := readAtMost(r, max-int64(n), -1)
	if err != nil {
		return nil, err
	}
	out := make([]byte, n+len(rest))
	copy(out, buf[:n])
	copy(out[n:], rest)
	return out, nil
}
