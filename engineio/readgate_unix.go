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
	if g.raw == nil && !g.noRaw {
		if sc, ok := g.conn.(syscall.Conn); ok {
			g.raw, _ = sc.SyscallConn()
		}
		g.noRaw = g.raw == nil
	}
	if g.raw == nil {
		return readPooled(g.conn)
	}
	var (
		buf  *[]byte
		n    int
		rerr error
	)
	err := g.raw.Read(func(fd uintptr) bool {
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
				rerr = &net.OpError{Op: "read", Net: "tcp", Err: e}
			case m == 0:
				gatePool.Put(b)
				rerr = io.EOF
			default:
				buf, n = b, m
			}
			return true
		}
	})
	if err == nil {
		err = rerr
	}
	if errors.Is(err, syscall.EBADF) {
		err = net.ErrClosed
	}
	return buf, n, err
}
