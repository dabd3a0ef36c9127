package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

func TestBackoffLikeJS(t *testing.T) {
	b := backoff{min: time.Second, max: 5 * time.Second, jitter: 0.5}
	// rnd 0.15: deviation floor(0.15·0.5·1000ms) = 75ms; floor(1.5) is odd: added.
	testkit.Equal(t, b.duration(0.15), 1075*time.Millisecond)
	// rnd 0.25: deviation 250ms; floor(2.5) is even: subtracted.
	testkit.Equal(t, b.duration(0.25), 1750*time.Millisecond)
	testkit.Equal(t, b.duration(0), 4*time.Second)
	testkit.Equal(t, b.duration(0), 5*time.Second, "capped")
	testkit.Equal(t, b.attempts, 4)
	for i := 0; i < 2000; i++ {
		b.duration(0.99) // no overflow however many attempts
	}
	testkit.Equal(t, b.duration(0.99), 5*time.Second)
	b.reset()
	testkit.Equal(t, b.duration(0), time.Second)
	nj := backoff{min: 100 * time.Millisecond, max: time.Second}
	testkit.Equal(t, nj.duration(0.7), 100*time.Millisecond)
	testkit.Equal(t, nj.duration(0.7), 200*time.Millisecond)
}

func TestWithSession(t *testing.T) {
	for _, tc := range []struct {
		auth      string
		offset    string
		hasOffset bool
		want      string
	}{
		{"", "", false, `{"pid":"p"}`},
		{`{}`, "o", true, `{"pid":"p","offset":"o"}`},
		{`{"token":"x"}`, "o", true, `{"pid":"p","offset":"o","token":"x"}`},
		{`{"pid":"mine"}`, "", false, `{"pid":"p","pid":"mine"}`}, // auth wins, as with Object.assign
	} {
		testkit.Equal(t, string(withSession([]byte(tc.auth), "p", tc.offset, tc.hasOffset)), tc.want)
	}
}

func TestAuthMustBeAnObject(t *testing.T) {
	m, _ := newFakeManager(t, Options{})
	for _, auth := range []any{"token", 1, []int{1}, map[string]any{"b": []byte{1}}} {
		_, err := m.Socket(context.Background(), "/", auth)
		testkit.ErrorIs(t, err, ErrInvalidAuth, "auth %v", auth)
	}
}

func TestNamespaceFromURL(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	_, err := NewManager("ftp://x", Options{})
	testkit.True(t, err != nil)
	s, c := connect(t, m, fs, "admin", map[string]string{"token": "t"}, `0/admin,{"token":"t"}`, `0/admin,{"sid":"abc"}`)
	testkit.Equal(t, s.Namespace(), "/admin")
	testkit.Equal(t, s.ID(), "abc")
	testkit.True(t, s.Connected())
	testkit.NoError(t, s.Close())
	testkit.Equal(t, c.nextText(t), "1/admin,")
	<-c.done()
}

func TestEventsAcksAndBinary(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)

	got := make(chan string, 8)
	var order []string
	var mu sync.Mutex
	s.OnAny(func(ev *Event) {
		mu.Lock()
		order = append(order, "any:"+ev.Name)
		mu.Unlock()
	})
	id := s.On("hello", func(ev *Event) {
		var who string
		testkit.NoError(t, ev.Decode(0, &who))
		testkit.ErrorIs(t, ev.Ack(), ErrNoAck)
		got <- "hello " + who
	})
	s.On("q", func(ev *Event) {
		testkit.NoError(t, ev.Ack("a", []byte{7}))
		got <- "q"
	})
	s.On("bin", func(ev *Event) {
		var b []byte
		testkit.NoError(t, ev.Decode(1, &b))
		got <- ev.Name + string(b)
	})
	c.deliver(`2["hello","ann"]`)
	testkit.Equal(t, <-got, "hello ann")
	c.deliver(`212["q"]`)
	testkit.Equal(t, <-got, "q")
	testkit.Equal(t, c.nextText(t), `61-12["a",{"_placeholder":true,"num":0}]`)
	testkit.Equal(t, c.next(t), frame{data: []byte{7}, binary: true})
	// A binary event: the header, then its attachment.
	c.deliver(`51-["bin","x",{"_placeholder":true,"num":0}]`)
	c.deliverBinary([]byte("yz"))
	testkit.Equal(t, <-got, "binyz")
	s.Off("hello", id)
	c.deliver(`2["hello","bob"]`)
	c.deliver(`2["other/ns"]`)
	c.deliver(`2/other,["ignored"]`)
	c.deliver(`213["q"]`)
	testkit.Equal(t, <-got, "q")
	testkit.Equal(t, c.nextText(t), `61-13["a",{"_placeholder":true,"num":0}]`)
	c.next(t)
	mu.Lock()
	testkit.Equal(t, order, []string{"any:hello", "any:q", "any:bin", "any:hello", "any:other/ns", "any:q"})
	mu.Unlock()

	// Outgoing: binary anywhere, acks by id.
	out := make(chan string, 2)
	s.OnAnyOutgoing(func(event string, args Args) { out <- event })
	testkit.NoError(t, s.Emit("up", map[string]any{"f": []byte{1, 2}}, "t"))
	testkit.Equal(t, c.nextText(t), `51-["up",{"f":{"_placeholder":true,"num":0}},"t"]`)
	testkit.Equal(t, c.next(t), frame{data: []byte{1, 2}, binary: true})
	testkit.Equal(t, <-out, "up")
	res := make(chan Args, 1)
	go func() {
		args, err := s.EmitWithAck(context.Background(), "ask", 1)
		testkit.NoError(t, err)
		res <- args
	}()
	testkit.Equal(t, c.nextText(t), `20["ask",1]`)
	c.deliver(`61-0[{"_placeholder":true,"num":0}]`)
	c.deliverBinary([]byte("ok"))
	args := <-res
	var b []byte
	testkit.NoError(t, args.Decode(0, &b))
	testkit.Equal(t, string(b), "ok")
	testkit.Equal(t, <-out, "ask")

	var rerr *ReservedEventError
	testkit.True(t, errors.As(s.Emit("disconnect"), &rerr))
	testkit.ErrorIs(t, s.Emit("connect"), ErrReservedEvent)
	testkit.True(t, s.Emit("f", func() {}) != nil)
}

func TestHandlersRunInOrderOneAtATime(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	release := make(chan struct{})
	var mu sync.Mutex
	var seen []int
	running := 0
	s.On("n", func(ev *Event) {
		mu.Lock()
		running++
		testkit.Equal(t, running, 1)
		var n int
		_ = ev.Decode(0, &n)
		seen = append(seen, n)
		mu.Unlock()
		if n == 0 {
			<-release // blocks this socket only; the reader goes on
		}
		mu.Lock()
		running--
		mu.Unlock()
	})
	for i := 0; i < 50; i++ {
		c.deliver(`2["n",` + string(rune('0'+i%10)) + `]`)
	}
	close(release)
	testkit.NoError(t, s.Close()) // waits for the queued handlers
	mu.Lock()
	defer mu.Unlock()
	testkit.Equal(t, len(seen), 50)
	for i, n := range seen {
		testkit.Equal(t, n, i%10)
	}
}

func TestCloseFromHandler(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	reasons := make(chan string, 1)
	s.OnDisconnect(func(r string) { reasons <- r })
	closed := make(chan error, 1)
	s.On("bye", func(ev *Event) { closed <- s.Close() })
	c.deliver(`2["bye"]`)
	testkit.NoError(t, <-closed)
	testkit.Equal(t, <-reasons, ReasonIOClientDisconnect)
	testkit.Equal(t, c.nextText(t), "1")
}

func TestParseErrorReconnects(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	reasons := make(chan string, 1)
	s.OnDisconnect(func(r string) { reasons <- r })
	c.deliver(`9nonsense`)
	testkit.Equal(t, <-reasons, ReasonParseError)
	c2 := fs.next(t)
	testkit.Equal(t, c2.nextText(t), "0")
	c2.deliver(`0{"sid":"b"}`)
	testkit.Equal(t, s.ID(), "b")
}

func TestBufferWhileReconnecting(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{MaxBufferedEmits: 3, MaxBufferedBytes: 64})
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	down := make(chan string, 1)
	s.OnDisconnect(func(r string) { down <- r })
	fs.setFail(errors.New("refused")) // reconnection attempts fail until told

	// An ack whose event was sent ends with the connection.
	sentAck := make(chan error, 1)
	testkit.NoError(t, s.EmitWithAckFunc("sent", func(_ Args, err error) { sentAck <- err }))
	testkit.Equal(t, c.nextText(t), `20["sent"]`)
	c.drop(ReasonTransportClose)
	testkit.Equal(t, <-down, ReasonTransportClose)
	testkit.ErrorIs(t, <-sentAck, ErrDisconnected)
	testkit.True(t, !s.Connected())
	testkit.Equal(t, s.ID(), "")

	testkit.NoError(t, s.Emit("a", 1))
	testkit.NoError(t, s.Volatile().Emit("v")) // dropped
	_, err := s.Volatile().EmitWithAck(context.Background(), "v")
	testkit.ErrorIs(t, err, ErrDisconnected)
	bufAck := make(chan string, 1)
	testkit.NoError(t, s.EmitWithAckFunc("b", func(args Args, err error) {
		testkit.NoError(t, err)
		var v string
		_ = args.Decode(0, &v)
		bufAck <- v
	}))
	// An ack that times out while buffered takes its event out.
	_, err = s.Timeout(10*time.Millisecond).EmitWithAck(context.Background(), "late")
	testkit.ErrorIs(t, err, ErrTimeout)
	testkit.NoError(t, s.Emit("c"))
	testkit.ErrorIs(t, s.Emit("d"), ErrBufferFull, "count bound")
	big := make([]byte, 64)
	s2err := s.Emit("big", string(big))
	testkit.ErrorIs(t, s2err, ErrBufferFull, "byte bound")

	fs.setFail(nil)
	c2 := fs.next(t)
	testkit.Equal(t, c2.nextText(t), "0")
	c2.quiet(t) // nothing before the CONNECT reply
	c2.deliver(`0{"sid":"b"}`)
	testkit.Equal(t, c2.nextText(t), `2["a",1]`)
	testkit.Equal(t, c2.nextText(t), `22["b"]`) // id 1 went to the dropped volatile emit
	testkit.Equal(t, c2.nextText(t), `2["c"]`)
	c2.quiet(t)
	c2.deliver(`32["ok"]`)
	testkit.Equal(t, <-bufAck, "ok")
}

func TestReconnectionGivesUp(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{ReconnectionAttempts: 2})
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	m.OnReconnectAttempt(func(n int) { note(fmt.Sprint("attempt ", n)) })
	m.OnReconnectError(func(err error) { note("error " + err.Error()) })
	failed := make(chan struct{})
	m.OnReconnectFailed(func() { note("failed"); close(failed) })
	m.OnReconnect(func(n int) { note("reconnect") })
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	errs := make(chan error, 4)
	s.OnConnectError(func(err error) { errs <- err })
	fs.setFail(errors.New("refused"))
	c.drop(ReasonPingTimeout)
	testkit.Equal(t, (<-errs).Error(), "refused")
	testkit.Equal(t, (<-errs).Error(), "refused")
	deadline := time.Now().Add(5 * time.Second)
	for s.Emit("x") != ErrDisconnected && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	testkit.ErrorIs(t, s.Emit("x"), ErrDisconnected)
	testkit.Equal(t, fs.dialCount(), 3, "the first dial and two attempts")
	<-failed
	mu.Lock()
	testkit.Equal(t, events, []string{"attempt 1", "error refused", "attempt 2", "error refused", "failed"})
	mu.Unlock()
}

func TestReconnectHooks(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	got := make(chan string, 64)
	m.OnReconnectAttempt(func(n int) { got <- fmt.Sprint("attempt ", n) })
	m.OnReconnect(func(n int) { got <- fmt.Sprint("reconnect ", n) })
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	fs.setFail(errors.New("refused"))
	c.drop(ReasonTransportClose)
	testkit.Equal(t, <-got, "attempt 1")
	testkit.Equal(t, <-got, "attempt 2")
	fs.setFail(nil)
	c2 := fs.next(t)
	c2.nextText(t)
	c2.deliver(`0{"sid":"b"}`)
	last := 2
	for e := <-got; !strings.HasPrefix(e, "reconnect "); e = <-got {
		last++
		testkit.Equal(t, e, fmt.Sprint("attempt ", last))
	}
	waitFor(t, s.Connected)
	testkit.NoError(t, m.Close())
}

func TestNoReconnection(t *testing.T) {
	testkit.CheckGoroutines(t)
	off := false
	m, fs := newFakeManager(t, Options{Reconnection: &off})
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	reasons := make(chan string, 1)
	s.OnDisconnect(func(r string) { reasons <- r })
	c.drop(ReasonTransportError)
	testkit.Equal(t, <-reasons, ReasonTransportError)
	deadline := time.Now().Add(5 * time.Second)
	for s.Emit("x") != ErrDisconnected && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	testkit.ErrorIs(t, s.Emit("x"), ErrDisconnected)
	testkit.Equal(t, fs.dialCount(), 1)
}

func TestRecoveryAuth(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	n := 0
	auth := func() any { n++; return map[string]int{"n": n} }
	s, c := connect(t, m, fs, "/", auth, `0{"n":1}`, `0{"sid":"a","pid":"p1"}`)
	testkit.True(t, !s.Recovered())
	c.deliver(`2["news","x","off-1"]`)
	c.deliver(`2["news",1,"off-2"]`)
	c.deliver(`21["ask","not-an-offset"]`) // an event with an ack id has no offset
	c.deliver(`2["news","x",3]`)           // the last argument is not a string
	c.drop(ReasonTransportClose)

	c2 := fs.next(t)
	testkit.Equal(t, c2.nextText(t), `0{"pid":"p1","offset":"off-2","n":2}`)
	c2.deliver(`0{"sid":"a","pid":"p1"}`)
	waitFor(t, s.Recovered)
	testkit.Equal(t, s.ID(), "a")
	c2.drop(ReasonTransportClose)

	c3 := fs.next(t)
	testkit.Equal(t, c3.nextText(t), `0{"pid":"p1","offset":"off-2","n":3}`)
	c3.deliver(`0{"sid":"b","pid":"p2"}`) // a new session
	waitFor(t, s.Connected)
	testkit.True(t, !s.Recovered())
	testkit.Equal(t, s.ID(), "b")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConnectErrorAndServerDisconnect(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	res := make(chan error, 1)
	go func() {
		_, err := m.Socket(context.Background(), "/admin", nil)
		res <- err
	}()
	c := fs.next(t)
	testkit.Equal(t, c.nextText(t), "0/admin,")
	c.deliver(`4/admin,{"message":"nope","data":{"code":7}}`)
	err := <-res
	var ce *ConnectError
	testkit.True(t, errors.As(err, &ce))
	testkit.Equal(t, ce.Message, "nope")
	testkit.Equal(t, ce.Data, any(map[string]any{"code": float64(7)}))
	<-c.done() // the manager's last socket is gone: the connection closes

	s, c2 := connect(t, m, fs, "/", nil, "0", `0{"sid":"a"}`)
	reasons := make(chan string, 1)
	s.OnDisconnect(func(r string) { reasons <- r })
	pending := make(chan error, 1)
	go func() { _, err := s.EmitWithAck(context.Background(), "x"); pending <- err }()
	c2.nextText(t)
	c2.deliver(`1`)
	testkit.Equal(t, <-reasons, ReasonIOServerDisconnect)
	testkit.ErrorIs(t, <-pending, ErrDisconnected)
	<-c2.done()
	testkit.Equal(t, fs.dialCount(), 2, "no reconnection")
}

func TestDialFailsOnFirstAttempt(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	fs.setFail(errors.New("connection refused"))
	_, err := m.Socket(context.Background(), "/", nil)
	testkit.Equal(t, err.Error(), "connection refused")

	fs.setFail(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = m.Socket(ctx, "/", nil) // the server never answers the CONNECT
	testkit.ErrorIs(t, err, context.DeadlineExceeded)
	c := fs.next(t)
	<-c.done()
}

func TestEventsBeforeConnectReply(t *testing.T) {
	testkit.CheckGoroutines(t)
	m, fs := newFakeManager(t, Options{})
	s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a","pid":"p"}`)
	var mu sync.Mutex
	var log []string
	note := func(x string) {
		mu.Lock()
		log = append(log, x)
		mu.Unlock()
	}
	s.On("missed", func(ev *Event) {
		var v string
		_ = ev.Decode(0, &v)
		note(v)
	})
	s.OnConnect(func() { note("connect") })
	c.drop(ReasonTransportClose)
	c2 := fs.next(t)
	testkit.Equal(t, c2.nextText(t), `0{"pid":"p"}`)
	// As the Node.js server recovers a session: missed packets, then the reply.
	c2.deliver(`2["missed","m1","o1"]`)
	c2.deliver(`2["missed","m2","o2"]`)
	c2.deliver(`0{"sid":"a","pid":"p"}`)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(log) == 3 })
	mu.Lock()
	testkit.Equal(t, log, []string{"m1", "m2", "connect"})
	mu.Unlock()
	testkit.True(t, s.Recovered())
	c2.drop(ReasonTransportClose)
	testkit.Equal(t, fs.next(t).nextText(t), `0{"pid":"p","offset":"o2"}`)
}
