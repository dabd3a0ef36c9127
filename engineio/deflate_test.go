package engineio

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// deflated returns the permessage-deflate payload (RFC 7692 §7.2.1: a raw
// DEFLATE stream, sync-flushed, without its final 00 00 ff ff) of "4"
// followed by n bytes of 'a', built without holding the n bytes.
func deflated(t *testing.T, n int) []byte {
	t.Helper()
	var out bytes.Buffer
	fw, err := flate.NewWriter(&out, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	_, _ = fw.Write([]byte("4"))
	for ; n > 0; n -= len(chunk) {
		_, _ = fw.Write(chunk[:min(n, len(chunk))])
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// writeClientFrame writes one masked WebSocket frame with the given first
// byte (FIN, RSV1 for "compressed", opcode) straight to the socket.
func writeClientFrame(w io.Writer, first byte, payload []byte) error {
	hdr := []byte{first, 0x80 | 127}
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(len(payload)))
	var key [4]byte
	_, _ = rand.Read(key[:])
	hdr = append(hdr, key[:]...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ key[i%4]
	}
	_, err := w.Write(append(hdr, masked...))
	return err
}

// A compressed message is never inflated past MaxPayload: a small frame
// that inflates to 64 MiB closes its connection with 1009 while the
// server's allocations stay a small fraction of the inflated size; a
// healthy connection keeps receiving meanwhile.
func TestDeflateBomb(t *testing.T) {
	cfg := quietConfig()
	cfg.PerMessageDeflate = true
	e := newEnv(t, cfg, nil)
	healthy := startSteady(t, e)

	const inflated = 64 << 20
	payload := deflated(t, inflated)
	t.Logf("compressed frame: %d KiB, inflates to %d MiB", len(payload)>>10, inflated>>20)
	if int64(len(payload)) > DefaultMaxPayload {
		t.Fatalf("compressed frame over MaxPayload: %d", len(payload))
	}
	bomb, sid := openCompressed(t, e)
	rec := e.rec(t, sid)

	before := allocatedBytes()
	_ = writeClientFrame(bomb.NetConn(), 0xC1, payload) // FIN, RSV1, text
	healthy.flowing(t)
	ev := rec.waitClose(t)
	grown := allocatedBytes() - before
	t.Logf("allocated during the attack: %.1f MiB", float64(grown)/(1<<20))
	if ev.reason != ReasonTransportError || !errors.Is(ev.err, errTooLarge) {
		t.Errorf("close = %+v", ev)
	}
	wsExpectCloseCode(t, bomb, websocket.CloseMessageTooBig)
	if grown > inflated/8 {
		t.Errorf("allocated %d bytes while inflating, want < %d", grown, inflated/8)
	}
	if n := len(rec.msgs); n != 0 {
		t.Errorf("%d messages reached the handler", n)
	}
	healthy.echo(t, "still here")
	healthy.check(t)
}

// A compressed message of exactly MaxPayload inflated bytes still passes;
// one byte more does not.
func TestDeflateLimitIsExact(t *testing.T) {
	cfg := quietConfig()
	cfg.PerMessageDeflate = true
	cfg.MaxPayload = 10_000
	e := newEnv(t, cfg, func(r *recorder) {
		r.onMessage = func(r *recorder, data []byte, _ bool) {
			_ = r.conn.Send(NewMessage(strconv.AppendInt(nil, int64(len(data)), 10), false))
		}
	})
	for _, tt := range []struct {
		n  int // bytes of 'a' after the "4"
		ok bool
	}{{9_999, true}, {10_000, false}} {
		ws, sid := openCompressed(t, e)
		_ = writeClientFrame(ws.NetConn(), 0xC1, deflated(t, tt.n))
		if tt.ok {
			if _, data := wsRead(t, ws); data != "49999" {
				t.Errorf("n=%d: got %q", tt.n, data)
			}
			continue
		}
		wsExpectCloseCode(t, ws, websocket.CloseMessageTooBig)
		if ev := e.rec(t, sid).waitClose(t); !errors.Is(ev.err, errTooLarge) {
			t.Errorf("n=%d: close = %+v", tt.n, ev)
		}
	}
}

// openCompressed opens a WebSocket session with permessage-deflate.
func openCompressed(t *testing.T, e *testEnv) (*websocket.Conn, string) {
	t.Helper()
	d := websocketDialer()
	d.EnableCompression = true
	ws, resp, err := d.Dial(e.wsURL("EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if !strings.Contains(resp.Header.Get("Sec-Websocket-Extensions"), "permessage-deflate") {
		t.Fatal("compression not negotiated")
	}
	_, open := wsRead(t, ws)
	return ws, parseOpen(t, open).SID
}
