package parser

import "testing"

// encodeTests are the encoder examples of docs/protocol/socketio-v5.md §3–§6 and more.
var encodeTests = []struct {
	p    Packet
	want string
}{
	{Packet{Type: Connect, Nsp: "/"}, `0`},
	{Packet{Type: Connect}, `0`},
	{Packet{Type: Connect, Nsp: "/admin"}, `0/admin,`},
	{Packet{Type: Connect, Nsp: "/admin", Data: []byte(`{"token":"123"}`)}, `0/admin,{"token":"123"}`},
	{Packet{Type: Connect, Nsp: "/", Data: []byte(`{"sid":"wZX3oN0bSVIhsaknAAAI"}`)}, `0{"sid":"wZX3oN0bSVIhsaknAAAI"}`},
	{Packet{Type: Connect, Nsp: "/admin", Data: []byte(`{"sid":"oSO0OpakMV_3jnilAAAA"}`)}, `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`},
	{Packet{Type: ConnectError, Nsp: "/", Data: []byte(`{"message":"Not authorized"}`)}, `4{"message":"Not authorized"}`},
	{Packet{Type: ConnectError, Nsp: "/admin", Data: []byte(`{"message":"not authorized","data":{"reason":"x"}}`)},
		`4/admin,{"message":"not authorized","data":{"reason":"x"}}`},
	{Packet{Type: ConnectError, Nsp: "/random", Data: []byte(`{"message":"Invalid namespace"}`)}, `4/random,{"message":"Invalid namespace"}`},
	{Packet{Type: ConnectError, Nsp: "/admin", Data: []byte(`"nope"`)}, `4/admin,"nope"`},
	{Packet{Type: Event, Nsp: "/", Data: []byte(`["foo"]`)}, `2["foo"]`},
	{Packet{Type: Event, Nsp: "/admin", Data: []byte(`["bar"]`)}, `2/admin,["bar"]`},
	{Packet{Type: Event, Nsp: "/", ID: 12, HasID: true, Data: []byte(`["foo"]`)}, `212["foo"]`},
	{Packet{Type: Event, Nsp: "/admin", ID: 13, HasID: true, Data: []byte(`["x"]`)}, `2/admin,13["x"]`},
	{Packet{Type: Event, ID: 0, HasID: true, Data: []byte(`["x"]`)}, `20["x"]`},
	{Packet{Type: Event, ID: 18446744073709551615, HasID: true, Data: []byte(`["x"]`)}, `218446744073709551615["x"]`},
	{Packet{Type: Event, ID: 99, Data: []byte(`["x"]`)}, `2["x"]`}, // ID without HasID is not written
	{Packet{Type: Ack, Nsp: "/", ID: 12, HasID: true, Data: []byte(`[]`)}, `312[]`},
	{Packet{Type: Ack, Nsp: "/admin", ID: 13, HasID: true, Data: []byte(`["bar"]`)}, `3/admin,13["bar"]`},
	{Packet{Type: Ack, ID: 456, HasID: true, Data: []byte(`[1,"2",{"3":[false]}]`)}, `3456[1,"2",{"3":[false]}]`},
	{Packet{Type: Disconnect, Nsp: "/"}, `1`},
	{Packet{Type: Disconnect, Nsp: "/admin"}, `1/admin,`},
	{Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["baz",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}}},
		`51-["baz",{"_placeholder":true,"num":0}]`},
	{Packet{Type: Event, Nsp: "/", Data: []byte(`["baz",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}}},
		`51-["baz",{"_placeholder":true,"num":0}]`},
	{Packet{Type: Event, Nsp: "/admin", Data: []byte(`["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: [][]byte{{1}, {2}}},
		`52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
	{Packet{Type: Ack, Nsp: "/", ID: 15, HasID: true, Data: []byte(`["bar",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}}},
		`61-15["bar",{"_placeholder":true,"num":0}]`},
	{Packet{Type: BinaryAck, ID: 789, HasID: true, Data: []byte(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: [][]byte{{1}, {2}}},
		`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
	{Packet{Type: BinaryEvent, Nsp: "/files", ID: 7, HasID: true, Data: []byte(`["upload"]`)}, `50-/files,7["upload"]`},
	{Packet{Type: BinaryEvent, Data: []byte(`["x"]`), Attachments: make([][]byte, 12)},
		`512-["x"]`},
	{Packet{Type: Event, Nsp: "/ünï", Data: []byte(`["é"]`)}, `2/ünï,["é"]`},
	{Packet{Type: Type(12), Data: []byte(`[]`)}, `12[]`},
}

func TestAppendEncode(t *testing.T) {
	for _, tt := range encodeTests {
		t.Run(tt.want, func(t *testing.T) {
			got := AppendEncode(nil, &tt.p)
			equal(t, "AppendEncode", string(got), tt.want)
			prefix := []byte("4")
			got = AppendEncode(prefix, &tt.p)
			equal(t, "AppendEncode with prefix", string(got), "4"+tt.want)
		})
	}
}

// TestEncodeDecodeRoundTrip decodes what AppendEncode writes.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, tt := range encodeTests {
		if tt.p.Type > BinaryAck {
			continue
		}
		var d Decoder
		d.MaxAttachments = 100
		p, err := d.Add(AppendEncode(nil, &tt.p), false)
		noError(t, err)
		for _, a := range tt.p.Attachments {
			p, err = d.Add(a, true)
			noError(t, err)
		}
		if p == nil {
			t.Fatalf("%s: no packet", tt.want)
		}
		want := tt.p
		if want.Nsp == "" {
			want.Nsp = "/"
		}
		if !want.HasID {
			want.ID = 0
		}
		if len(want.Attachments) > 0 && want.Type == Event {
			want.Type = BinaryEvent
		}
		if len(want.Attachments) > 0 && want.Type == Ack {
			want.Type = BinaryAck
		}
		checkPacket(t, p, &want)
		bytesList(t, "Attachments", p.Attachments, tt.p.Attachments)
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	p := &Packet{Type: Event, Nsp: "/chat", ID: 42, HasID: true,
		Data: []byte(`["chat message",{"user":"alice","text":"hello world, how are you?","ts":1700000000000,"tags":["a","b"]}]`)}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendEncode(dst[:0], p)
	}
	b.SetBytes(int64(len(dst)))
}

// BenchmarkEncodeEventValues builds the arguments and the packet, as a server
// emit does.
func BenchmarkEncodeEventValues(b *testing.B) {
	payload := map[string]any{"user": "alice", "text": "hello world, how are you?", "ts": 1700000000000.0, "tags": []any{"a", "b"}}
	var data, dst []byte
	var atts [][]byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		data, atts, err = AppendValues(data[:0], atts[:0], "chat message", payload)
		if err != nil {
			b.Fatal(err)
		}
		dst = AppendEncode(dst[:0], &Packet{Type: Event, Nsp: "/chat", Data: data, Attachments: atts})
	}
	b.SetBytes(int64(len(dst)))
}
