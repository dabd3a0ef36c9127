package parser

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

type decodeTest struct {
	in   string
	want Packet // Data compared as a string; Attachments unused
	n    int    // announced attachments
}

// decodeTests are valid text packets: every example of docs/protocol/socketio-v5.md §3–§6
// and more edge cases.
var decodeTests = []decodeTest{
	// §3 examples
	{in: `0`, want: Packet{Type: Connect, Nsp: "/"}},
	{in: `0/admin,{"token":"123"}`, want: Packet{Type: Connect, Nsp: "/admin", Data: []byte(`{"token":"123"}`)}},
	{in: `0{"sid":"wZX3oN0bSVIhsaknAAAI"}`, want: Packet{Type: Connect, Nsp: "/", Data: []byte(`{"sid":"wZX3oN0bSVIhsaknAAAI"}`)}},
	{in: `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`, want: Packet{Type: Connect, Nsp: "/admin", Data: []byte(`{"sid":"oSO0OpakMV_3jnilAAAA"}`)}},
	{in: `4{"message":"Not authorized"}`, want: Packet{Type: ConnectError, Nsp: "/", Data: []byte(`{"message":"Not authorized"}`)}},
	{in: `4/admin,{"message":"not authorized","data":{"reason":"x"}}`, want: Packet{Type: ConnectError, Nsp: "/admin", Data: []byte(`{"message":"not authorized","data":{"reason":"x"}}`)}},
	{in: `2["foo"]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`["foo"]`)}},
	{in: `2/admin,["bar"]`, want: Packet{Type: Event, Nsp: "/admin", Data: []byte(`["bar"]`)}},
	{in: `212["foo"]`, want: Packet{Type: Event, Nsp: "/", ID: 12, HasID: true, Data: []byte(`["foo"]`)}},
	{in: `2/admin,13["x"]`, want: Packet{Type: Event, Nsp: "/admin", ID: 13, HasID: true, Data: []byte(`["x"]`)}},
	{in: `312[]`, want: Packet{Type: Ack, Nsp: "/", ID: 12, HasID: true, Data: []byte(`[]`)}},
	{in: `3/admin,13["bar"]`, want: Packet{Type: Ack, Nsp: "/admin", ID: 13, HasID: true, Data: []byte(`["bar"]`)}},
	{in: `1`, want: Packet{Type: Disconnect, Nsp: "/"}},
	{in: `1/admin,`, want: Packet{Type: Disconnect, Nsp: "/admin"}},
	{in: `51-["baz",{"_placeholder":true,"num":0}]`, n: 1,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["baz",{"_placeholder":true,"num":0}]`)}},
	{in: `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, n: 2,
		want: Packet{Type: BinaryEvent, Nsp: "/admin", Data: []byte(`["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
	{in: `61-15["bar",{"_placeholder":true,"num":0}]`, n: 1,
		want: Packet{Type: BinaryAck, Nsp: "/", ID: 15, HasID: true, Data: []byte(`["bar",{"_placeholder":true,"num":0}]`)}},
	// §5 and §6
	{in: `0{"token":"123"}`, want: Packet{Type: Connect, Nsp: "/", Data: []byte(`{"token":"123"}`)}},
	{in: `0/custom,`, want: Packet{Type: Connect, Nsp: "/custom"}},
	{in: `0/custom,{"token":"abc"}`, want: Packet{Type: Connect, Nsp: "/custom", Data: []byte(`{"token":"abc"}`)}},
	{in: `0/random`, want: Packet{Type: Connect, Nsp: "/random"}},
	{in: `0/admin?x=1,`, want: Packet{Type: Connect, Nsp: "/admin?x=1"}},
	{in: `4/admin,"nope"`, want: Packet{Type: ConnectError, Nsp: "/admin", Data: []byte(`"nope"`)}},
	{in: `4/random,{"message":"Invalid namespace"}`, want: Packet{Type: ConnectError, Nsp: "/random", Data: []byte(`{"message":"Invalid namespace"}`)}},
	{in: `2["message",1,"2",{"3":[true]}]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`["message",1,"2",{"3":[true]}]`)}},
	{in: `2456["message-with-ack",1,"2",{"3":[false]}]`, want: Packet{Type: Event, Nsp: "/", ID: 456, HasID: true, Data: []byte(`["message-with-ack",1,"2",{"3":[false]}]`)}},
	{in: `3456[1,"2",{"3":[false]}]`, want: Packet{Type: Ack, Nsp: "/", ID: 456, HasID: true, Data: []byte(`[1,"2",{"3":[false]}]`)}},
	{in: `52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, n: 2,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
	{in: `62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, n: 2,
		want: Packet{Type: BinaryAck, Nsp: "/", ID: 789, HasID: true, Data: []byte(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
	// edge cases
	{in: `0/,`, want: Packet{Type: Connect, Nsp: "/"}},
	{in: `2/,["a"]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`["a"]`)}},
	{in: `2/a/b,["a"]`, want: Packet{Type: Event, Nsp: "/a/b", Data: []byte(`["a"]`)}},
	{in: `1/admin`, want: Packet{Type: Disconnect, Nsp: "/admin"}},
	{in: `15`, want: Packet{Type: Disconnect, Nsp: "/", ID: 5, HasID: true}},
	{in: `05`, want: Packet{Type: Connect, Nsp: "/", ID: 5, HasID: true}},
	{in: `0/a,5{}`, want: Packet{Type: Connect, Nsp: "/a", ID: 5, HasID: true, Data: []byte(`{}`)}},
	{in: `20["a"]`, want: Packet{Type: Event, Nsp: "/", ID: 0, HasID: true, Data: []byte(`["a"]`)}},
	{in: `2007["a"]`, want: Packet{Type: Event, Nsp: "/", ID: 7, HasID: true, Data: []byte(`["a"]`)}},
	{in: `218446744073709551615["a"]`, want: Packet{Type: Event, Nsp: "/", ID: 18446744073709551615, HasID: true, Data: []byte(`["a"]`)}},
	{in: `2[42,"x"]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`[42,"x"]`)}},
	{in: `2[-1.5e3]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`[-1.5e3]`)}},
	{in: `2["Connect"]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`["Connect"]`)}},
	{in: `2["connect "]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`["connect "]`)}},
	{in: "2[ \"a\" ] \n", want: Packet{Type: Event, Nsp: "/", Data: []byte(`[ "a" ]`)}},
	{in: `2 ["a"]`, want: Packet{Type: Event, Nsp: "/", Data: []byte(`["a"]`)}},
	{in: `2/ünï,["é","😀"]`, want: Packet{Type: Event, Nsp: "/ünï", Data: []byte(`["é","😀"]`)}},
	{in: `4"x"`, want: Packet{Type: ConnectError, Nsp: "/", Data: []byte(`"x"`)}},
	{in: `4`, want: Packet{Type: ConnectError, Nsp: "/"}},
	{in: `41`, want: Packet{Type: ConnectError, Nsp: "/", ID: 1, HasID: true}},
	{in: `50-["a"]`, want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a"]`)}},
	{in: `60-[]`, want: Packet{Type: BinaryAck, Nsp: "/", Data: []byte(`[]`)}},
	{in: `5010-["a"]`, n: 10, want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a"]`)}},
	{in: `510-["a",{"_placeholder":true,"num":9}]`, n: 10,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a",{"_placeholder":true,"num":9}]`)}},
	{in: `51-["a",{ "num" : 0 , "_placeholder" : true }]`, n: 1,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a",{ "num" : 0 , "_placeholder" : true }]`)}},
	{in: `51-["a",{"_placeholder":true,"num":0.0}]`, n: 1,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a",{"_placeholder":true,"num":0.0}]`)}},
	{in: `51-["a",{"_placeholder":false,"num":5}]`, n: 1,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a",{"_placeholder":false,"num":5}]`)}},
	{in: `51-["a",{"_placeholder":true,"num":7,"_placeholder":false}]`, n: 1,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a",{"_placeholder":true,"num":7,"_placeholder":false}]`)}},
	{in: `51-["a",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":7}}]`, n: 1,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":7}}]`)}},
	{in: `51-["a",{"\u005fplaceholder":true,"nu\u006d":0}]`, n: 1,
		want: Packet{Type: BinaryEvent, Nsp: "/", Data: []byte(`["a",{"\u005fplaceholder":true,"nu\u006d":0}]`)}},
	{in: `2["a",{"_placeholder":true,"num":3}]`, // not a binary packet: a plain object
		want: Packet{Type: Event, Nsp: "/", Data: []byte(`["a",{"_placeholder":true,"num":3}]`)}},
}

// decodeErrorTests are invalid text packets and the sentinel they match
// besides ErrInvalidPacket.
var decodeErrorTests = []struct {
	in   string
	kind error
}{
	// the compliance suite's malformed packets (without Engine.IO's '4')
	{in: `abc`}, {in: `2{}`}, {in: `2abc["foo"]`},
	// type
	{in: ``}, {in: ` `}, {in: `7`}, {in: `9["a"]`}, {in: `-1`}, {in: `/`}, {in: `a`},
	// attachments
	{in: `5["a"]`}, {in: `5-["a"]`}, {in: `5x-["a"]`}, {in: `51["a"]`}, {in: `5 1-["a"]`}, {in: `6`}, {in: `51`},
	{in: `511-["a"]`, kind: ErrTooManyAttachments},
	{in: `599999999999999999999999999-["a"]`, kind: ErrTooManyAttachments},
	// missing payloads
	{in: `2`}, {in: `2/admin`}, {in: `2/admin,`}, {in: `212`}, {in: `3`}, {in: `312`}, {in: `51-`}, {in: `60-`},
	// ack id
	{in: `218446744073709551616["a"]`}, {in: `299999999999999999999999["a"]`},
	// per-type payload rules
	{in: `0[]`}, {in: `0"x"`}, {in: `0null`}, {in: `0/admin,[]`}, {in: `0{`}, {in: `0{}x`},
	{in: `1{}`}, {in: `1[]`}, {in: `1/admin,{}`}, {in: `1"x"`},
	{in: `2[]`}, {in: `2"foo"`}, {in: `2null`}, {in: `2[null]`}, {in: `2[true]`}, {in: `2[{}]`}, {in: `2[[]]`},
	{in: `3{}`}, {in: `3"x"`}, {in: `3null`}, {in: `3 1`},
	{in: `4[]`}, {in: `4null`}, {in: `4abc`}, {in: `4/admin,1[]`},
	{in: `50-[]`}, {in: `50-{}`}, {in: `60-{}`},
	// reserved event names
	{in: `2["connect"]`}, {in: `2["connect_error"]`}, {in: `2["disconnect"]`}, {in: `2["disconnecting"]`},
	{in: `2["newListener"]`}, {in: `2["removeListener"]`}, {in: `2["conn\u0065ct"]`}, {in: `2/admin,1["disconnect",1]`},
	// invalid JSON
	{in: `2["foo"`}, {in: `2["foo",]`}, {in: `2["foo"]x`}, {in: "2[\"foo\"]\u2028"}, {in: `2[01]`}, {in: `2[.5]`},
	{in: `2[1.]`}, {in: `2[1e]`}, {in: `2[-]`}, {in: `2["\x"]`}, {in: "2[\"a\tb\"]"}, {in: `2["\u12"]`},
	{in: `2[tru]`}, {in: `2["a",nul]`}, {in: `2["a":1]`}, {in: `2["a",{1:2}]`}, {in: `2["a",{"b" 1}]`},
	{in: `2["a",{"b":1,}]`}, {in: `2["a"]]`}, {in: "2[\"a\"\x00]"},
	{in: `2["a",` + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + `]`},
	// placeholders
	{in: `51-["a",{"_placeholder":true,"num":1}]`},
	{in: `51-["a",{"_placeholder":true}]`},
	{in: `51-["a",{"_placeholder":true,"num":"0"}]`},
	{in: `51-["a",{"_placeholder":true,"num":-1}]`},
	{in: `51-["a",{"_placeholder":true,"num":0.5}]`},
	{in: `51-["a",{"_placeholder":true,"num":1e400}]`},
	{in: `51-["a",{"_placeholder":true,"num":null}]`},
	{in: `50-["a",{"_placeholder":true,"num":0}]`},
	{in: `52-["a",[{"x":{"_placeholder":true,"num":2}}]]`},
	{in: `51-["a",{"_placeholder":false,"num":1,"_placeholder":true}]`},
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(tt.in, func(t *testing.T) {
			p, n, err := Decode([]byte(tt.in), 0)
			noError(t, err)
			checkPacket(t, p, &tt.want)
			equal(t, "attachments", n, tt.n)
			if p.Attachments != nil {
				t.Errorf("Attachments = %v, want nil", p.Attachments)
			}
		})
	}
}

func checkPacket(t *testing.T, got, want *Packet) {
	t.Helper()
	equal(t, "Type", got.Type, want.Type)
	equal(t, "Nsp", got.Nsp, want.Nsp)
	equal(t, "ID", got.ID, want.ID)
	equal(t, "HasID", got.HasID, want.HasID)
	equal(t, "Data", string(got.Data), string(want.Data))
	if (got.Data == nil) != (want.Data == nil) {
		t.Errorf("Data nil = %v, want %v", got.Data == nil, want.Data == nil)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range decodeErrorTests {
		name := tt.in
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			p, n, err := Decode([]byte(tt.in), 0)
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, %d, nil; want an error", tt.in, p, n)
			}
			if p != nil || n != 0 {
				t.Errorf("Decode returned %+v, %d with the error", p, n)
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("error %v does not match ErrInvalidPacket", err)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v does not match %v", err, tt.kind)
			}
			if !strings.HasPrefix(err.Error(), "parser: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			// The same through a Decoder, which must stay usable.
			var d Decoder
			if p, err := d.Add([]byte(tt.in), false); err == nil {
				t.Fatalf("Decoder.Add(%q) = %+v, nil; want an error", tt.in, p)
			}
			p, err = d.Add([]byte(`2["ok"]`), false)
			noError(t, err)
			equal(t, "Data", string(p.Data), `["ok"]`)
		})
	}
}

func TestDecodeMaxAttachments(t *testing.T) {
	in := []byte(`53-["a"]`)
	if _, _, err := Decode(in, 2); !errors.Is(err, ErrTooManyAttachments) {
		t.Errorf("max 2: err = %v, want ErrTooManyAttachments", err)
	}
	_, n, err := Decode(in, 3)
	noError(t, err)
	equal(t, "attachments", n, 3)
	if _, _, err := Decode([]byte(`511-["a"]`), -1); !errors.Is(err, ErrTooManyAttachments) {
		t.Errorf("negative max: err = %v, want the default limit of 10", err)
	}
	_, n, err = Decode([]byte(`520-["a"]`), 20)
	noError(t, err)
	equal(t, "attachments", n, 20)
}

func TestDecodeErrorMessages(t *testing.T) {
	for in, want := range map[string]string{
		`7`:                              `parser: invalid packet: unknown packet type '7'`,
		`511-["a"]`:                      `parser: too many attachments: 11 announced, at most 10 allowed`,
		`2["connect"]`:                   `parser: invalid packet: reserved event name "connect"`,
		`2["a"`:                          `parser: invalid packet: payload is not valid JSON: unexpected end of JSON input at offset 4`,
		`218446744073709551616["a"]`:     `parser: invalid packet: ack id overflows uint64`,
		`51-["a",{"_placeholder":true}]`: `parser: invalid packet: placeholder at offset 8 does not name one of the 1 attachment(s)`,
		`2`:                              `parser: invalid packet: EVENT without payload`,
		`1{}`:                            `parser: invalid packet: DISCONNECT must not have a payload`,
	} {
		_, _, err := Decode([]byte(in), 0)
		if err == nil || err.Error() != want {
			t.Errorf("Decode(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestDecoderBinary(t *testing.T) {
	var d Decoder
	p, err := d.Add([]byte(`52-/admin,7["upload",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]`), false)
	if p != nil || err != nil {
		t.Fatalf("header: %v, %v; want nil, nil", p, err)
	}
	if p, err = d.Add([]byte{1, 2}, true); p != nil || err != nil {
		t.Fatalf("first attachment: %v, %v; want nil, nil", p, err)
	}
	p, err = d.Add([]byte{3}, true)
	noError(t, err)
	checkPacket(t, p, &Packet{Type: BinaryEvent, Nsp: "/admin", ID: 7, HasID: true,
		Data: []byte(`["upload",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]`)})
	bytesList(t, "Attachments", p.Attachments, [][]byte{{1, 2}, {3}})

	// The decoder is idle again: a binary message is unexpected.
	_, err = d.Add([]byte{4}, true)
	if !errors.Is(err, ErrUnexpectedBinary) || !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("unexpected binary: err = %v", err)
	}
	// Zero attachments: dispatched at once.
	p, err = d.Add([]byte(`60-12[]`), false)
	noError(t, err)
	checkPacket(t, p, &Packet{Type: BinaryAck, Nsp: "/", ID: 12, HasID: true, Data: []byte(`[]`)})
	equal(t, "len(Attachments)", len(p.Attachments), 0)
}

func TestDecoderTextWhilePending(t *testing.T) {
	var d Decoder
	if _, err := d.Add([]byte(`52-["a",{"_placeholder":true,"num":0}]`), false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Add([]byte{1}, true); err != nil {
		t.Fatal(err)
	}
	_, err := d.Add([]byte(`2["b"]`), false)
	if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), "1 attachment(s) are still expected") {
		t.Errorf("text while pending: err = %v", err)
	}
	// The decoder was reset: the next packet decodes normally, and the
	// pending attachment is not expected any more.
	if _, err := d.Add([]byte{2}, true); !errors.Is(err, ErrUnexpectedBinary) {
		t.Errorf("after reset: err = %v, want ErrUnexpectedBinary", err)
	}
	p, err := d.Add([]byte(`2["c"]`), false)
	noError(t, err)
	equal(t, "Data", string(p.Data), `["c"]`)
}

func TestDecoderReset(t *testing.T) {
	var d Decoder
	if _, err := d.Add([]byte(`51-["a",{"_placeholder":true,"num":0}]`), false); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	if _, err := d.Add([]byte{1}, true); !errors.Is(err, ErrUnexpectedBinary) {
		t.Errorf("after Reset: err = %v, want ErrUnexpectedBinary", err)
	}
}

func TestDecoderMaxAttachments(t *testing.T) {
	d := Decoder{MaxAttachments: 2}
	if _, err := d.Add([]byte(`53-["a"]`), false); !errors.Is(err, ErrTooManyAttachments) {
		t.Errorf("err = %v, want ErrTooManyAttachments", err)
	}
	d.MaxAttachments = 12
	if p, err := d.Add([]byte(`512-["a"]`), false); p != nil || err != nil {
		t.Fatalf("Add = %v, %v", p, err)
	}
	for i := range 12 {
		p, err := d.Add([]byte{byte(i)}, true)
		noError(t, err)
		if (p != nil) != (i == 11) {
			t.Fatalf("attachment %d: packet %v", i, p)
		}
		if p != nil {
			equal(t, "len(Attachments)", len(p.Attachments), 12)
		}
	}
}

func TestDecoderNamespaceReuse(t *testing.T) {
	var d Decoder
	p1, err := d.Add([]byte(`2/chat,["a"]`), false)
	noError(t, err)
	p2, err := d.Add([]byte(`2/chat,["b"]`), false)
	noError(t, err)
	p3, err := d.Add([]byte(`2/other,["c"]`), false)
	noError(t, err)
	equal(t, "p1.Nsp", p1.Nsp, "/chat")
	equal(t, "p2.Nsp", p2.Nsp, "/chat")
	equal(t, "p3.Nsp", p3.Nsp, "/other")
}

func TestTypeString(t *testing.T) {
	want := []string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}
	for i, w := range want {
		equal(t, "Type("+strconv.Itoa(i)+")", Type(i).String(), w)
	}
	equal(t, "Type(7)", Type(7).String(), "Type(7)")
}

func TestIsReservedEvent(t *testing.T) {
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if !IsReservedEvent(name) || !isReserved([]byte(name)) {
			t.Errorf("%q is reserved", name)
		}
	}
	for _, name := range []string{"", "Connect", "message", "connection", "error", "connect "} {
		if IsReservedEvent(name) || isReserved([]byte(name)) {
			t.Errorf("%q is not reserved", name)
		}
	}
}

var benchEvent = []byte(`2/chat,["chat message",{"user":"alice","text":"hello world, how are you?","ts":1700000000000,"tags":["a","b"]}]`)

func BenchmarkDecodeEvent(b *testing.B) {
	var d Decoder
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Add(benchEvent, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBinaryEvent(b *testing.B) {
	header := []byte(`52-/files,9["upload",{"name":"a.bin","parts":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]`)
	att := make([]byte, 1024)
	var d Decoder
	b.SetBytes(int64(len(header) + 2*len(att)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Add(header, false); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Add(att, true); err != nil {
			b.Fatal(err)
		}
		if p, err := d.Add(att, true); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}
