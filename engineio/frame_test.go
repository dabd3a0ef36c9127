package engineio

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestFrameLengths sends messages around every WebSocket length-encoding
// boundary, with and without compression, and checks the client reads
// them back intact.
func TestFrameLengths(t *testing.T) {
	sizes := []int{0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 70000}
	for _, deflate := range []bool{false, true} {
		cfg := quietConfig()
		cfg.PerMessageDeflate = deflate
		e := newEnv(t, cfg, nil)
		ws, sid := e.openWS(t)
		c := e.rec(t, sid).conn
		for _, n := range sizes {
			text := strings.Repeat("t", n)
			bin := bytes.Repeat([]byte{0xAB}, n)
			if err := c.Send(NewMessage([]byte(text), false), NewMessage(bin, true)); err != nil {
				t.Fatal(err)
			}
			mt, got := wsRead(t, ws)
			if mt != websocket.TextMessage || got != "4"+text {
				t.Fatalf("deflate=%v size %d: text frame type %d, %d bytes", deflate, n, mt, len(got))
			}
			mt, got = wsRead(t, ws)
			if mt != websocket.BinaryMessage || got != string(bin) {
				t.Fatalf("deflate=%v size %d: binary frame type %d, %d bytes", deflate, n, mt, len(got))
			}
		}
	}
}
