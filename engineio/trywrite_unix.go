//go:build unix

package engineio

import (
	"errors"
	"net"
	"syscall"
)

// tryWrite writes as much of p as the socket takes right now, without
// waiting. It returns how much was written; err is nil when the socket was
// merely full.
func tryWrite(c net.Conn, p []byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, nil
	}
	n := 0
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := syscall.Write(int(fd), p[n:])
			if e == syscall.EINTR {
				continue
			}
			if m > 0 {
				n += m
			}
			if e != nil {
				if !errors.Is(e, syscall.EAGAIN) {
					werr = e
				}
				break
			}
			if m == 0 {
				break
			}
		}
		return true // never wait here: the caller waits without its slot
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
