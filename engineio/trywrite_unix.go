//go:build unix

package engineio

import (
	"errors"
	"sync"
	"syscall"
)

// rawWrite is the state of one tryWrite, pooled with its callback (made
// once per rawWrite): neither a callback per write nor state per
// connection is allocated.
type rawWrite struct {
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

var rawWrites = sync.Pool{New: func() any {
	op := new(rawWrite)
	op.fn = op.writeFD
	return op
}}

// tryWrite writes as much of p as the socket takes right now, without
// waiting. It returns how much was written; err is nil when the socket was
// merely full. The caller holds b.mu.
func (b *bufConn) tryWrite(p []byte) (int, error) {
	raw := b.gate.raw
	if raw == nil {
		return 0, nil
	}
	op := rawWrites.Get().(*rawWrite)
	op.p = p
	err := raw.Write(op.fn)
	n, werr := op.n, op.err
	*op = rawWrite{fn: op.fn}
	rawWrites.Put(op)
	if err != nil {
		return n, err
	}
	return n, werr
}

// writeFD is tryWrite's callback.
func (op *rawWrite) writeFD(fd uintptr) bool {
	for op.n < len(op.p) {
		m, e := syscall.Write(int(fd), op.p[op.n:])
		if e == syscall.EINTR {
			continue
		}
		if m > 0 {
			op.n += m
		}
		if e != nil {
			if !errors.Is(e, syscall.EAGAIN) {
				op.err = e
			}
			break
		}
		if m == 0 {
			break
		}
	}
	return true // never wait here: the caller waits without its slot
}
