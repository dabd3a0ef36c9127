package engineio

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// steady is the healthy connection of an attack test (engineio has no
// rooms: it stands for a client in the attacker's room). From the moment it
// opens, the test sends it numbered messages ("tick <n>") through its Conn
// every 20 ms; its client reads everything, answers pings, checks that the
// ticks arrive in order and hands every other message to the test. check,
// at the end, stops the ticks and asserts that the client received all of
// them, in order, and is still connected.
type steady struct {
	e   *testEnv
	sid string
	rec *recorder
	ws  *websocket.Conn
	wmu sync.Mutex // serializes writes: the reader answers pings

	others chan string // messages other than ticks, in order

	mu      sync.Mutex
	got     int64  // ticks received
	bad     string // the first tick out of order, if any
	readErr error  // why the reader stopped

	readDone chan struct{}
	stop     chan struct{}
	sendDone chan struct{}
	sent     atomic.Int64 // ticks whose Send returned
	sendErr  atomic.Value // error: a tick Send failed
}

const tickPrefix = "4tick "

// startSteady opens the healthy connection and starts its ticks.
func startSteady(t *testing.T, e *testEnv) *steady {
	t.Helper()
	ws, sid := e.openWS(t)
	_ = ws.SetReadDeadline(time.Time{}) // openWS's read set one
	s := &steady{e: e, sid: sid, rec: e.rec(t, sid), ws: ws, others: make(chan string, 1024),
		readDone: make(chan struct{}), stop: make(chan struct{}), sendDone: make(chan struct{})}
	go s.read()
	go s.tick()
	t.Cleanup(func() {
		s.stopTicks()
		ws.Close()
		<-s.readDone
	})
	return s
}

func (s *steady) read() {
	defer close(s.readDone)
	for {
		_, b, err := s.ws.ReadMessage()
		if err != nil {
			s.mu.Lock()
			s.readErr = err
			s.mu.Unlock()
			return
		}
		data := string(b)
		switch {
		case data == "2":
			s.wmu.Lock()
			err := s.ws.WriteMessage(websocket.TextMessage, []byte("3"))
			s.wmu.Unlock()
			if err != nil {
				s.mu.Lock()
				s.readErr = err
				s.mu.Unlock()
				return
			}
		case strings.HasPrefix(data, tickPrefix):
			n, err := strconv.ParseInt(data[len(tickPrefix):], 10, 64)
			s.mu.Lock()
			if (err != nil || n != s.got) && s.bad == "" {
				s.bad = fmt.Sprintf("tick %q arrived as number %d", data, s.got)
			}
			s.got++
			s.mu.Unlock()
		default:
			select {
			case s.others <- data:
			default:
				s.mu.Lock()
				if s.bad == "" {
					s.bad = "too many unread messages: " + data
				}
				s.mu.Unlock()
			}
		}
	}
}

// tick sends the numbered messages, the first at once, then every 20 ms,
// until stopTicks.
func (s *steady) tick() {
	defer close(s.sendDone)
	for i := int64(0); ; i++ {
		if err := s.rec.conn.Send(NewMessage([]byte("tick "+strconv.FormatInt(i, 10)), false)); err != nil {
			s.sendErr.Store(err)
			return
		}
		s.sent.Add(1)
		select {
		case <-s.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *steady) stopTicks() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.sendDone
}

func (s *steady) received() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// flowing waits until the client has received a tick sent after this call:
// the connection is being served while the attack runs.
func (s *steady) flowing(t *testing.T) {
	t.Helper()
	after := s.sent.Load() + 1 // the tick being sent now may predate the call
	waitFor(t, "the healthy client receiving ticks during the attack", func() bool {
		return s.received() > after
	})
}

// expectOther waits for the next message that is not a tick and checks it.
func (s *steady) expectOther(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-s.others:
		if got != want {
			t.Fatalf("healthy client got %q, want %q", got, want)
		}
	case <-s.readDone:
		t.Fatalf("healthy client disconnected before %q: %v", want, s.readErr)
	case <-time.After(10 * time.Second):
		t.Fatalf("healthy client did not get %q", want)
	}
}

// echo checks that the healthy client still gets its messages echoed (or
// relayed back to it), as expectEcho does beside the ticks.
func (s *steady) echo(t *testing.T, text string) {
	t.Helper()
	s.wmu.Lock()
	err := s.ws.WriteMessage(websocket.TextMessage, []byte("4"+text))
	s.wmu.Unlock()
	if err != nil {
		t.Fatalf("healthy client: write: %v", err)
	}
	s.expectOther(t, "4"+text)
}

// check stops the ticks and asserts that the client received every one of
// them, in order, and that its connection is still open on both sides.
func (s *steady) check(t *testing.T) {
	t.Helper()
	s.stopTicks()
	if err, _ := s.sendErr.Load().(error); err != nil {
		t.Fatalf("healthy client: tick %d not sent: %v", s.sent.Load(), err)
	}
	n := s.sent.Load()
	waitFor(t, fmt.Sprintf("the healthy client receiving all %d ticks", n), func() bool {
		select {
		case <-s.readDone:
			return true
		default:
		}
		return s.received() >= n
	})
	s.mu.Lock()
	got, bad, readErr := s.got, s.bad, s.readErr
	s.mu.Unlock()
	if readErr != nil {
		t.Fatalf("healthy client disconnected after %d of %d ticks: %v", got, n, readErr)
	}
	if bad != "" {
		t.Fatalf("healthy client: %s", bad)
	}
	if got != n {
		t.Fatalf("healthy client received %d ticks, %d sent", got, n)
	}
	if c := s.rec.closeCount(); c != 0 || s.e.srv.lookup(s.sid) == nil {
		t.Fatalf("healthy client closed on the server (%d closes)", c)
	}
	t.Logf("healthy client received all %d ticks, in order", n)
}
