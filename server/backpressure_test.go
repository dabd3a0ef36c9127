package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// burst is a handler that records the sequence numbers it is given, after
// waiting for its gate to open.
type burst struct {
	gate chan struct{}
	mu   sync.Mutex
	seen []int
	got  chan struct{} // closed when want numbers arrived
	want int
}

func newBurst(want int) *burst {
	return &burst{gate: make(chan struct{}), got: make(chan struct{}), want: want}
}

func (b *burst) handle(_ *server.Socket, ev *server.Event) {
	<-b.gate
	var n int
	if err := ev.Decode(0, &n); err != nil {
		return
	}
	b.mu.Lock()
	b.seen = append(b.seen, n)
	if len(b.seen) == b.want {
		close(b.got)
	}
	b.mu.Unlock()
}

func (b *burst) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

func (b *burst) checkInOrder(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, n := range b.seen {
		if n != i {
			t.Fatalf("event %d arrived as number %d: out of order", i, n)
		}
	}
}

// burstEvent is the i-th event of a burst, padded so that the burst is much
// larger than the server's budget.
func burstEvent(i int, pad string) string { return fmt.Sprintf(`42["n",%d,"%s"]`, i, pad) }

// TestBurstIsThrottledNotCut sends 100,000 events from one client while its
// handler is held: the server stops reading (its heap stays near the
// budget instead of growing with the burst), another client keeps being
// served, a healthy client in "/" receives every broadcast made to the
// namespace meanwhile, in order, and once the handler runs every event is
// handled, in order, and the sender is still connected.
func TestBurstIsThrottledNotCut(t *testing.T) {
	for _, tr := range []string{"websocket", "polling"} {
		t.Run(tr, func(t *testing.T) {
			const n = 100_000
			pad := strings.Repeat("x", 500) // 50 MB in all
			b := newBurst(n)
			srv := server.New(server.Config{})
			srv.Of("/").On("n", b.handle)
			srv.Of("/").On("ping", func(_ *server.Socket, ev *server.Event) { _ = ev.Ack("pong") })
			ts := httptest.NewServer(srv)
			defer ts.Close()
			defer srv.Close(context.Background())
			healthy := dialHealthy(t, ts.URL)
			ticks := startTicker(t, srv.Of("/").Emit) // to the sender too

			base := testkit.LiveHeap()
			var sent atomic.Int64
			sendDone := make(chan error, 1)
			var sender interface{ ping() string }
			switch tr {
			case "websocket":
				w := dialWire(ts.URL, "/")
				defer w.ws.Close()
				sender = wsPinger{w}
				go func() {
					for i := 0; i < n; i++ {
						if err := w.ws.WriteMessage(websocket.TextMessage, []byte(burstEvent(i, pad))); err != nil {
							sendDone <- err
							return
						}
						sent.Add(1)
					}
					sendDone <- nil
				}()
			case "polling":
				p := dialPoll(t, ts.URL)
				defer p.close()
				sender = p
				go func() {
					var body strings.Builder
					for i := 0; i < n; {
						body.Reset()
						k := 0
						for ; i < n && body.Len() < 400_000; i, k = i+1, k+1 {
							if body.Len() > 0 {
								body.WriteByte(0x1e)
							}
							body.WriteString(burstEvent(i, pad))
						}
						if err := p.post(body.String()); err != nil {
							sendDone <- err
							return
						}
						sent.Add(int64(k))
					}
					sendDone <- nil
				}()
			}

			// While the handler is held, the sender stalls: wait until it
			// has stopped making progress, sampling the heap meanwhile.
			var peak testkit.PeakHeap
			last, still := int64(-1), 0
			for still < 5 {
				time.Sleep(100 * time.Millisecond)
				peak.Sample()
				if cur := sent.Load(); cur == last {
					still++
				} else {
					last, still = cur, 0
				}
			}
			testkit.True(t, last < n/2, "the sender was not slowed down: %d of %d events sent while the handler was held", last, n)
			growth := int64(peak.Max) - int64(base)
			t.Logf("%s: %d events sent before the sender stalled; heap growth %d kB (the burst is %d MB)", tr, last, growth>>10, n*len(pad)>>20)
			testkit.True(t, growth < 12<<20, "heap grew by %d bytes while the reader should have stopped", growth)

			// Another client is served meanwhile, and the healthy one keeps
			// receiving.
			other := dialWire(ts.URL, "/")
			defer other.ws.Close()
			other.send(`421["ping"]`)
			testkit.Equal(t, other.readSkipTicks(), `431["pong"]`)
			healthy.flowing(t, ticks)

			close(b.gate)
			select {
			case <-b.got:
			case <-time.After(60 * time.Second):
				t.Fatalf("only %d of %d events handled", b.count(), n)
			}
			testkit.NoError(t, <-sendDone)
			b.checkInOrder(t)
			testkit.Equal(t, sender.ping(), `431["pong"]`, "the sender is still connected")
			healthy.check(t, ticks.finish(t))
		})
	}
}

// TestSlowHandlersKeepConnection: handlers much slower than the sender keep
// the reader waiting across several heartbeats; the connection survives,
// because handlers make progress (the pongs wait unread behind the events),
// and a healthy client in "/" receives every broadcast made meanwhile.
func TestSlowHandlersKeepConnection(t *testing.T) {
	const n = 60
	srv := server.New(server.Config{
		PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond,
		MaxPendingEvents: 4,
	})
	var handled atomic.Int64
	srv.Of("/").On("slow", func(*server.Socket, *server.Event) {
		time.Sleep(20 * time.Millisecond) // 1.2 s in all: six heartbeats
		handled.Add(1)
	})
	srv.Of("/").On("ping", func(_ *server.Socket, ev *server.Event) { _ = ev.Ack("pong") })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	healthy := dialHealthy(t, ts.URL)
	ticks := startTicker(t, srv.Of("/").Emit) // to the sender too

	w := dialWire(ts.URL, "/")
	defer w.ws.Close()
	for i := 0; i < n; i++ {
		w.send(`42["slow"]`)
	}
	w.send(`421["ping"]`)
	healthy.flowing(t, ticks)
	testkit.Equal(t, w.readSkipTicks(), `431["pong"]`)
	testkit.Equal(t, handled.Load(), int64(n))
	healthy.check(t, ticks.finish(t))
}

// TestStalledHandlersCloseConnection: when no handler of a connection
// finishes anything for PingInterval+PingTimeout while its reader waits,
// the connection is closed (as a heartbeat would close it); others carry on,
// and a healthy client in "/" receives every broadcast made meanwhile.
func TestStalledHandlersCloseConnection(t *testing.T) {
	release := make(chan struct{})
	srv := server.New(server.Config{
		PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond,
	})
	srv.Of("/").On("stuck", func(*server.Socket, *server.Event) { <-release })
	srv.Of("/").On("ping", func(_ *server.Socket, ev *server.Event) { _ = ev.Ack("pong") })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	defer close(release)
	healthy := dialHealthy(t, ts.URL)
	ticks := startTicker(t, srv.Of("/").Emit) // to the stuck client too

	stuck := dialWire(ts.URL, "/")
	defer stuck.ws.Close()
	go func() {
		for i := 0; i < 3000; i++ {
			if stuck.ws.WriteMessage(websocket.TextMessage, []byte(`42["stuck"]`)) != nil {
				return
			}
		}
	}()
	healthy.flowing(t, ticks)
	_ = stuck.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := stuck.ws.ReadMessage(); err != nil {
			testkit.True(t, !strings.Contains(err.Error(), "timeout"), "still connected: %v", err)
			break
		}
	}
	other := dialWire(ts.URL, "/")
	defer other.ws.Close()
	other.send(`421["ping"]`)
	testkit.Equal(t, other.readSkipTicks(), `431["pong"]`)
	healthy.check(t, ticks.finish(t))
}

type wsPinger struct{ w *wire }

func (p wsPinger) ping() string {
	p.w.send(`421["ping"]`)
	return p.w.readSkipTicks()
}

// pollClient is a bare Engine.IO polling client connected to "/": one POST
// at a time (as the official client), a GET loop answering pings.
type pollClient struct {
	t       *testing.T
	url     string
	pong    atomic.Bool // a ping arrived: the next POST carries the pong
	packets chan string
	stop    chan struct{}
	wg      sync.WaitGroup
}

func dialPoll(t *testing.T, base string) *pollClient {
	t.Helper()
	res, err := http.Get(base + "/socket.io/?EIO=4&transport=polling")
	testkit.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	i := strings.Index(string(body), `"sid":"`)
	testkit.True(t, i > 0, "handshake: %s", body)
	sid := string(body[i+7 : i+27])
	p := &pollClient{t: t, url: base + "/socket.io/?EIO=4&transport=polling&sid=" + sid,
		packets: make(chan string, 16), stop: make(chan struct{})}
	testkit.NoError(t, p.post("40"))
	p.wg.Add(1)
	go p.getLoop()
	for pkt := range p.packets {
		if strings.HasPrefix(pkt, "40") {
			break
		}
	}
	return p
}

func (p *pollClient) getLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		res, err := http.Get(p.url)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return
		}
		for _, pkt := range strings.Split(string(body), "\x1e") {
			switch {
			case pkt == "2":
				p.pong.Store(true)
			case pkt == "1":
				return
			case pkt == "6":
			case isTick(pkt): // the healthy client's ticks reach "/" as a whole
			default:
				select {
				case p.packets <- pkt:
				case <-p.stop:
					return
				}
			}
		}
	}
}

func (p *pollClient) post(body string) error {
	if p.pong.Swap(false) {
		body = "3\x1e" + body
	}
	res, err := http.Post(p.url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("POST: %d %s", res.StatusCode, b)
	}
	return nil
}

func (p *pollClient) ping() string {
	if err := p.post(`421["ping"]`); err != nil {
		return err.Error()
	}
	select {
	case pkt := <-p.packets:
		return pkt
	case <-time.After(10 * time.Second):
		return "timeout"
	}
}

func (p *pollClient) close() {
	_ = p.post("1")
	close(p.stop)
	p.wg.Wait()
}

// TestBurstBroadcastPacedToReaders: a handler emits 20,000 messages to a
// room as fast as it can. Readers slower than the handler are not cut off:
// the handler is paced to them (each waits until their queue is taken),
// and they receive every message, in order, as well as every one of the
// numbered broadcasts the test makes to the room meanwhile. A client that
// does not read at all costs the handler one WriteTimeout, then is
// disconnected as a slow consumer.
func TestBurstBroadcastPacedToReaders(t *testing.T) {
	const n = 20_000
	srv := server.New(server.Config{MaxQueuedMessages: 256, WriteTimeout: 500 * time.Millisecond})
	published := make(chan struct{})
	srv.Of("/").On("join", func(s *server.Socket, ev *server.Event) {
		s.Join("room")
		_ = ev.Ack(true)
	})
	pad := strings.Repeat("p", 1000) // 20 MB in all: more than socket buffers hold
	srv.Of("/").On("publish", func(s *server.Socket, ev *server.Event) {
		for i := 0; i < n; i++ {
			_ = s.Namespace().To("room").Emit("m", i, pad)
		}
		close(published)
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	join := func() *wire {
		w := dialWire(ts.URL, "/")
		w.send(`421["join"]`)
		testkit.Equal(t, w.read(), `431[true]`)
		return w
	}
	deaf := join() // never reads again
	defer deaf.ws.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	readers := make([]*healthy, 3)
	for r := range readers {
		w := join()
		defer w.ws.Close()
		readers[r] = watch(t, w) // also checks the ticks
	}
	ticks := startTicker(t, srv.Of("/").To("room").Emit) // to the deaf client too
	for r, h := range readers {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if r == 0 && i%1000 == 0 {
					time.Sleep(20 * time.Millisecond) // a slow reader
				}
				if got, want := h.next(t), fmt.Sprintf(`42["m",%d,"%s"]`, i, pad); got != want {
					errs <- fmt.Errorf("reader %d: message %d is %q, want %q", r, i, got, want)
					return
				}
			}
		}(r)
	}
	pub := dialWire(ts.URL, "/")
	defer pub.ws.Close()
	pub.send(`42["publish"]`)
	readers[0].flowing(t, ticks)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	<-published
	// The deaf client was cut off as a slow consumer.
	_ = deaf.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := deaf.ws.ReadMessage(); err != nil {
			testkit.True(t, !strings.Contains(err.Error(), "timeout"), "the deaf client is still connected: %v", err)
			break
		}
	}
	sent := ticks.finish(t)
	for _, h := range readers {
		h.check(t, sent)
	}
}
