//go:build unix

package engineio

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// readReady reads the socket into a pooled buffer taken only once bytes are
// there: a reader waiting for a client holds no buffer. Without a
// descriptor (TLS), it reads as usual.
func (g *readGate) readReady() (*[]byte, int, error) {
	if g.raw == nil {
		return readPooled(g.conn)
	}
	if g.readFn == nil {
		g.readFn = g.readFD // made once: a method value per read would allocate
	}
	g.rbuf, g.rn, g.rerr = nil, 0, nil
	err := g.raw.Read(g.readFn)
	if err == nil {
		err = g.rerr
	}
	buf, n := g.rbuf, g.rn
	g.rbuf, g.rerr = nil, nil
	if errors.Is(err, syscall.EBADF) {
		err = net.ErrClosed
	}
	return buf, n, err
}

// readFD is readReady's callback: it reads fd into a pooled buffer, or
// asks the runtime to wait (false) when there is nothing to read.
func (g *readGate) readFD(fd uintptr) bool {
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
			g.rerr = &net.OpError{Op: "read", Net: "tcp", Err: e}
		case m == 0:
			gatePool.Put(b)
			g.rerr = io.EOF
		default:
			g.rbuf, g.rn = b, m
		}
		return true
	}
}
