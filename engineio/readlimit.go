package engineio

import (
	"errors"
	"io"
)

// errTooLarge reports a message or body larger than Config.MaxPayload.
var errTooLarge = errors.New("engineio: payload too large")

// minReadBuffer is the first buffer readAtMost allocates.
const minReadBuffer = 512

// readAtMost reads r to EOF, failing with errTooLarge as soon as more than
// max bytes have arrived. It reads the bytes as they arrive into a buffer
// that doubles when full, so memory follows what the peer actually sent,
// never what it announced: at most twice what was received, and never more
// than max+1 bytes. hint is the announced length, or -1; it only caps the
// growth (a buffer never grows past hint+1, so an honest body of n bytes
// ends in a buffer of n+1).
//
// The WebSocket reader uses it for the inflated bytes of a compressed
// message, whose size is unknown until they are inflated; polling for POST
// bodies, whose Content-Length a client may announce and never send.
func readAtMost(r io.Reader, max, hint int64) ([]byte, error) {
	limit := max + 1 // one byte past max tells "too large" from "exactly max"
	if hint >= 0 && hint+1 < limit {
		limit = hint + 1
	}
	size := min(int64(minReadBuffer), limit)
	buf := make([]byte, 0, size)
	lr := io.LimitedReader{R: r, N: max + 1}
	for {
		if len(buf) == cap(buf) {
			size = min(2*int64(cap(buf)), max+1)
			if int64(len(buf)) < limit {
				size = min(size, limit)
			}
			if size <= int64(cap(buf)) {
				// Only reachable past max (limit ≤ max+1 was filled and
				// the body went on): stop before reading more.
				break
			}
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			buf = grown
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > max {
		return nil, errTooLarge
	}
	return buf, nil
}
