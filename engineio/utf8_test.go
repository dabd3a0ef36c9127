package engineio

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// nodeUTF8 holds pairs (input, output) in hex, where output is what Node 20
// gives for Buffer.from(input, "hex").toString("utf8"), re-encoded.
var nodeUTF8 = [][2]string{
	{"", ""},
	{"e282", "efbfbd"},
	{"e282ac", "e282ac"},
	{"eda080", "efbfbdefbfbdefbfbd"},
	{"eda080eda080", "efbfbdefbfbdefbfbdefbfbdefbfbdefbfbd"},
	{"ff", "efbfbd"},
	{"fffe", "efbfbdefbfbd"},
	{"80", "efbfbd"},
	{"c0af", "efbfbdefbfbd"},
	{"c2", "efbfbd"},
	{"c241", "efbfbd41"},
	{"e0809f", "efbfbdefbfbdefbfbd"},
	{"e0a080", "e0a080"},
	{"f0908080", "f0908080"},
	{"f08f8080", "efbfbdefbfbdefbfbdefbfbd"},
	{"f4908080", "efbfbdefbfbdefbfbdefbfbd"},
	{"f48f8080", "f48f8080"},
	{"f09080", "efbfbd"},
	{"f090", "efbfbd"},
	{"f0", "efbfbd"},
	{"e2", "efbfbd"},
	{"61e28262", "61efbfbd62"},
	{"eeff", "efbfbdefbfbd"},
	{"f5808080", "efbfbdefbfbdefbfbdefbfbd"},
	{"c3a9ff41", "c3a9efbfbd41"},
	{"2f2fe282", "2f2fefbfbd"},
	{"dfbf", "dfbf"},
	{"edbfbf", "efbfbdefbfbdefbfbd"},
	{"ee8080", "ee8080"},
	{"efbfbf", "efbfbf"},
	{"f88080808080", "efbfbdefbfbdefbfbdefbfbdefbfbdefbfbd"},
	{"fc8080808080", "efbfbdefbfbdefbfbdefbfbdefbfbdefbfbd"},
}

func TestToValidUTF8MatchesNode(t *testing.T) {
	for _, v := range nodeUTF8 {
		in, _ := hex.DecodeString(v[0])
		want, _ := hex.DecodeString(v[1])
		if got := toValidUTF8(in); !bytes.Equal(got, want) {
			t.Errorf("toValidUTF8(%s) = %x, want %s", v[0], got, v[1])
		}
	}
}

func TestToValidUTF8ValidIsFree(t *testing.T) {
	in := []byte(`2["chat","héllo wörld ✓ 🎉"]`)
	allocs := testing.AllocsPerRun(100, func() {
		if out := toValidUTF8(in); &out[0] != &in[0] {
			t.Fatal("valid input copied")
		}
	})
	if allocs != 0 {
		t.Errorf("allocs = %v, want 0", allocs)
	}
}

// whatwgDecode is the WHATWG Encoding Standard's UTF-8 decoder, written
// step by step from the spec, as a reference for toValidUTF8.
func whatwgDecode(b []byte) []byte {
	var out []byte
	var cp rune
	seen, needed := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i <= len(b); {
		if i == len(b) {
			if needed != 0 {
				out = utf8.AppendRune(out, utf8.RuneError)
			}
			break
		}
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				out = append(out, c)
			case c >= 0xC2 && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				}
				if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0xF)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				}
				if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x7)
			default:
				out = utf8.AppendRune(out, utf8.RuneError)
			}
			i++
			continue
		}
		if c < lower || c > upper {
			cp, needed, seen = 0, 0, 0
			lower, upper = 0x80, 0xBF
			out = utf8.AppendRune(out, utf8.RuneError)
			continue // reprocess c
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		seen++
		i++
		if seen == needed {
			out = utf8.AppendRune(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	return out
}

func FuzzToValidUTF8(f *testing.F) {
	for _, v := range nodeUTF8 {
		in, _ := hex.DecodeString(v[0])
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := toValidUTF8(in)
		if want := whatwgDecode(in); !bytes.Equal(got, want) {
			t.Fatalf("toValidUTF8(%x) = %x, want %x", in, got, want)
		}
		if !utf8.Valid(got) {
			t.Fatalf("toValidUTF8(%x) = %x: invalid", in, got)
		}
	})
}

var messageSink *Message

func TestNewMessageReplacesInvalidUTF8(t *testing.T) {
	m := NewMessage([]byte("a\xffb\xe2\x82"), false)
	if got := string(m.Data()); got != "a\uFFFDb\uFFFD" {
		t.Errorf("Data = %q", got)
	}
	if f := m.wsFrame(); !utf8.Valid(f[2:]) {
		t.Errorf("frame %q", f)
	}
	if p := m.appendPolling(nil); string(p) != "4a\uFFFDb\uFFFD" {
		t.Errorf("polling %q", p)
	}
	if b := NewMessage([]byte{0xff, 0xfe}, true); !bytes.Equal(b.Data(), []byte{0xff, 0xfe}) {
		t.Errorf("binary data changed: %x", b.Data())
	}
	valid := []byte(`2["news","ok ✓"]`)
	if allocs := testing.AllocsPerRun(100, func() { messageSink = NewMessage(valid, false) }); allocs != 1 {
		t.Errorf("NewMessage of valid text: %v allocs, want 1", allocs)
	}
}

// A client sending a text frame that is not UTF-8 is closed with 1007;
// nothing it sent is relayed, and another client is untouched: it keeps
// receiving throughout.
func TestInvalidUTF8WebSocket(t *testing.T) {
	var e *testEnv
	e = newEnv(t, quietConfig(), func(r *recorder) { r.onMessage = e.relay })
	healthy := startSteady(t, e)
	hsid := healthy.sid
	bad, bsid := e.openWS(t)
	wsWrite(t, bad, websocket.TextMessage, "42[\"bcast\",null,\"\xff\xfe\"]")
	healthy.flowing(t)
	wsExpectCloseCode(t, bad, websocket.CloseInvalidFramePayloadData)
	ev := e.rec(t, bsid).waitClose(t)
	if ev.reason != ReasonTransportError || !errors.Is(ev.err, errInvalidUTF8) {
		t.Errorf("close = %+v", ev)
	}
	if n := len(e.rec(t, bsid).msgs); n != 0 {
		t.Errorf("%d messages reached the handler", n)
	}
	// The first thing the healthy client receives, besides the ticks, is
	// its own broadcast.
	healthy.echo(t, `2["ok"]`)
	if n := e.rec(t, hsid).closeCount(); n != 0 || e.srv.Count() != 1 {
		t.Errorf("healthy closes %d, Count %d", n, e.srv.Count())
	}
	healthy.check(t)
}

// A polling body is decoded as Node decodes it: invalid sequences arrive as
// U+FFFD, and what is relayed to a WebSocket client is valid text; that
// client keeps receiving throughout.
func TestInvalidUTF8Polling(t *testing.T) {
	var e *testEnv
	e = newEnv(t, quietConfig(), func(r *recorder) { r.onMessage = e.relay })
	healthy := startSteady(t, e)
	sid := e.handshake(t)
	if r := e.post(t, sid, "42[\"bcast\",null,\"\xff\xfe\xe2\x82\xed\xa0\x80\"]"); r.status != 200 {
		t.Fatalf("POST = %d %q", r.status, r.body)
	}
	want := "42[\"bcast\",null,\"" + strings.Repeat("\uFFFD", 6) + "\"]"
	healthy.expectOther(t, want)
	healthy.flowing(t)
	if r := e.poll(t, sid); r.body != want {
		t.Errorf("sender got %q, want %q", r.body, want)
	}
	healthy.echo(t, "still")
	healthy.check(t)
}
