package engineio

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []packet
		wantErr bool
	}{
		{name: "message", in: "4hello", want: []packet{{Type: '4', Data: []byte("hello")}}},
		{name: "empty message", in: "4", want: []packet{{Type: '4', Data: []byte{}}}},
		{name: "batch", in: "4test1\x1e4test2\x1e4test3", want: []packet{
			{Type: '4', Data: []byte("test1")}, {Type: '4', Data: []byte("test2")}, {Type: '4', Data: []byte("test3")},
		}},
		{name: "binary", in: "4hello\x1ebAQIDBA==", want: []packet{
			{Type: '4', Data: []byte("hello")}, {Type: '4', Binary: true, Data: []byte{1, 2, 3, 4}},
		}},
		{name: "binary unpadded", in: "bAQIDBA", want: []packet{{Type: '4', Binary: true, Data: []byte{1, 2, 3, 4}}}},
		{name: "binary empty", in: "b", want: []packet{{Type: '4', Binary: true, Data: []byte{}}}},
		{name: "control packets", in: "2\x1e3\x1e1\x1e5\x1e6\x1e0", want: []packet{
			{Type: '2', Data: []byte{}}, {Type: '3', Data: []byte{}}, {Type: '1', Data: []byte{}},
			{Type: '5', Data: []byte{}}, {Type: '6', Data: []byte{}}, {Type: '0', Data: []byte{}},
		}},
		{name: "probe", in: "2probe", want: []packet{{Type: '2', Data: []byte("probe")}}},
		{name: "utf8", in: "4é€😀", want: []packet{{Type: '4', Data: []byte("é€😀")}}},
		{name: "invalid type", in: "abc", wantErr: true},
		{name: "type 7", in: "7", wantErr: true},
		{name: "empty payload", in: "", wantErr: true},
		{name: "empty packet", in: "4a\x1e\x1e4b", want: []packet{{Type: '4', Data: []byte("a")}}, wantErr: true},
		{name: "trailing separator", in: "4a\x1e", want: []packet{{Type: '4', Data: []byte("a")}}, wantErr: true},
		{name: "bad base64", in: "b!!!!", wantErr: true},
		{name: "prefix kept on error", in: "4a\x1exyz\x1e4b", want: []packet{{Type: '4', Data: []byte("a")}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePayload([]byte(tt.in), nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errParse) {
				t.Errorf("err = %v, want errParse", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d packets %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i].Type != tt.want[i].Type || got[i].Binary != tt.want[i].Binary || !bytes.Equal(got[i].Data, tt.want[i].Data) {
					t.Errorf("packet %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodePacketCapsCapacity(t *testing.T) {
	pkts, err := decodePayload([]byte("4ab\x1e4cd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A handler appending to its data must not clobber the next packet.
	_ = append(pkts[0].Data, 'X')
	if string(pkts[1].Data) != "cd" {
		t.Fatalf("second packet = %q, want %q", pkts[1].Data, "cd")
	}
}

func TestAppendPayload(t *testing.T) {
	tests := []struct {
		name string
		msgs []*Message
		want string
	}{
		{name: "one", msgs: []*Message{NewMessage([]byte("hello"), false)}, want: "4hello"},
		{name: "batch", msgs: []*Message{
			NewMessage([]byte("test1"), false), NewMessage([]byte("test2"), false), pingPacket,
		}, want: "4test1\x1e4test2\x1e2"},
		{name: "binary", msgs: []*Message{NewMessage([]byte{1, 2, 3, 4}, true)}, want: "bAQIDBA=="},
		{name: "probe and noop", msgs: []*Message{probePacket, noopPacket, closePacket}, want: "3probe\x1e6\x1e1"},
		{name: "none", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendPayload(nil, tt.msgs)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{
		"4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA==", "2probe", "3", "1", "5", "6",
		"abc", "", "\x1e", "b", "bA", "bAQ==", "b====", "4\x1e", "0{}", "4é",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		pkts, err := decodePayload(in, nil)
		if !bytes.Equal(in, orig) {
			t.Fatal("decodePayload modified its input")
		}
		if err == nil && len(pkts) != bytes.Count(in, []byte{recordSeparator})+1 {
			t.Fatalf("%d packets for %d separators", len(pkts), bytes.Count(in, []byte{recordSeparator}))
		}
		msgs := make([]*Message, len(pkts))
		for i, p := range pkts {
			if p.Type < typeOpen || p.Type > typeNoop {
				t.Fatalf("packet %d has type %q", i, p.Type)
			}
			if p.Binary && p.Type != typeMessage {
				t.Fatalf("binary packet %d has type %q", i, p.Type)
			}
			if cap(p.Data) != len(p.Data) {
				t.Fatalf("packet %d: cap %d > len %d", i, cap(p.Data), len(p.Data))
			}
			msgs[i] = &Message{typ: p.Type, binary: p.Binary, data: p.Data}
		}
		if err != nil {
			return
		}
		// Round trip: re-encoding decodes to the same packets, and is
		// byte-identical when there is no binary packet (whose base64 may
		// be re-padded).
		enc := appendPayload(nil, msgs)
		again, err := decodePayload(enc, nil)
		if err != nil {
			t.Fatalf("re-encoded payload %q does not decode: %v", enc, err)
		}
		if len(again) != len(pkts) {
			t.Fatalf("round trip: %d packets, want %d", len(again), len(pkts))
		}
		hasBinary := false
		for i := range again {
			hasBinary = hasBinary || pkts[i].Binary
			if again[i].Type != pkts[i].Type || again[i].Binary != pkts[i].Binary || !bytes.Equal(again[i].Data, pkts[i].Data) {
				t.Fatalf("round trip packet %d = %+v, want %+v", i, again[i], pkts[i])
			}
		}
		if !hasBinary && !bytes.Equal(enc, in) {
			t.Fatalf("text payload re-encoded as %q, want %q", enc, in)
		}
	})
}

func benchMessages() []*Message {
	text := NewMessage([]byte(`2["chat message",{"user":"alice","text":"hello, world"}]`), false)
	bin := NewMessage(bytes.Repeat([]byte{0xAB}, 64), true)
	return []*Message{text, text, bin, text, pingPacket, text, text, text}
}

func BenchmarkEncodePayload(b *testing.B) {
	msgs := benchMessages()
	buf := appendPayload(nil, msgs)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendPayload(buf[:0], msgs)
	}
}

func BenchmarkDecodePayload(b *testing.B) {
	payload := appendPayload(nil, benchMessages())
	payload = append(payload, strings.Repeat("\x1e4some more text", 8)...)
	dst := make([]packet, 0, 32)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = decodePayload(payload, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
