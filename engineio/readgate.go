package engineio

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// gateBufSize is the size of the pooled buffer a readGate reads the socket
// into: one read syscall takes in what a busy client sent.
const gateBufSize = 4 << 10

var gatePool = sync.Pool{New: func() any {
	b := make([]byte, gateBufSize)
	return &b
}}

// readGate stands between a WebSocket's socket and gorilla/websocket's
// reader. It reads the socket in batches into a pooled buffer, and hands
// gorilla the bytes of one frame at a time: gorilla never buffers bytes of
// a frame it has not reached. So once a message is read, everything the
// client sent and the server has not processed is in the gate (waitData
// looks there first), and a connection with an empty gate at a message
// boundary can be left without a goroutine until the socket is readable
// again (idle.go). The buffer goes back to the pool whenever it is empty:
// an idle connection holds none.
//
// Only the connection's reader calls it (one at a time).
type readGate struct {
	conn net.Conn
	raw  syscall.RawConn // conn's descriptor (set at creation); nil without

	buf  *[]byte // pooled; nil while empty
	r, w int     // (*buf)[r:w] is read from the socket, not yet handed out
	err  error   // the socket's read error, returned once the buffer is empty

	// The frame being handed out: pos bytes of it so far, the first of
	// them (up to a whole header) kept in hdr to work out its length.
	pos int64
	hdr [maxFrameHeader]byte

	// deadline is the read deadline waitData left on conn (zero: none).
	// It stays set once bytes come, and is renewed only when it was set
	// more than deadlineSlack ago: setting and clearing it around every
	// message cost two updates of the runtime's timers per message. A read
	// it cuts short outside waitData (in the middle of a frame) clears it
	// and reads again.
	deadline time.Time
}

// deadlineSlack is how much earlier than asked waitData may give up: its
// deadline is renewed once older than this.
const deadlineSlack = 50 * time.Millisecond

// maxFrameHeader is the largest WebSocket frame header: 2 bytes, an 8-byte
// extended length and a 4-byte mask key (RFC 6455 §5.2).
const maxFrameHeader = 14

// Read implements io.Reader for gorilla: it returns bytes of the current
// frame only, reading the socket when the gate is empty.
func (g *readGate) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for g.r == g.w {
		if g.err != nil {
			return 0, g.err
		}
		// A long payload goes straight into gorilla's buffer, without a
		// copy through the gate.
		if end, ok := g.frameEnd(); ok && g.pos >= g.headerLen() && len(p) >= gateBufSize {
			n, err := g.conn.Read(p[:min(int64(len(p)), end-g.pos)])
			if n == 0 && g.clearDeadline(err) {
				continue
			}
			g.advance(p[:n])
			return n, err
		}
		if err := g.fill(); err != nil {
			if g.clearDeadline(err) {
				continue
			}
			return 0, err
		}
	}
	n := min(len(p), g.w-g.r)
	if end, ok := g.frameEnd(); ok {
		n = int(min(int64(n), end-g.pos))
	}
	buf := *g.buf
	copy(p, buf[g.r:g.r+n])
	g.advance(buf[g.r : g.r+n])
	g.r += n
	if g.r == g.w {
		g.release()
	}
	return n, nil
}

// waitData waits up to d for the socket to have bytes, with nothing
// buffered, and reports whether reading may go on: true when bytes came or
// the socket failed (gorilla then gets the error), false when d passed
// quietly.
func (g *readGate) waitData(d time.Duration) bool {
	if g.r < g.w || g.err != nil {
		return true
	}
	now := time.Now()
	if g.deadline.Sub(now) < d-deadlineSlack {
		g.deadline = now.Add(d)
		_ = g.conn.SetReadDeadline(g.deadline)
	}
	err := g.fill()
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// clearDeadline reports whether err is the expiry of waitData's deadline,
// which only waitData waits on, and then clears it: the caller reads
// again.
func (g *readGate) clearDeadline(err error) bool {
	if g.deadline.IsZero() || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	g.deadline = time.Time{}
	_ = g.conn.SetReadDeadline(time.Time{})
	return true
}

// fill reads the socket into an empty gate: once, blocking until bytes
// come. A read error other than a timeout is kept for Read.
func (g *readGate) fill() error {
	buf, n, err := g.readReady()
	if n == 0 {
		if err == nil {
			err = errors.New("engineio: socket read returned nothing")
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			g.err = err
		}
		return err
	}
	g.buf, g.r, g.w = buf, 0, n
	// Bytes came with the error (rare): hand them out first.
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		g.err = err
	}
	return nil
}

// readPooled reads conn into a pooled buffer, given back when nothing came.
func readPooled(conn net.Conn) (*[]byte, int, error) {
	b := gatePool.Get().(*[]byte)
	n, err := conn.Read(*b)
	if n == 0 {
		gatePool.Put(b)
		return nil, 0, err
	}
	return b, n, err
}

func (g *readGate) release() {
	if g.buf != nil {
		gatePool.Put(g.buf)
		g.buf = nil
		g.r, g.w = 0, 0
	}
}

// advance records handed-out bytes b of the current frame and starts the
// next frame once this one is complete.
func (g *readGate) advance(b []byte) {
	if g.pos < maxFrameHeader {
		copy(g.hdr[g.pos:], b)
	}
	g.pos += int64(len(b))
	if end, ok := g.frameEnd(); ok && g.pos == end {
		g.pos = 0
	}
}

// headerLen returns the length of the current frame's header, or
// maxFrameHeader while its second byte is not known.
func (g *readGate) headerLen() int64 {
	b, n := g.peekHeader()
	if n < 2 {
		return maxFrameHeader
	}
	return frameHeaderLen(b[1])
}

// frameEnd returns the length of the current frame (header and payload),
// once enough of its header is known, from the bytes handed out and those
// buffered.
func (g *readGate) frameEnd() (int64, bool) {
	b, n := g.peekHeader()
	if n < 2 {
		return 0, false
	}
	hl := frameHeaderLen(b[1])
	if int64(n) < hl {
		return 0, false
	}
	var size uint64
	switch l := b[1] & 0x7f; l {
	case 126:
		size = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		size = binary.BigEndian.Uint64(b[2:10])
	default:
		size = uint64(l)
	}
	if size > math.MaxInt64-uint64(hl) {
		size = math.MaxInt64 - uint64(hl) // gorilla refuses it long before
	}
	return hl + int64(size), true
}

// peekHeader returns the first bytes of the current frame known so far
// (handed out, then buffered), at most a whole header.
func (g *readGate) peekHeader() ([maxFrameHeader]byte, int) {
	b := g.hdr
	n := int(min(g.pos, maxFrameHeader))
	if n < maxFrameHeader && g.r < g.w {
		n += copy(b[n:], (*g.buf)[g.r:g.w])
	}
	return b, n
}

// frameHeaderLen returns a frame's header length from its second byte: the
// mask bit and the 7-bit length, which says whether an extended length
// follows.
func frameHeaderLen(b1 byte) int64 {
	n := int64(2)
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}
