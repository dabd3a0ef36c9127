//go:build unix

package engineio

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// rawRead is the state of one readReady, pooled with its callback (made
// once per rawRead): neither a callback per read nor state per connection
// is allocated.
type rawRead struct {
	fn  func(fd uintptr) bool
	buf *[]byte
	n   int
	err error
}

var rawReads = sync.Pool{New: func() any {
	op := new(rawRead)
	op.fn = op.readFD
	return op
}}

// readReady reads the socket into a pooled buffer taken only once bytes are
// there: a reader waiting for a client holds no buffer. Without a
// descriptor (TLS), it reads as usual.
func (g *readGate) readReady() (*[]byte, int, error) {
	if g.raw == nil {
		return readPooled(g.conn)
	}
	op := rawReads.Get().(*rawRead)
	err := g.raw.Read(op.fn)
	if err == nil {
		err = op.err
	}
	buf, n := op.buf, op.n
	*op = rawRead{fn: op.fn}
	rawReads.Put(op)
	if errors.Is(err, syscall.EBADF) {
		err = net.ErrClosed
	}
	return buf, n, err
}

// readFD is readReady's callback: it reads fd into a pooled buffer, or
// asks the runtime to wait (false) when there is nothing to read.
func (op *rawRead) readFD(fd uintptr) bool {
	b := gatePool.Get().(*[]byte)
	for {
		m, e := syscall.Read(int(fd), *b)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			gatePool.Put(b)
			return false // the runtime's poller waits for bytes
		case e != nil:
			gatePool.Put(b)
			op.err = &net.OpError{Op: "read", Net: "tcp", Err: e}
		case m == 0:
			gatePool.Put(b)
			op.err = io.EOF
		default:
			op.buf, op.n = b, m
		}
		return true
	}
}
