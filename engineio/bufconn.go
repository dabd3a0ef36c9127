package engineio

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// coalesceLimit is the size of the pooled buffer a WebSocket writer collects
// frames into. A frame that does not fit is written together with what was
// collected so far in one vectored write, without copying it.
const coalesceLimit = 16 << 10

var coalescePool = sync.Pool{New: func() any {
	b := make([]byte, 0, coalesceLimit)
	return &b
}}

// bufConn wraps a hijacked connection so that the frames gorilla/websocket
// writes while a writer drains its queue are collected and sent with one
// write call per drain (begin … flush). Outside a drain, writes go straight
// through, so the 101 response, the 3probe answer and control frames written
// by other goroutines are never held back.
//
// mu serializes every write on the socket. It is a leaf lock, held during
// socket I/O and nothing else; gorilla's own write lock is always taken
// before it.
type bufConn struct {
	net.Conn

	// gate is the read side: gorilla reads through it (Read).
	gate readGate
	// fd is the socket's descriptor (-1 without), for the writers' batched
	// sends (sendbatch.go). It stays valid while the connection's writer
	// ownership is held: only the owner closes the socket.
	fd int

	mu         sync.Mutex
	collecting bool
	buf        *[]byte   // pooled, only while collecting
	hold       *slotHold // the writer's slot (writeSlots), while collecting

	// timeout (Config.WriteTimeout, set once before any write) bounds a
	// write that has to wait for the client. Only such a write gets a
	// deadline: a write the socket takes at once cannot stall, and setting
	// a deadline per batch cost the broadcast benchmark a tenth of its
	// throughput at 5,000 clients. dmu orders those deadlines with the
	// shorter one a close sets (closing), which must win; it is not mu,
	// which a stuck write holds.
	timeout time.Duration
	dmu     sync.Mutex
	closing bool
}

// Read implements net.Conn, for gorilla's reader only.
func (b *bufConn) Read(p []byte) (int, error) { return b.gate.Read(p) }

// Write implements net.Conn.
func (b *bufConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.collecting {
		return b.Conn.Write(p)
	}
	buf := *b.buf
	if len(buf)+len(p) <= cap(buf) {
		*b.buf = append(buf, p...)
		return len(p), nil
	}
	if err := b.out(buf); err != nil {
		return 0, err
	}
	*b.buf = buf[:0]
	if err := b.out(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeNow writes the frames of batch without waiting for the client: what
// the socket takes at once, with one system call for up to coalesceLimit
// bytes of frames (a single frame is written as it is, without a copy). It
// returns how many bytes of the frames it wrote, and all when that is
// every one; err is nil when the socket was merely full.
func (b *bufConn) writeNow(batch []*Message) (written int, all bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(batch) == 1 {
		f := batch[0].wsFrame()
		n, err := b.tryWrite(f)
		return n, err == nil && n == len(f), err
	}
	bp := coalescePool.Get().(*[]byte)
	buf := (*bp)[:0]
	all = true
	for _, m := range batch {
		f := m.wsFrame()
		if len(buf)+len(f) <= cap(buf) {
			buf = append(buf, f...)
			continue
		}
		if all, err = b.writeAll(buf, &written); !all {
			break
		}
		buf = buf[:0]
		if len(f) > cap(buf) {
			if all, err = b.writeAll(f, &written); !all {
				break
			}
			continue
		}
		buf = append(buf, f...)
	}
	if all {
		all, err = b.writeAll(buf, &written)
	}
	*bp = buf[:0]
	coalescePool.Put(bp)
	return written, all, err
}

// writeAll is a writeNow step: it writes p without waiting, adds what it
// wrote to *written, and reports whether that was all of it.
func (b *bufConn) writeAll(p []byte, written *int) (bool, error) {
	if len(p) == 0 {
		return true, nil
	}
	n, err := b.tryWrite(p)
	*written += n
	return err == nil && n == len(p), err
}

// out writes p to the socket while collecting: without waiting as long as
// the writer holds its slot, then, if the socket is full, after giving the
// slot back. The caller holds b.mu.
func (b *bufConn) out(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := b.tryWrite(p)
	if err != nil || n == len(p) {
		return err
	}
	if b.hold != nil {
		b.hold.release()
	}
	b.deadline(time.Now().Add(b.timeout))
	_, err = b.Conn.Write(p[n:])
	// Cleared once written: a deadline left behind would fail the next
	// non-blocking write once it passed.
	b.deadline(time.Time{})
	return err
}

// deadline sets the write deadline of a blocking write, unless a close has
// set its own.
func (b *bufConn) deadline(t time.Time) {
	b.dmu.Lock()
	if !b.closing && b.timeout > 0 {
		_ = b.Conn.SetWriteDeadline(t)
	}
	b.dmu.Unlock()
}

// closeDeadline sets the deadline of the writes left when the connection
// closes; later blocking writes keep it.
func (b *bufConn) closeDeadline(t time.Time) {
	b.dmu.Lock()
	b.closing = true
	_ = b.Conn.SetWriteDeadline(t)
	b.dmu.Unlock()
}

// SetWriteDeadline implements net.Conn. While collecting, per-frame deadlines
// are meaningless and ignored; the flush uses the socket's own deadline.
func (b *bufConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.collecting {
		return nil
	}
	return b.Conn.SetWriteDeadline(t)
}

// begin starts collecting writes; hold is the writer's slot, given back
// before any write that has to wait.
func (b *bufConn) begin(hold *slotHold) {
	b.mu.Lock()
	b.collecting = true
	b.hold = hold
	b.buf = coalescePool.Get().(*[]byte)
	b.mu.Unlock()
}

// flush stops collecting and writes what was collected with one write call.
func (b *bufConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.collecting = false
	buf := b.buf
	b.buf = nil
	err := b.out(*buf)
	b.hold = nil
	*buf = (*buf)[:0]
	coalescePool.Put(buf)
	return err
}

// hijackWriter is handed to the websocket.Upgrader instead of the real
// ResponseWriter, so that the connection it hijacks is wrapped in a bufConn.
type hijackWriter struct {
	http.ResponseWriter
	conn *bufConn
}

// Hijack implements http.Hijacker.
func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("engineio: response does not implement http.Hijacker")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &bufConn{Conn: nc, fd: -1}
	h.conn.gate.conn = nc
	// The descriptor, for non-blocking writes and reads that take a buffer
	// only once bytes are there; set before any goroutine uses the conn.
	if sc, ok := nc.(syscall.Conn); ok {
		h.conn.gate.raw, _ = sc.SyscallConn()
		if raw := h.conn.gate.raw; raw != nil {
			_ = raw.Control(func(fd uintptr) { h.conn.fd = int(fd) })
		}
	}
	return h.conn, brw, nil
}
