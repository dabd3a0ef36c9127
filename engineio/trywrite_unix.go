//go:build unix

package engineio

import (
	"errors"
	"syscall"
)

// tryWrite writes as much of p as the socket takes right now, without
// waiting. It returns how much was written; err is nil when the socket was
// merely full. The caller holds b.mu, which guards the callback's fields.
func (b *bufConn) tryWrite(p []byte) (int, error) {
	raw := b.gate.raw
	if raw == nil {
		return 0, nil
	}
	if b.writeFn == nil {
		b.writeFn = b.writeFD // made once: a closure per write would allocate
	}
	b.wp, b.wn, b.werr = p, 0, nil
	err := raw.Write(b.writeFn)
	n, werr := b.wn, b.werr
	b.wp, b.werr = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}

// writeFD is tryWrite's callback.
func (b *bufConn) writeFD(fd uintptr) bool {
	for b.wn < len(b.wp) {
		m, e := syscall.Write(int(fd), b.wp[b.wn:])
		if e == syscall.EINTR {
			continue
		}
		if m > 0 {
			b.wn += m
		}
		if e != nil {
			if !errors.Is(e, syscall.EAGAIN) {
				b.werr = e
			}
			break
		}
		if m == 0 {
			break
		}
	}
	return true // never wait here: the caller waits without its slot
}
