package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Attacks of the hardening issue, run against Go and Node.js alike: the server must answer
// as Node does, and the official clients beside the attacker must not notice.

// TestInvalidUTF8NotRelayed: text with invalid UTF-8 sent for broadcast to a room. Over
// WebSocket the sender is closed (1007, as Node's ws) and nothing is relayed; over polling
// the text is decoded as Node decodes it (each invalid byte becomes U+FFFD). Official
// clients in the room — over WebSocket and over polling — stay connected and receive
// valid text only.
func TestInvalidUTF8NotRelayed(t *testing.T) {
	perTarget(t, func(e *env) {
		ws := e.connect()
		polling := envOn(e.t, e.target, modes[1], e.srv, e.drv).connect()

		r := e.dialWS()
		r.connect()
		testkit.NoError(e.t, r.conn.WriteMessage(websocket.TextMessage, []byte("42[\"bcast\",null,\"\xff\xfe\"]")))
		_ = r.conn.SetReadDeadline(time.Now().Add(opTimeout))
		var closeCode int
		for {
			typ, b, err := r.conn.ReadMessage()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					closeCode = ce.Code
				}
				break
			}
			if typ == websocket.TextMessage && string(b) == "2" {
				_ = r.conn.WriteMessage(websocket.TextMessage, []byte("3"))
			}
		}
		testkit.Equal(e.t, closeCode, websocket.CloseInvalidFramePayloadData, "the sender is closed with 1007")

		// Over polling: relayed as U+FFFD.
		sid := e.pollingHandshake()
		q := "EIO=4&transport=polling&sid=" + sid
		status, _, _ := e.do("POST", q, []byte("40"))
		testkit.Equal(e.t, status, http.StatusOK)
		_, _, got := e.do("GET", q, nil)
		testkit.True(e.t, strings.HasPrefix(got, "40{"), "CONNECT reply %q", got)
		status, _, _ = e.do("POST", q, []byte("42[\"bcast\",null,\"a\xff\xfeb\"]"))
		testkit.Equal(e.t, status, http.StatusOK)

		for _, c := range []*client{ws, polling} {
			testkit.Equal(e.t, c.next("msg"), list{"a\ufffd\ufffdb"}, "%s: the relayed text", c.Handle())
			testkit.Equal(e.t, c.ack("echo", "unharmed"), list{"unharmed"})
		}
	})
}

// TestHandshakeHeaderLimit: a handshake with more than 16 KiB of headers is refused with
// 431 (Node's default --max-http-header-size), over polling and WebSocket; a client
// already connected carries on.
func TestHandshakeHeaderLimit(t *testing.T) {
	perTarget(t, func(e *env) {
		other := e.connect()
		big := strings.Repeat("h", 17<<10)
		for _, transport := range []string{"polling", "websocket"} {
			req, err := http.NewRequestWithContext(e.ctx(), "GET", e.engineURL("EIO=4&transport="+transport), nil)
			testkit.NoError(e.t, err)
			req.Header.Set("X-Big", big)
			if transport == "websocket" {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := httpClient.Do(req)
			testkit.NoError(e.t, err, transport)
			resp.Body.Close()
			testkit.Equal(e.t, resp.StatusCode, http.StatusRequestHeaderFieldsTooLarge, transport)
		}
		testkit.Equal(e.t, other.ack("echo", "unharmed"), list{"unharmed"})
	})
}
