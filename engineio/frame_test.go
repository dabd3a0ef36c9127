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
			// NewMessageAt frames in the room in front of the data.
			at := func(data []byte) []byte {
				return append(bytes.Repeat([]byte{0xEE}, MessageHeadroom), data...)
			}
			if err := c.Send(NewMessage([]byte(text), false), NewMessage(bin, true),
				NewMessageAt(at([]byte(text)), false), NewMessageAt(at(bin), true)); err != nil {
				t.Fatal(err)
			}
			for range 2 {
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
}

// TestNewMessageAt checks that a message made in a buffer with headroom
// frames itself in place, and that text it must repair (invalid UTF-8)
// still frames correctly from the repaired copy.
func TestNewMessageAt(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		buf := append(make([]byte, MessageHeadroom), strings.Repeat("x", n)...)
		m := NewMessageAt(buf, false)
		f := m.wsFrame()
		if &f[len(f)-1] != &buf[len(buf)-1] {
			t.Fatalf("size %d: frame not made in place", n)
		}
		want := NewMessage([]byte(strings.Repeat("x", n)), false).wsFrame()
		if !bytes.Equal(f, want) {
			t.Fatalf("size %d: frame differs from NewMessage's", n)
		}
		if string(m.Data()) != strings.Repeat("x", n) {
			t.Fatalf("size %d: data changed", n)
		}
	}
	m := NewMessageAt(append(make([]byte, MessageHeadroom), "a\xffb"...), false)
	if got := string(m.wsFrame()); got != "\x81\x064a\uFFFDb" {
		t.Fatalf("repaired frame %q", got)
	}
}
