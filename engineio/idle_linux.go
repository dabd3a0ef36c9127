//go:build linux

package engineio

import (
	"errors"
	"sync"
	"syscall"
)

// idlePoll watches the sockets of idle WebSockets with an epoll set of its
// own, next to the Go runtime's: one goroutine blocked in epoll_wait for
// all of them, instead of one reader goroutine each. A socket is in the
// set one-shot: a readable (or hung up) socket is reported once and
// disarmed; its reader resumes (parkable.ready) and re-arms it when it is
// idle again. Events carry the connection's key, not its descriptor, and a
// closing connection is forgotten first, so an event read just before a
// close reaches nobody. The kernel drops a socket from the set when it is
// closed.
//
// mu is a leaf lock (LOCKING.md): held around the map, the states and
// epoll_ctl, which never blocks.
type idlePoll struct {
	epfd int
	wake [2]int        // a pipe: a byte on wake[1] ends the loop
	done chan struct{} // closed when the loop has returned

	mu     sync.Mutex
	armed  map[uint32]*wsConn
	next   uint32
	closed bool // stop was called: no more arming, descriptors closed
}

// wakeKey is the key of the wake pipe's registration; connections' keys
// start at 1 and skip it.
const wakeKey = 1<<32 - 1

// newIdlePoll creates the epoll set; run is its loop.
func newIdlePoll() (*idlePoll, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &idlePoll{epfd: epfd, done: make(chan struct{}), armed: make(map[uint32]*wsConn)}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return nil, err
	}
	wk := uint32(wakeKey)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(wk)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		_ = syscall.Close(p.wake[0])
		_ = syscall.Close(p.wake[1])
		_ = syscall.Close(epfd)
		return nil, err
	}
	return p, nil
}

// run is the poller's goroutine: it resumes the reader of each socket that
// becomes readable, until stop.
func (p *idlePoll) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// It does not fail short of a bug; if it did, every parked
			// reader goes back to a blocking read.
			p.resumeAll()
			return
		}
		for _, ev := range events[:n] {
			key := uint32(ev.Fd)
			if key == wakeKey {
				return
			}
			p.mu.Lock()
			w := p.armed[key]
			if w != nil {
				delete(p.armed, key)
				w.park.state = parkRegistered
			}
			p.mu.Unlock()
			if w != nil {
				w.park.ready()
			}
		}
	}
}

func (p *idlePoll) resumeAll() {
	p.mu.Lock()
	armed := p.armed
	p.armed = map[uint32]*wsConn{}
	p.closed = true // no more arming
	for _, w := range armed {
		w.park.state = parkRegistered
	}
	p.mu.Unlock()
	for _, w := range armed {
		w.park.ready()
	}
}

// arm watches w's socket until it is readable, and reports whether it
// does: false when the socket has no descriptor, is closing, or the poller
// stopped — the reader then goes on blocking.
func (p *idlePoll) arm(w *wsConn) bool {
	raw := w.nc.gate.raw
	if raw == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || w.park.state == parkClosed {
		return false
	}
	if w.park.key == 0 {
		p.next++
		if p.next == wakeKey {
			p.next = 1
		}
		w.park.key = p.next
	}
	op := syscall.EPOLL_CTL_MOD
	if w.park.state == parkNone {
		op = syscall.EPOLL_CTL_ADD
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(w.park.key)}
	var cerr error
	// Control keeps the descriptor open while epoll_ctl uses it.
	if err := raw.Control(func(fd uintptr) { cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev) }); err != nil || cerr != nil {
		return false
	}
	w.park.state = parkArmed
	p.armed[w.park.key] = w
	return true
}

// forget is called before w's socket is closed: a pending event no longer
// reaches it, and it is never armed again. (Closing the socket takes it
// out of the epoll set.)
func (p *idlePoll) forget(w *wsConn) {
	p.mu.Lock()
	if w.park.state == parkArmed {
		delete(p.armed, w.park.key)
	}
	w.park.state = parkClosed
	p.mu.Unlock()
}

// stop ends the loop, waits for it and closes the descriptors. The sockets
// still parked are those of connections already closing (Server.Close
// closes every connection first).
func (p *idlePoll) stop() {
	p.mu.Lock()
	if p.closed && p.epfd < 0 {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_, _ = syscall.Write(p.wake[1], []byte{1})
	<-p.done
	p.mu.Lock()
	_ = syscall.Close(p.wake[0])
	_ = syscall.Close(p.wake[1])
	_ = syscall.Close(p.epfd)
	p.epfd = -1
	p.mu.Unlock()
}
