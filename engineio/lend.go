package engineio

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
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
	if !s.lend.anyLent() {
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
// lendQuiet ticks; the first lend after a quiet spell wakes it.
//
// The lent readers are kept in shards by connection, each with its own
// lock: a lend and its return take only their shard's, which readers on
// other processors rarely share (a lock of the whole lender, taken twice
// per event by every reader, cost a few percent of an echo's CPU).
//
// mu and the shards' locks are leaves (LOCKING.md).
type lender struct {
	srv    *Server
	shards [lendShards]lendShard

	mu      sync.Mutex // the goroutine's start and stop
	started bool
	closed  bool

	running atomic.Bool // started and not closed: lends are watched
	asleep  atomic.Bool // the goroutine waits for wake, not ticking

	// The goroutine's own.
	tickSeq uint64 // the shards' lends in all, at the last tick
	quiet   int    // ticks in a row without a lend

	wake    chan struct{} // ends a quiet spell
	release chan struct{} // ReleaseReaders
	stop    chan struct{} // closed by close
	done    chan struct{} // closed when the goroutine returned
}

// lendShards is the number of the lender's shards.
const lendShards = 16

// lendShard holds the lent readers of some connections.
type lendShard struct {
	mu     sync.Mutex
	lent   map[*wsConn]lend   // lent readers
	seen   map[*wsConn]uint64 // lent at the last tick
	seq    uint64             // lends so far
	active atomic.Int64       // len(lent), read without mu
	_      [24]byte           // a cache line each
}

// lend is a reader lent to a Runner: its connection, and the lend's number.
type lend struct {
	c *Conn
	n uint64
}

func newLender(s *Server) *lender {
	l := &lender{
		srv:     s,
		wake:    make(chan struct{}, 1),
		release: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := range l.shards {
		l.shards[i].lent = make(map[*wsConn]lend)
		l.shards[i].seen = make(map[*wsConn]uint64)
	}
	return l
}

// shard returns w's shard.
func (l *lender) shard(w *wsConn) *lendShard {
	h := uintptr(unsafe.Pointer(w))
	return &l.shards[(h>>6^h>>12)%lendShards]
}

// anyLent reports whether a reader is lent.
func (l *lender) anyLent() bool {
	for i := range l.shards {
		if l.shards[i].active.Load() != 0 {
			return true
		}
	}
	return false
}

// run is the reader's side of a lend: it runs r and reports whether the
// goroutine is still the connection's reader (false: the lender started
// another one meanwhile, and this goroutine must end).
func (l *lender) run(c *Conn, w *wsConn, r Runner) bool {
	if !l.running.Load() && !l.start() {
		r.Run() // the server is closing: nobody would replace us
		return true
	}
	sh := l.shard(w)
	sh.mu.Lock()
	sh.seq++
	n := sh.seq
	sh.lent[w] = lend{c: c, n: n}
	sh.active.Add(1)
	sh.mu.Unlock()
	// After the lend is in its shard: a goroutine going to sleep either
	// sees it there, or has set asleep before we look (loop).
	if l.asleep.Load() && l.asleep.CompareAndSwap(true, false) {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}

	r.Run()

	sh.mu.Lock()
	mine := sh.lent[w].n == n
	if mine {
		delete(sh.lent, w)
		sh.active.Add(-1)
	}
	sh.mu.Unlock()
	return mine
}

// start starts the lender's goroutine, unless the server is closing: it
// reports whether lends are watched.
func (l *lender) start() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if !l.started {
		l.started = true
		l.srv.wg.Add(1) // under lender.mu while not closed (LOCKING.md)
		go l.loop()
		l.running.Store(true)
	}
	return true
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
			// Quiet: wait for the next lend without ticking — unless one
			// came in since the tick (run looks at asleep after its lend
			// is in its shard, we look at the shards after setting it).
			l.asleep.Store(true)
			if seq, _ := l.scan(nil); seq != l.tickSeq && l.asleep.CompareAndSwap(true, false) {
				continue
			}
			t.Stop()
			select {
			case <-l.stop:
				return
			case <-l.wake:
			case <-l.release:
				l.asleep.Store(false)
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
	seq, lent := l.scan(func(sh *lendShard) {
		for w, e := range sh.lent {
			if now || sh.seen[w] == e.n {
				delete(sh.lent, w)
				sh.active.Add(-1)
				resume = append(resume, lentReader{e.c, w})
			}
		}
		clear(sh.seen)
		for w, e := range sh.lent {
			sh.seen[w] = e.n
		}
	})
	if seq != l.tickSeq || lent {
		l.tickSeq, l.quiet = seq, 0
	} else {
		l.quiet++
	}
	for _, r := range resume {
		l.srv.wg.Add(1) // from the counted lender goroutine (LOCKING.md)
		go r.c.resumeRead(r.w)
	}
	return l.quiet < lendQuiet
}

// scan runs f (if any) on each shard under its lock, and returns the lends
// so far in all and whether a reader is lent (after f).
func (l *lender) scan(f func(sh *lendShard)) (seq uint64, lent bool) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		if f != nil {
			f(sh)
		}
		seq += sh.seq
		lent = lent || len(sh.lent) > 0
		sh.mu.Unlock()
	}
	return seq, lent
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
	l.running.Store(false)
	l.mu.Unlock()
	if started {
		close(l.stop)
		<-l.done
	}
}
