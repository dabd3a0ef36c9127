//go:build linux

package engineio

import (
	"errors"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// An io_uring submission queue of a writer's own, to hand the kernel the
// non-blocking sends of many connections with one system call. A
// broadcast's writes are one per connection; on this project's machines a
// system call costs about a microsecond before it does anything (page-table
// isolation), and the sends of a burst made back to back also go through
// the loopback and wake the receivers more cheaply: the writer's CPU per
// send fell from ~7 to ~3 µs in a 64-socket benchmark. Where io_uring is
// missing or refused (older kernels, container seccomp profiles), newRing
// fails and the writer makes one write per connection as before.
//
// Only the writer that made a ring uses it.
type ring struct {
	fd      int
	entries uint32

	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []uringSQE
	cqHead, cqTail, cqMask *uint32
	cqes                   []uringCQE

	ringMem, sqeMem []byte
}

// The kernel's structures (include/uapi/linux/io_uring.h).
type (
	uringSQOff struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	uringCQOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
	uringParams struct {
		sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
		resv                                                                   [3]uint32
		sq                                                                     uringSQOff
		cq                                                                     uringCQOff
	}
	uringSQE struct {
		opcode   uint8
		flags    uint8
		ioprio   uint16
		fd       int32
		off      uint64
		addr     uint64
		len      uint32
		msgFlags uint32
		userData uint64
		bufIndex uint16
		persona  uint16
		splice   int32
		addr3    uint64
		pad      uint64
	}
	uringCQE struct {
		userData uint64
		res      int32
		flags    uint32
	}
)

const (
	sysIOUringSetup = 425 // the same number on every architecture
	sysIOUringEnter = 426

	uringOpSend         = 26
	uringEnterGetEvents = 1
	uringOffSQEs        = 0x10000000
	uringFeatSingleMmap = 1
)

// ringSize is the most sends a writer hands the kernel at once.
const ringSize = 64

// newRing sets up a ring, or fails where io_uring is not available.
func newRing() (*ring, error) {
	var p uringParams
	fd, _, e := syscall.Syscall(sysIOUringSetup, ringSize, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, e
	}
	r := &ring{fd: int(fd), entries: p.sqEntries}
	if p.features&uringFeatSingleMmap == 0 || p.sqEntries < ringSize {
		r.close()
		return nil, errors.New("engineio: io_uring without single mmap")
	}
	size := max(p.sq.array+p.sqEntries*4, p.cq.cqes+p.cqEntries*uint32(unsafe.Sizeof(uringCQE{})))
	mem, err := syscall.Mmap(r.fd, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, err
	}
	r.ringMem = mem
	sm, err := syscall.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, err
	}
	r.sqeMem = sm
	base := unsafe.Pointer(&mem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sq.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sq.tail))
	r.sqMask = (*uint32)(unsafe.Add(base, p.sq.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sq.array)), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cq.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cq.tail))
	r.cqMask = (*uint32)(unsafe.Add(base, p.cq.ringMask))
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Add(base, p.cq.cqes)), p.cqEntries)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sm[0])), p.sqEntries)
	return r, nil
}

// sendAll sends bufs[i] on descriptor fds[i] without waiting (what each
// socket takes at once), at most ringSize of them, with one system call in
// the usual case. res[i] gets the bytes sent, or a negative errno
// (-EAGAIN: the socket was full). Every buffer must stay alive, and every
// descriptor open, until it returns.
func (r *ring) sendAll(fds []int, bufs [][]byte, res []int32) error {
	n := uint32(len(fds))
	if n == 0 {
		return nil
	}
	tail := atomic.LoadUint32(r.sqTail)
	mask := *r.sqMask
	for i := range n {
		idx := (tail + i) & mask
		var addr uint64
		if len(bufs[i]) > 0 {
			addr = uint64(uintptr(unsafe.Pointer(&bufs[i][0])))
		}
		r.sqes[idx] = uringSQE{
			opcode:   uringOpSend,
			fd:       int32(fds[i]),
			addr:     addr,
			len:      uint32(len(bufs[i])),
			msgFlags: syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL,
			userData: uint64(i),
		}
		r.sqArray[idx] = idx
		res[i] = 0
	}
	atomic.StoreUint32(r.sqTail, tail+n)
	// Non-blocking sends complete while they are submitted: one call takes
	// them all and finds their completions posted. Otherwise (a signal,
	// a busy kernel) go on submitting and waiting until every one is back.
	var done uint32
	for {
		toSubmit := atomic.LoadUint32(r.sqTail) - atomic.LoadUint32(r.sqHead)
		var flags, wait uintptr
		if toSubmit == 0 {
			flags, wait = uringEnterGetEvents, 1
		}
		if toSubmit > 0 || done < n {
			_, _, e := syscall.Syscall6(sysIOUringEnter, uintptr(r.fd), uintptr(toSubmit), wait, flags, 0, 0)
			if e != 0 && e != syscall.EINTR && e != syscall.EAGAIN && e != syscall.EBUSY {
				return e
			}
		}
		head := atomic.LoadUint32(r.cqHead)
		ctail := atomic.LoadUint32(r.cqTail)
		cm := *r.cqMask
		for ; head != ctail; head++ {
			c := &r.cqes[head&cm]
			if c.userData < uint64(n) {
				res[c.userData] = c.res
				done++
			}
		}
		atomic.StoreUint32(r.cqHead, head)
		if done >= n {
			return nil
		}
	}
}

func (r *ring) close() {
	if r.sqeMem != nil {
		_ = syscall.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.ringMem != nil {
		_ = syscall.Munmap(r.ringMem)
		r.ringMem = nil
	}
	if r.fd >= 0 {
		_ = syscall.Close(r.fd)
		r.fd = -1
	}
}
