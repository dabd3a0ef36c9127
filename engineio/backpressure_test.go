package engineio

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// blockingConfig has a fast heartbeat, and blockFor outlasts several rounds
// of it: long enough that the client's pong waits, unread, behind a message
// whose handler is blocked, past PingInterval+PingTimeout.
func blockingConfig() (Config, time.Duration) {
	cfg := Config{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond}
	return cfg, 3 * (cfg.PingInterval + cfg.PingTimeout)
}

// blockOn makes "block" messages hold the reader for d, then echo.
func blockOn(d time.Duration) func(*recorder) {
	return func(r *recorder) {
		r.onMessage = func(r *recorder, data []byte, binary bool) {
			if string(data) == "block" {
				time.Sleep(d)
			}
			_ = r.conn.Send(NewMessage(data, binary))
		}
	}
}

// A handler that blocks does not get its connection timed out: the pong
// is read once it returns. A client that stops answering still times out,
// once the handler has returned.
func TestHeartbeatWhileHandlerBlocksWebSocket(t *testing.T) {
	cfg, block := blockingConfig()
	e := newEnv(t, cfg, blockOn(block))

	ws, sid := e.openWS(t)
	p := startPeer(t, ws)
	rec := e.rec(t, sid)
	p.send(t, "4block")
	p.expectText(t, "4block")
	pongs := p.pongs.Load()
	waitFor(t, "the heartbeat to go on", func() bool { return p.pongs.Load() > pongs+1 })
	p.send(t, "4after")
	p.expectText(t, "4after")
	if n := rec.closeCount(); n != 0 {
		t.Fatalf("closed while the handler blocked: %+v", rec.closes)
	}

	// The same, with a client that goes silent: closed after the handler.
	silent, ssid := e.openWS(t)
	srec := e.rec(t, ssid)
	wsWrite(t, silent, websocket.TextMessage, "4block")
	ev := srec.waitClose(t)
	if ev.reason != ReasonPingTimeout {
		t.Errorf("silent client: close = %+v", ev)
	}
	srec.mu.Lock()
	handled := len(srec.msgs)
	srec.mu.Unlock()
	if handled != 1 {
		t.Errorf("silent client: %d messages handled", handled)
	}
	p.send(t, "4still")
	p.expectText(t, "4still")
}

func TestHeartbeatWhileHandlerBlocksPolling(t *testing.T) {
	cfg, block := blockingConfig()
	e := newEnv(t, cfg, blockOn(block))
	sid := e.handshake(t)
	rec := e.rec(t, sid)
	posted := make(chan response, 1)
	go func() {
		// Like the real client, the next POST (the pong) waits for this one.
		req, _ := http.NewRequest(http.MethodPost, e.url("EIO=4&transport=polling&sid="+sid), strings.NewReader("4block"))
		resp, err := e.client.Do(req)
		if err != nil {
			posted <- response{status: -1}
			return
		}
		resp.Body.Close()
		posted <- response{status: resp.StatusCode}
	}()
	if r := e.poll(t, sid); r.body != "2" {
		t.Fatalf("GET %q, want a ping", r.body)
	}
	if r := recv(t, posted); r.status != http.StatusOK {
		t.Fatalf("blocked POST: %d", r.status)
	}
	if r := e.post(t, sid, "3"); r.status != http.StatusOK {
		t.Fatalf("pong POST: %d %q", r.status, r.body)
	}
	if r := e.poll(t, sid); !strings.HasPrefix(r.body, "4block") {
		t.Fatalf("GET %q, want the echo", r.body)
	}
	if n := rec.closeCount(); n != 0 {
		t.Fatalf("closed while the handler blocked: %+v", rec.closes)
	}
}

// Close from another goroutine while OnMessage is blocked closes the
// transport at once; OnClose follows when OnMessage returns, exactly once.
func TestCloseWhileHandlerBlocked(t *testing.T) {
	for _, transport := range []string{TransportWebSocket, TransportPolling} {
		t.Run(transport, func(t *testing.T) {
			entered := make(chan struct{}, 1)
			release := make(chan struct{})
			e := newEnv(t, quietConfig(), func(r *recorder) {
				r.onMessage = func(*recorder, []byte, bool) {
					entered <- struct{}{}
					<-release
				}
			})
			var rec *recorder
			var posted <-chan response
			var ws *websocket.Conn
			if transport == TransportWebSocket {
				var sid string
				ws, sid = e.openWS(t)
				rec = e.rec(t, sid)
				wsWrite(t, ws, websocket.TextMessage, "4hold")
			} else {
				sid := e.handshake(t)
				rec = e.rec(t, sid)
				ch := make(chan response, 1)
				go func() { ch <- e.post(t, sid, "4hold") }()
				posted = ch
				defer func() {
					if r := recv(t, posted); r.status != http.StatusOK {
						t.Errorf("blocked POST: %d", r.status)
					}
				}()
			}
			<-entered
			done := make(chan struct{})
			go func() { rec.conn.Close(); close(done) }()
			<-done
			if transport == TransportWebSocket {
				wsExpectClosed(t, ws)
			} else if r := e.poll(t, rec.conn.ID()); r.body != "1" {
				t.Errorf("GET %q, want the close packet", r.body)
			}
			if err := rec.conn.Send(NewMessage([]byte("x"), false)); !errors.Is(err, ErrClosed) {
				t.Errorf("Send = %v", err)
			}
			if n := rec.closeCount(); n != 0 {
				t.Fatal("OnClose ran while OnMessage was blocked")
			}
			close(release)
			if ev := rec.waitClose(t); ev.reason != ReasonForcedClose {
				t.Errorf("close = %+v", ev)
			}
			if n := rec.closeCount(); n != 1 {
				t.Errorf("OnClose called %d times", n)
			}
		})
	}
}
