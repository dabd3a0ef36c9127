package engineio

import (
	"sync"
	"sync/atomic"
	"time"
)

// Runner is work a Handler gives a WebSocket's reader to do
// (Conn.RunOnReader).
type Runner interface{ Run() }

// lendTick is how often the lender looks for readers lent for too long; a
// reader lent on two looks in a row (10 to 20 ms) is replaced.
const lendTick = 10 * time.Millisecond

// lendQuiet is how many ticks without a lend the lender waits before it
// stops ticking.
const lendQuiet = 100

// RunOnReader is called from Handler.OnMessage, on a WebSocket's reader,
// to have the reader itself run r once OnMessage has returned, instead of
// waking another goroutine for it: the work a message starts (a Socket.IO
// event's handler) then costs no goroutine switch, and the reply it writes
// leaves from the goroutine that read the request. It reports false when
// it cannot — OnMessage was not called by a WebSocket's reader, or the
// reader already has work — and the caller runs r elsewhere.
//
// While r runs the connection is not read. So that r may block — wait for
// the client's own acknowledgement, say — the server's lender starts a new
// reader for the connection when r has run for 10 to 20 ms, or at once on
// ReleaseReaders; the goroutine that ran r then ends with it.
func (c *Conn) RunOnReader(r Runner) bool {
	if !c.onReader || c.deferred != nil {
		return false
	}
	c.deferred = r
	return true
}

// ReleaseReaders replaces at once every reader busy with a Runner (see
// RunOnReader). A Handler calls it before it blocks for something a
// client must send — an acknowledgement — since the client's connection
// may be one whose reader is running the caller.
func (s *Server) ReleaseReaders() {
	if s.lend.active.Load() == 0 {
		return
	}
	select {
	case s.lend.release <- struct{}{}:
	default:
	}
}

// lender watches the readers running a Runner: it replaces those that
// take long, so that a connection is never left unread behind a handler
// that waits. Its goroutine ticks only while readers were lent in the last
// lendQuiet; the first lend after a quiet spell wakes it.
//
// mu is a leaf lock (LOCKING.md).
type lender struct {
	srv     *Server
	mu      sync.Mutex
	lent    map[*wsConn]lend   // lent readers
	seen    map[*wsConn]uint64 // lent at the last tick
	seq     uint64             // lends so far
	tickSeq uint64             // seq at the last tick
	quiet   int                // ticks in a row without a lend
	asleep  bool               // the goroutine waits for wake, not ticking
	started bool
	closed  bool

	active  atomic.Int64  // len(lent), read without mu
	wake    chan struct{} // ends a quiet spell
	release chan struct{} // ReleaseReaders
	stop    chan struct{} // closed by close
	done    chan struct{} // closed when the goroutine returned
}

// lend is a reader lent to a Runner: its connection, and the lend's number.
type lend struct {
	c *Conn
	n uint64
}

func newLender(s *Server) *lender {
	return &lender{
		srv:     s,
		lent:    make(map[*wsConn]lend),
		seen:    make(map[*wsConn]uint64),
		wake:    make(chan struct{}, 1),
		release: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// run is the reader's side of a lend: it runs r and reports whether the
// goroutine is still the connection's reader (false: the lender started
// another one meanwhile, and this goroutine must end).
func (l *lender) run(c *Conn, w *wsConn, r Runner) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		r.Run() // the server is closing: nobody would replace us
		return true
	}
	l.seq++
	n := l.seq
	l.lent[w] = lend{c: c, n: n}
	l.active.Add(1)
	wake := false
	if !l.started {
		l.started = true
		l.srv.wg.Add(1) // under lender.mu while not closed (LOCKING.md)
		go l.loop()
	} else if l.asleep {
		l.asleep = false
		wake = true
	}
	l.mu.Unlock()
	if wake {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}

	r.Run()

	l.mu.Lock()
	mine := l.lent[w].n == n
	if mine {
		delete(l.lent, w)
		l.active.Add(-1)
	}
	l.mu.Unlock()
	return mine
}

// loop is the lender's goroutine, counted in the server's WaitGroup.
func (l *lender) loop() {
	defer l.srv.wg.Done()
	defer close(l.done)
	t := time.NewTicker(lendTick)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.release:
			l.replace(true)
		case <-t.C:
			if l.replace(false) {
				continue
			}
			// Quiet: wait for the next lend without ticking.
			t.Stop()
			select {
			case <-l.stop:
				return
			case <-l.wake:
			case <-l.release:
				l.replace(true)
			}
			t.Reset(lendTick)
		}
	}
}

// replace starts a new reader for each connection lent since the last tick
// (all with now), and reports whether the lender should keep ticking.
func (l *lender) replace(now bool) bool {
	var resume []lentReader
	l.mu.Lock()
	for w, e := range l.lent {
		if now || l.seen[w] == e.n {
			delete(l.lent, w)
			l.active.Add(-1)
			resume = append(resume, lentReader{e.c, w})
		}
	}
	clear(l.seen)
	for w, e := range l.lent {
		l.seen[w] = e.n
	}
	if l.seq != l.tickSeq || len(l.lent) > 0 {
		l.tickSeq, l.quiet = l.seq, 0
	} else {
		l.quiet++
	}
	busy := l.quiet < lendQuiet
	if !busy {
		l.asleep = true
	}
	l.mu.Unlock()
	for _, r := range resume {
		l.srv.wg.Add(1) // from the counted lender goroutine (LOCKING.md)
		go r.c.resumeRead(r.w)
	}
	return busy
}

type lentReader struct {
	c *Conn
	w *wsConn
}

// close stops the goroutine, once the connections are closed.
func (l *lender) close() {
	l.mu.Lock()
	started := l.started && !l.closed
	l.closed = true
	l.mu.Unlock()
	if started {
		close(l.stop)
		<-l.done
	}
}
