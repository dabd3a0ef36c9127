package redis

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/parser"
)

// refDecodeClusterJSON is the JSON decoding through encoding/json that
// decodeClusterJSON replaced, kept as the reference it is compared with.
func refDecodeClusterJSON(msg []byte) (*cluster.Message, error) {
	m := new(cluster.Message)
	var top struct {
		Type *int            `json:"type"`
		UID  string          `json:"uid"`
		Nsp  *string         `json:"nsp"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(msg, &top); err != nil {
		return nil, err
	}
	if top.Type == nil || top.Nsp == nil {
		return nil, cluster.ErrNotClusterMessage
	}
	m.Typ, m.Uid, m.Nsp = *top.Type, top.UID, *top.Nsp
	if len(top.Data) > 0 && top.Data[0] == '{' {
		if err := json.Unmarshal(top.Data, &m.Data); err != nil {
			return nil, err
		}
	}
	m.Packet = m.Data.Packet
	return m, nil
}

// shardedJSONCorpus: Node's messages (docs/protocol/redis-adapter.md B.4)
// and variants a peer could send.
var shardedJSONCorpus = []string{
	`{"type":3,"data":{"packet":{"type":2,"data":["hello",1,"two",{"three":3.5}]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"f814a91ae584e293","nsp":"/"}`,
	`{"type":3,"data":{"packet":{"type":2,"data":["r1","x"]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"a","nsp":"/"}`,
	`{"type":3,"data":{"packet":{"type":2,"data":["ackme"]},"requestId":"cfd5bfe62a75c903","opts":{"rooms":[],"except":[],"flags":{"timeout":1000}}},"uid":"A","nsp":"/"}`,
	`{"type":11,"data":{"requestId":"cfd5bfe62a75c903","clientCount":1},"uid":"B","nsp":"/"}`,
	`{"type":12,"data":{"requestId":"cfd5bfe62a75c903","packet":"fromB"},"uid":"B","nsp":"/"}`,
	`{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"c10104b4f18c796b"},"uid":"A","nsp":"/"}`,
	`{"type":8,"data":{"requestId":"c10104b4f18c796b","sockets":[{"id":"x","handshake":{"a":1},"rooms":["x"],"data":{"k":"v"}}]},"uid":"B","nsp":"/"}`,
	`{"type":9,"data":{"packet":["sse","a",2]},"uid":"A","nsp":"/"}`,
	`{"type":9,"data":{"requestId":"5279e29be8399b14","packet":["sse2","q"]},"uid":"A","nsp":"/"}`,
	`{"type":10,"data":{"requestId":"5279e29be8399b14","packet":{"ok":true,"arg":"q"}},"uid":"B","nsp":"/"}`,
	`{"type":4,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["room9"]},"uid":"A","nsp":"/"}`,
	`{"type":5,"data":{"opts":{"rooms":["room9"],"except":[],"flags":{}},"rooms":["room9"]},"uid":"A","nsp":"/"}`,
	`{"type":6,"data":{"opts":{"rooms":["u35mTHo8wgXgZ1bsAAAB"],"except":[],"flags":{}},"close":false},"uid":"A","nsp":"/"}`,
	`{"type":6,"data":{"opts":{"rooms":["u35mTHo8wgXgZ1bsAAAB"],"except":["e"],"flags":{}},"close":true},"uid":"A","nsp":"/"}`,
	`{"type":3,"data":{"packet":{"type":2,"data":["direct","hi"]},"opts":{"rooms":["u35mTHo8wgXgZ1bsAAAB"],"except":[],"flags":{"expectSingleResponse":true}}},"uid":"A","nsp":"/"}`,
	// Variants: whitespace, escapes, numbers as rooms, unknown members,
	// repeated keys, non-ASCII.
	` { "type" : 3 , "data" : { "packet" : { "type" : 2 , "data" : [ "sp" , 1 ] } , "opts" : { "rooms" : [ 1 , "r" , -2.5 ] , "except" : [ ] , "flags" : { "volatile" : true } } } , "uid" : "A" , "nsp" : "/" } `,
	`{"type":3,"data":{"packet":{"type":2,"data":["e\u0301","\ud83d\ude00"]},"opts":{"rooms":["r\"q\\"],"except":["caf\u00e9"],"flags":{"compress":false}}},"uid":"A\u0042","nsp":"\/x","extra":[1,{"a":[2]}]}`,
	`{"type":3,"type":4,"nsp":"/","nsp":"/b","data":{"rooms":["a"],"rooms":["b"]},"uid":"A"}`,
	`{"type":3,"data":{"packet":{"type":2,"data":["x"]},"opts":{"rooms":[],"except":[]}},"nsp":"/"}`,
	`{"type":3,"data":null,"uid":"A","nsp":"/"}`,
	`{"type":3,"data":"str","uid":"A","nsp":"/"}`,
	`{"type":3,"data":{"opts":null,"rooms":null,"packet":null},"uid":"A","nsp":"/"}`,
	`{"type":3,"data":{"packet":{"type":1,"data":["x"]}},"uid":"A","nsp":"/"}`,
	`{"type":3,"data":{"packet":{"type":2,"data":["connect"]}},"uid":"A","nsp":"/"}`,
	`{"type":3,"data":{"packet":{"type":2,"data":{"a":1}}},"uid":"A","nsp":"/"}`,
	"{\"type\":3,\"data\":{},\"uid\":\"\xff\",\"nsp\":\"/\"}",
	`{"type":3}`,
	`{"nsp":"/"}`,
	`{"type":3,"nsp":"/"`,
	`{"type":3,"nsp":"/"}x`,
	`{"type":"3","nsp":"/"}`,
}

// TestShardedJSONParity: decodeClusterJSON reads what encoding/json read
// from every message both accept, and refuses what it refused for want of
// a type or a namespace or valid JSON.
func TestShardedJSONParity(t *testing.T) {
	for _, msg := range shardedJSONCorpus {
		got, gerr := cluster.DecodeJSON([]byte(msg))
		want, werr := refDecodeClusterJSON([]byte(msg))
		if werr != nil {
			testkit.True(t, gerr != nil, "%s: accepted, encoding/json refused it (%v)", msg, werr)
			continue
		}
		testkit.NoError(t, gerr, msg)
		testkit.Equal(t, [3]any{got.Typ, got.Uid, got.Nsp}, [3]any{want.Typ, want.Uid, want.Nsp}, msg)
		testkit.Equal(t, got.Data.RequestID, want.Data.RequestID, msg)
		testkit.Equal(t, got.Data.Opts.Options(), want.Data.Opts.Options(), msg)
		testkit.True(t, slices.Equal(got.Data.Rooms, want.Data.Rooms), "%s: rooms %q != %q", msg, got.Data.Rooms, want.Data.Rooms)
		testkit.Equal(t, got.Data.Close, want.Data.Close, msg)
		testkit.Equal(t, got.Data.ClientCount, want.Data.ClientCount, msg)
		for _, pair := range [][2]json.RawMessage{{got.Data.Sockets, want.Data.Sockets}, {got.Data.Packet, want.Data.Packet}} {
			testkit.True(t, jsonEqual(pair[0], pair[1]), "%s: %s != %s", msg, pair[0], pair[1])
		}
		gd, _, gerr := got.Event()
		wd, werr := refEvent(want.Packet)
		testkit.Equal(t, gerr == nil, werr == nil, "%s: event", msg)
		testkit.Equal(t, string(gd), string(wd), msg)
	}
}

// A type written 3.0 is 3, as JSON.parse reads it on Node (encoding/json
// refused it).
func TestShardedJSONIntegralFloat(t *testing.T) {
	m, err := cluster.DecodeJSON([]byte(`{"type":3.0,"data":null,"uid":"A","nsp":"/"}`))
	testkit.NoError(t, err)
	testkit.Equal(t, m.Typ, 3)
}

// refEvent is event's JSON path through encoding/json.
func refEvent(packet []byte) ([]byte, error) {
	var p struct {
		Type int             `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if len(packet) == 0 || json.Unmarshal(packet, &p) != nil || (p.Type != cluster.PacketEvent && p.Type != cluster.PacketBinaryEvent) {
		return nil, cluster.ErrNotAnEvent
	}
	var buf []byte
	if b, err := json.Marshal(p.Data); err == nil { // compacts
		buf = b
	}
	if !cluster.ValidEvent(buf) {
		return nil, cluster.ErrNotAnEvent
	}
	return buf, nil
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b) || string(a) == "null" || string(b) == "null"
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// FuzzShardedJSON: decoding a message (JSON or msgpack) never panics, and
// the JSON decoder accepts only valid JSON.
func FuzzShardedJSON(f *testing.F) {
	for _, m := range shardedJSONCorpus {
		f.Add([]byte(m))
	}
	bin, err := encodeOut("A", "/", cluster.BroadcastOut("r", adapter.NewPacket("/", []byte(`["b",{"_placeholder":true,"num":0}]`), [][]byte{{1}}),
		adapter.BroadcastOptions{Rooms: []string{"r"}, Flags: adapter.Flags{Volatile: true}}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bin)
	ack, err := encodeOut("A", "/", cluster.AckOut("r", parser.Raw{JSON: []byte(`{"_placeholder":true,"num":0}`), Attachments: [][]byte{{2}}}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ack)
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := cluster.Decode(msg)
		if err != nil {
			return
		}
		_, _, _ = m.Event()
		_, _ = m.AckValue()
		_, _ = m.JSONPacket()
		_ = m.Data.Opts.Options()
		if len(msg) > 0 && msg[0] == '{' && !json.Valid(msg) {
			t.Fatalf("accepted invalid JSON %q", msg)
		}
	})
}

// encodeOut encodes a message as the sharded adapter publishes it.
func encodeOut(uid, nsp string, out *cluster.Out) ([]byte, error) {
	out.UID, out.Nsp = uid, nsp
	return out.Encode()
}
