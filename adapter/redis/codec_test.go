package redis

import (
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/parser"
)

// TestBroadcastMessage: the message of io.emit("hello", 1, "two", {three:
// 3.5}) from uid 4TrWtR, byte for byte as captured from Node (A.5).
func TestBroadcastMessage(t *testing.T) {
	want := testkit.Msgpack(t, `93 a6 "4TrWtR" 83 a4 "type" 02 a4 "data" 94 a5 "hello" 01 a3 "two" 81 a5 "three" cb 40 0c 00 00 00 00 00 00
		a3 "nsp" a1 "/" 83 a5 "rooms" 90 a6 "except" 90 a5 "flags" 80`)
	testkit.Equal(t, len(want), 77)
	p := adapter.NewPacket("/", json.RawMessage(`["hello",1,"two",{"three":3.5}]`), nil)
	got, err := encodeBroadcast("4TrWtR", "/", p, adapter.BroadcastOptions{})
	testkit.NoError(t, err)
	testkit.Equal(t, hex.EncodeToString(got), hex.EncodeToString(want))

	b, err := decodeBroadcast(want, "other!")
	testkit.NoError(t, err)
	testkit.Equal(t, string(b.data), `["hello",1,"two",{"three":3.5}]`)
	testkit.Equal(t, b.nsp, "/")
	_, err = decodeBroadcast(want, "4TrWtR")
	testkit.ErrorIs(t, err, errOwnMessage)
}

func TestBroadcastMessageForms(t *testing.T) {
	compressFalse := false
	for _, tt := range []struct {
		name string
		data string
		atts [][]byte
		opts adapter.BroadcastOptions
		want string // decoded message, with binary as Buffer JSON
	}{
		{"room", `["r1","x"]`, nil, adapter.BroadcastOptions{Rooms: []string{"room1"}},
			`["U",{"type":2,"data":["r1","x"],"nsp":"/"},{"rooms":["room1"],"except":[],"flags":{}}]`},
		{"multi", `["multi"]`, nil, adapter.BroadcastOptions{Rooms: []string{"room1", "room2"}, Except: []string{"room3"}},
			`["U",{"type":2,"data":["multi"],"nsp":"/"},{"rooms":["room1","room2"],"except":["room3"],"flags":{}}]`},
		{"volatile compress", `["vol"]`, nil, adapter.BroadcastOptions{Flags: adapter.Flags{Volatile: true, Compress: &compressFalse}},
			`["U",{"type":2,"data":["vol"],"nsp":"/"},{"rooms":[],"except":[],"flags":{"volatile":true,"compress":false}}]`},
		{"remote socket", `["direct","hi"]`, nil, adapter.BroadcastOptions{Rooms: []string{"znMCb6rlmSKCJqpoAAAB"}, Flags: adapter.Flags{ExpectSingleResponse: true}},
			`["U",{"type":2,"data":["direct","hi"],"nsp":"/"},{"rooms":["znMCb6rlmSKCJqpoAAAB"],"except":[],"flags":{"expectSingleResponse":true}}]`},
		{"binary", `["bin",{"_placeholder":true,"num":0}]`, [][]byte{{1, 2, 3}}, adapter.BroadcastOptions{},
			`["U",{"type":2,"data":["bin",{"type":"Buffer","data":[1,2,3]}],"nsp":"/"},{"rooms":[],"except":[],"flags":{}}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := encodeBroadcast("U", "/", adapter.NewPacket("/", json.RawMessage(tt.data), tt.atts), tt.opts)
			testkit.NoError(t, err)
			gotJS, _, err := cluster.MsgpackToJSON(msg, cluster.BinBufferJSON)
			got := string(gotJS)
			testkit.NoError(t, err)
			testkit.Equal(t, got, tt.want)
			b, err := decodeBroadcast(msg, "me")
			testkit.NoError(t, err)
			testkit.Equal(t, string(b.data), tt.data)
			testkit.Equal(t, len(b.atts), len(tt.atts))
		})
	}
}

// TestDecodeBroadcastFromNode: the binary broadcast captured from Node,
// io.emit("bin", Buffer.from([1,2,3]), {d: new Date(0)}).
func TestDecodeBroadcastFromNode(t *testing.T) {
	msg := testkit.Msgpack(t, `93 a6 "4TrWtR" 83 a4 "type" 02 a4 "data" 93 a3 "bin" c4 03 01 02 03 81 a1 "d" d6 ff 00 00 00 00
		a3 "nsp" a1 "/" 83 a5 "rooms" 91 a5 "room1" a6 "except" 91 a2 "xx" a5 "flags" 82 a8 "volatile" c3 a8 "compress" c2`)
	b, err := decodeBroadcast(msg, "me")
	testkit.NoError(t, err)
	testkit.Equal(t, string(b.data), `["bin",{"_placeholder":true,"num":0},{"d":"1970-01-01T00:00:00.000Z"}]`)
	testkit.Equal(t, b.atts, [][]byte{{1, 2, 3}})
	testkit.Equal(t, b.opts.Rooms, []string{"room1"})
	testkit.Equal(t, b.opts.Except, []string{"xx"})
	testkit.True(t, b.opts.Flags.Volatile, "volatile")
	testkit.True(t, b.opts.Flags.Compress != nil && !*b.opts.Flags.Compress, "compress false")

	// What Node tolerates: no nsp (taken as "/"), no opts, numeric rooms.
	b, err = decodeBroadcast(testkit.Msgpack(t, `92 a1 "u" 82 a4 "type" 02 a4 "data" 91 a1 "e"`), "me")
	testkit.NoError(t, err)
	testkit.Equal(t, b.nsp, "/")
	b, err = decodeBroadcast(testkit.Msgpack(t, `93 a1 "u" 82 a4 "type" 05 a4 "data" 91 a1 "e" 81 a5 "rooms" 92 2a cb 3f f8 00 00 00 00 00 00`), "me")
	testkit.NoError(t, err)
	testkit.Equal(t, b.opts.Rooms, []string{"42", "1.5"})

	for name, in := range map[string]string{
		"not an array":   `81 a1 "u" 01`,
		"no data":        `92 a1 "u" 81 a4 "type" 02`,
		"data not array": `92 a1 "u" 82 a4 "type" 02 a4 "data" a1 "e"`,
		"empty data":     `92 a1 "u" 82 a4 "type" 02 a4 "data" 90`,
		"reserved name":  `92 a1 "u" 82 a4 "type" 02 a4 "data" 91 aa "disconnect"`,
		"not an event":   `92 a1 "u" 82 a4 "type" 03 a4 "data" 91 a1 "e"`,
		"name is a map":  `92 a1 "u" 82 a4 "type" 02 a4 "data" 91 80`,
	} {
		_, err := decodeBroadcast(testkit.Msgpack(t, in), "me")
		testkit.True(t, err != nil, "%s: no error", name)
	}
}

// TestBroadcastRequestAndAck: the BROADCAST request and BROADCAST_ACK
// response of io.timeout(1000).emit("ackme", cb), as captured (A.7).
func TestBroadcastRequestAndAck(t *testing.T) {
	want := testkit.Msgpack(t, `85 a3 "uid" a6 "4TrWtR" a9 "requestId" a6 "w9ZQ4-" a4 "type" 07
		a6 "packet" 83 a4 "type" 02 a4 "data" 91 a5 "ackme" a3 "nsp" a1 "/"
		a4 "opts" 83 a5 "rooms" 90 a6 "except" 90 a5 "flags" 81 a7 "timeout" cd 03 e8`)
	p := adapter.NewPacket("/", json.RawMessage(`["ackme"]`), nil)
	got, err := encodeBroadcastRequest("4TrWtR", "w9ZQ4-", "/", p, adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: 1000 * 1e6}})
	testkit.NoError(t, err)
	testkit.Equal(t, hex.EncodeToString(got), hex.EncodeToString(want))

	e, err := decodeEnvelope(want)
	testkit.NoError(t, err)
	testkit.Equal(t, e.uid(), "4TrWtR")
	testkit.Equal(t, e.RequestID, "w9ZQ4-")
	testkit.Equal(t, *e.Type, typeBroadcast)
	nsp, data, atts, err := e.broadcastPacket()
	testkit.NoError(t, err)
	testkit.Equal(t, []any{nsp, string(data), len(atts)}, []any{"/", `["ackme"]`, 0})

	ack := testkit.Msgpack(t, `83 a4 "type" 09 a9 "requestId" a6 "w9ZQ4-" a6 "packet" a5 "fromB"`)
	got, err = encodeBroadcastAck("w9ZQ4-", parser.Raw{JSON: json.RawMessage(`"fromB"`)})
	testkit.NoError(t, err)
	testkit.Equal(t, hex.EncodeToString(got), hex.EncodeToString(ack))
	e, err = decodeEnvelope(ack)
	testkit.NoError(t, err)
	v, err := e.ackValue()
	testkit.NoError(t, err)
	testkit.Equal(t, string(v.JSON), `"fromB"`)

	// Binary acknowledgements survive.
	got, err = encodeBroadcastAck("w9ZQ4-", parser.Raw{JSON: json.RawMessage(`{"_placeholder":true,"num":0}`), Attachments: [][]byte{{7}}})
	testkit.NoError(t, err)
	testkit.Equal(t, hex.EncodeToString(got), hex.EncodeToString(testkit.Msgpack(t, `83 a4 "type" 09 a9 "requestId" a6 "w9ZQ4-" a6 "packet" c4 01 07`)))
	e, err = decodeEnvelope(got)
	testkit.NoError(t, err)
	v, err = e.ackValue()
	testkit.NoError(t, err)
	testkit.Equal(t, string(v.JSON), `{"_placeholder":true,"num":0}`)
	testkit.Equal(t, v.Attachments, [][]byte{{7}})
}

func TestDecodeEnvelopeJSON(t *testing.T) {
	e, err := decodeEnvelope([]byte(`{"uid":"4TrWtR","requestId":"gT08mN","type":5,"opts":{"rooms":["a",7],"except":[]}}`))
	testkit.NoError(t, err)
	testkit.Equal(t, []any{e.uid(), e.RequestID, *e.Type, e.Opts.options().Rooms}, []any{"4TrWtR", "gT08mN", 5, []string{"a", "7"}})
	e, err = decodeEnvelope([]byte(`{"requestId":"x","sockets":[{"id":"s","handshake":{"a":1},"rooms":["s"],"data":{"user":"bob"}}]}`))
	testkit.NoError(t, err)
	var socks []cluster.WireSocket
	testkit.NoError(t, json.Unmarshal(e.Sockets, &socks))
	testkit.Equal(t, string(socks[0].Data), `{"user":"bob"}`)
	_, err = decodeEnvelope([]byte(`{"type":"5"}`))
	testkit.True(t, err != nil, "a string type is an error")
	// A msgpack request of another kind is read like its JSON form.
	e, err = decodeEnvelope(testkit.Msgpack(t, `83 a3 "uid" a1 "u" a4 "type" 06 a4 "data" 92 a1 "e" c4 01 05`))
	testkit.NoError(t, err)
	testkit.Equal(t, string(e.Data), `["e",{"type":"Buffer","data":[5]}]`)
}
