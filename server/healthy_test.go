package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The attack tests keep a healthy client in the attacker's room (or in "/"
// when the attack targets the namespace): while the attack runs, a ticker
// broadcasts numbered "tick" events to that room every 20 ms, and at the
// end the healthy client must have received all of them, in order, and
// still be connected.

// isTick reports whether a frame (or polling packet) is one of the
// ticker's broadcasts: attackers in the room skip them.
func isTick(frame string) bool { return strings.HasPrefix(frame, `42["tick`) }

// ticker broadcasts "tick" 0, 1, 2… with emit (a namespace's or a room's
// Emit), the first at once, then every 20 ms, until finish.
type ticker struct {
	emit func(event string, args ...any) error
	stop chan struct{}
	done chan struct{}
	sent atomic.Int64 // ticks whose Emit returned
	err  atomic.Value // error: an Emit failed
}

func startTicker(t *testing.T, emit func(event string, args ...any) error) *ticker {
	tk := &ticker{emit: emit, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tk.done)
		for i := int64(0); ; i++ {
			if err := emit("tick", i); err != nil {
				tk.err.Store(fmt.Errorf("tick %d: %w", i, err))
				return
			}
			tk.sent.Add(1)
			select {
			case <-tk.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(tk.halt)
	return tk
}

func (tk *ticker) halt() {
	select {
	case <-tk.stop:
	default:
		close(tk.stop)
	}
	<-tk.done
}

// finish stops the ticks and broadcasts "tick-end" with their number; it
// returns that number.
func (tk *ticker) finish(t *testing.T) int64 {
	t.Helper()
	tk.halt()
	if err, _ := tk.err.Load().(error); err != nil {
		t.Fatalf("ticker: %v", err)
	}
	n := tk.sent.Load()
	testkit.NoError(t, tk.emit("tick-end", n), "ticker: tick-end")
	return n
}

// readSkipTicks returns the next frame that is not a tick, answering
// pings: for attackers and one-off clients in the ticker's room.
func (w *wire) readSkipTicks() string {
	for {
		if f := w.read(); !isTick(f) {
			return f
		}
	}
}

// healthy reads a wire in a goroutine, answering pings: it checks the
// ticks as they arrive and hands every other frame to the test (frames).
type healthy struct {
	w        *wire
	frames   chan string // frames other than ticks, in order
	quit     chan struct{}
	readDone chan struct{}
	ended    chan struct{} // closed when "tick-end" arrived

	mu      sync.Mutex
	got     int64  // ticks received
	bad     string // the first tick out of order, if any
	end     int64  // the number "tick-end" announced
	readErr error  // why the reader stopped
}

// dialHealthy connects a healthy client to "/" and watches it.
func dialHealthy(t *testing.T, url string) *healthy {
	t.Helper()
	return watch(t, dialWire(url, "/"))
}

// watch starts reading w; its frames must then be taken from frames.
func watch(t *testing.T, w *wire) *healthy {
	h := &healthy{w: w, frames: make(chan string, 64), quit: make(chan struct{}),
		readDone: make(chan struct{}), ended: make(chan struct{})}
	go h.read()
	t.Cleanup(func() {
		close(h.quit)
		w.ws.Close()
		<-h.readDone
	})
	return h
}

func (h *healthy) read() {
	defer close(h.readDone)
	for {
		_, b, err := h.w.ws.ReadMessage()
		if err != nil {
			h.mu.Lock()
			h.readErr = err
			h.mu.Unlock()
			return
		}
		frame := string(b)
		switch {
		case frame == "2":
			h.w.send("3")
		case strings.HasPrefix(frame, `42["tick",`):
			var args []any
			err := json.Unmarshal(b[2:], &args)
			h.mu.Lock()
			if n, ok := tickNumber(args, err); (!ok || n != h.got) && h.bad == "" {
				h.bad = fmt.Sprintf("tick %d arrived as %s", h.got, frame)
			}
			h.got++
			h.mu.Unlock()
		case strings.HasPrefix(frame, `42["tick-end",`):
			var args []any
			err := json.Unmarshal(b[2:], &args)
			n, ok := tickNumber(args, err)
			h.mu.Lock()
			if !ok && h.bad == "" {
				h.bad = "bad tick-end " + frame
			}
			h.end = n
			h.mu.Unlock()
			close(h.ended)
		default:
			select {
			case h.frames <- frame:
			case <-h.quit:
				return
			}
		}
	}
}

func tickNumber(args []any, err error) (int64, bool) {
	if err != nil || len(args) != 2 {
		return 0, false
	}
	f, ok := args[1].(float64)
	return int64(f), ok
}

func (h *healthy) received() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

// next returns the next frame that is not a tick.
func (h *healthy) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-h.frames:
		return f
	case <-h.readDone:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.readErr.Error()
	}
}

// flowing waits until the client has received a tick sent after this call:
// it is being served while the attack runs.
func (h *healthy) flowing(t *testing.T, tk *ticker) {
	t.Helper()
	after := tk.sent.Load() + 1 // the tick being sent now may predate the call
	testkit.Eventually(t, "the healthy client receiving ticks during the attack", func() bool {
		return h.received() > after
	})
}

// check waits for "tick-end" (after tk.finish) and asserts that every tick
// arrived, in order, with the connection still open.
func (h *healthy) check(t *testing.T, n int64) {
	t.Helper()
	select {
	case <-h.ended:
	case <-h.readDone:
	case <-time.After(15 * time.Second):
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.readErr != nil {
		t.Fatalf("healthy client disconnected after %d of %d ticks: %v", h.got, n, h.readErr)
	}
	if h.bad != "" {
		t.Fatalf("healthy client: %s", h.bad)
	}
	select {
	case <-h.ended:
	default:
		t.Fatalf("healthy client: no tick-end after %d of %d ticks", h.got, n)
	}
	if h.got != n || h.end != n {
		t.Fatalf("healthy client received %d ticks, %d sent (tick-end says %d)", h.got, n, h.end)
	}
	t.Logf("healthy client received all %d ticks, in order", n)
}
