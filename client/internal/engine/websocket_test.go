package engine

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// wsServer upgrades every request and hands the socket to serve, which
// owns it.
func wsServer(t *testing.T, serve func(ws *websocket.Conn)) *httptest.Server {
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// discard reads until the socket fails.
func discard(ws *websocket.Conn) {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

// A WebSocket server that never pings is detected.
func TestPingTimeoutWebSocket(t *testing.T) {
	testkit.CheckGoroutines(t)
	ts := wsServer(t, func(ws *websocket.Conn) {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"abcdefghijklmnopqrst","upgrades":[],"pingInterval":50,"pingTimeout":50,"maxPayload":1000}`))
		discard(ws)
	})
	c, err := Dial(t.Context(), ts.URL, Options{Transports: []string{TransportWebSocket}})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, ReasonPingTimeout, 2*time.Second)
}

// ctx bounds the wait for the open packet.
func TestHandshakeTimeoutWebSocket(t *testing.T) {
	testkit.CheckGoroutines(t)
	ts := wsServer(t, discard)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, ts.URL, Options{Transports: []string{TransportWebSocket}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v", err)
	}
}

// A text frame that is no packet closes with "parse error"; one over
// MaxIncoming with "transport error".
func TestWebSocketBadFrames(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		frame        []byte
	}{
		{"parse error", ReasonParseError, []byte("x")},
		{"too large", ReasonTransportError, make([]byte, MaxIncoming+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			ts := wsServer(t, func(ws *websocket.Conn) {
				_ = ws.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"abcdefghijklmnopqrst","upgrades":[],"pingInterval":5000,"pingTimeout":5000,"maxPayload":1000}`))
				_ = ws.WriteMessage(websocket.TextMessage, []byte("4ok"))
				_ = ws.WriteMessage(websocket.BinaryMessage, tc.frame)
				if tc.reason == ReasonParseError {
					_ = ws.WriteMessage(websocket.TextMessage, tc.frame)
				}
				discard(ws)
			})
			in := newInbox()
			c, err := Dial(t.Context(), ts.URL, Options{Transports: []string{TransportWebSocket}, OnMessage: in.onMessage})
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, c, tc.reason, 5*time.Second)
			if got := in.wait(t, 1); string(got[0].Data) != "ok" {
				t.Fatalf("first message %q", got[0].Data)
			}
		})
	}
}

// A failed probe leaves the session on polling, working.
func TestUpgradeProbeFails(t *testing.T) {
	testkit.CheckGoroutines(t)
	e := newEnv(t, quiet(), nil)
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/engine.io/", func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			// A probe that gets a wrong answer.
			ws, err := up.Upgrade(w, r, nil)
			if err == nil {
				_, _, _ = ws.ReadMessage()
				_ = ws.WriteMessage(websocket.TextMessage, []byte("3nope"))
				discard(ws)
				ws.Close()
			}
			return
		}
		e.srv.ServeHTTP(w, r)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	in := newInbox()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.URL, Options{OnMessage: in.onMessage})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond)
	if err := c.Send(Message{Data: []byte("still here")}); err != nil {
		t.Fatal(err)
	}
	if got := in.wait(t, 1); string(got[0].Data) != "still here" || c.Transport() != TransportPolling {
		t.Fatalf("got %q on %s", got[0].Data, c.Transport())
	}
}
