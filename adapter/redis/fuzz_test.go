package redis

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// FuzzDecodeMessage feeds arbitrary bytes to the decoders of what arrives
// from Redis — broadcasts (msgpack) and requests/responses (JSON or
// msgpack): they must return an error or a value, never panic, and what
// they accept as an event must be a valid Socket.IO event array.
func FuzzDecodeMessage(f *testing.F) {
	p := adapter.NewPacket("/", json.RawMessage(`["hello",1,"two",{"three":3.5},{"_placeholder":true,"num":0}]`), [][]byte{{1, 2, 3}})
	if b, err := encodeBroadcast("4TrWtR", "/", p, adapter.BroadcastOptions{Rooms: []string{"r1"}, Except: []string{"x"}}); err == nil {
		f.Add(b)
	}
	if b, err := encodeBroadcastRequest("4TrWtR", "w9ZQ4-", "/", p, adapter.BroadcastOptions{}); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"uid":"4TrWtR","requestId":"gT08mN","type":5,"opts":{"rooms":[],"except":[]}}`,
		`{"uid":"4TrWtR","type":2,"opts":{"rooms":[],"except":[]},"rooms":["room9"]}`,
		`{"uid":"4TrWtR","requestId":"LW29gZ","type":6,"data":["sse2","q"]}`,
		`{"type":8,"requestId":"w9ZQ4-","clientCount":1}`,
		`{"requestId":"8AjAUf","rooms":["a","b"]}`,
	} {
		f.Add([]byte(s))
	}
	// Deeply nested data, in a broadcast (msgpack) and in a request (JSON).
	deep := strings.Repeat("[", 9998) + "1" + strings.Repeat("]", 9998)
	if b, err := encodeBroadcast("4TrWtR", "/", adapter.NewPacket("/", json.RawMessage(`["ev",`+deep+`]`), nil), adapter.BroadcastOptions{}); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"uid":"4TrWtR","requestId":"LW29gZ","type":6,"data":["ev",` + deep + `]}`))
	for _, msg := range testkit.DeepMsgpackSeeds(cluster.MaxDepth) {
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if b, err := decodeBroadcast(msg, "own"); err == nil {
			if !json.Valid(b.data) {
				t.Fatalf("broadcast data is not JSON: %q", b.data)
			}
		}
		e, err := decodeEnvelope(msg)
		if err != nil {
			return
		}
		_ = e.uid()
		if _, data, _, err := e.broadcastPacket(); err == nil && !json.Valid(data) {
			t.Fatalf("broadcast request data is not JSON: %q", data)
		}
		_, _ = e.ackValue()
	})
}
