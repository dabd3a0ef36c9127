package redis

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/parser"
)

// TestShardedWire compares what a Go node publishes with what Node's
// createShardedAdapter publishes for the same operations
// (docs/protocol/redis-adapter.md, B.4), read by a plain SSUBSCRIBE.
func TestShardedWire(t *testing.T) {
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	ctx := context.Background()
	f := NewSharded(newClient(t, url), ShardedOptions{Key: key, RequestsTimeout: 300 * time.Millisecond, Logger: testLogger(t)})
	t.Cleanup(func() { testkit.NoError(t, f.Close(ctx)) })
	ns := &fakeNamespace{name: "/"}
	ad, err := f.Adapter(ns)
	testkit.NoError(t, err)
	a := ad.(*ShardedAdapter)
	testkit.Equal(t, len(a.UID()), 16)

	obs := newClient(t, url)
	base, room1 := key+"#/#", key+"#/#room1#"
	ps := obs.SSubscribe(ctx, base, room1)
	t.Cleanup(func() { _ = ps.Close() })
	for range 2 {
		_, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		testkit.NoError(t, err)
	}
	read := func() *goredis.Message {
		t.Helper()
		for {
			msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
			testkit.NoError(t, err)
			if m, ok := msg.(*goredis.Message); ok {
				return m
			}
		}
	}
	reqID := regexp.MustCompile(`"requestId":"[0-9a-f]{16}"`)
	expect := func(channel, want string) {
		t.Helper()
		m := read()
		testkit.Equal(t, m.Channel, channel)
		got := reqID.ReplaceAllString(m.Payload, `"requestId":"R"`)
		testkit.Equal(t, got, want)
	}
	uid := a.UID()
	tail := `,"uid":"` + uid + `","nsp":"/"}`
	pkt := func(js string) *adapter.Packet { return adapter.NewPacket("/", []byte(js), nil) }

	testkit.NoError(t, a.Broadcast(pkt(`["hello",1,"two",{"three":3.5}]`), adapter.BroadcastOptions{}))
	expect(base, `{"type":3,"data":{"packet":{"type":2,"data":["hello",1,"two",{"three":3.5}]},"opts":{"rooms":[],"except":[],"flags":{}}}`+tail)

	testkit.NoError(t, a.Broadcast(pkt(`["r1","x"]`), adapter.BroadcastOptions{Rooms: []string{"room1"}}))
	expect(room1, `{"type":3,"data":{"packet":{"type":2,"data":["r1","x"]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}`+tail)

	// A room of 20 characters is taken for a socket id: the base channel.
	sid := "u35mTHo8wgXgZ1bsAAAB"
	testkit.NoError(t, a.Broadcast(pkt(`["direct","hi"]`), adapter.BroadcastOptions{Rooms: []string{sid}, Flags: adapter.Flags{ExpectSingleResponse: true}}))
	expect(base, `{"type":3,"data":{"packet":{"type":2,"data":["direct","hi"]},"opts":{"rooms":["`+sid+`"],"except":[],"flags":{"expectSingleResponse":true}}}`+tail)

	// With acks: always the base channel, with the timeout in the flags.
	p := pkt(`["ackme"]`)
	testkit.NoError(t, a.BroadcastWithAck(p, adapter.BroadcastOptions{Rooms: []string{"room1"}, Flags: adapter.Flags{Timeout: time.Second}}, func(int) {}, func([]parser.Raw) {}))
	expect(base, `{"type":3,"data":{"packet":{"type":2,"data":["ackme"]},"requestId":"R","opts":{"rooms":["room1"],"except":[],"flags":{"timeout":1000}}}`+tail)

	// Binary: the whole message is notepack msgpack.
	testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", []byte(`["bin",{"_placeholder":true,"num":0}]`), [][]byte{{1, 2, 3}}), adapter.BroadcastOptions{}))
	m := read()
	testkit.Equal(t, m.Channel, base)
	want := []byte{0x84, 0xa4, 't', 'y', 'p', 'e', 0x03, 0xa4, 'd', 'a', 't', 'a', 0x82,
		0xa6, 'p', 'a', 'c', 'k', 'e', 't', 0x82, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa4, 'd', 'a', 't', 'a',
		0x92, 0xa3, 'b', 'i', 'n', 0xc4, 0x03, 1, 2, 3,
		0xa4, 'o', 'p', 't', 's', 0x83, 0xa5, 'r', 'o', 'o', 'm', 's', 0x90, 0xa6, 'e', 'x', 'c', 'e', 'p', 't', 0x90, 0xa5, 'f', 'l', 'a', 'g', 's', 0x80,
		0xa3, 'u', 'i', 'd', 0xb0}
	want = append(want, uid...)
	want = append(want, 0xa3, 'n', 's', 'p', 0xa1, '/')
	testkit.Equal(t, []byte(m.Payload), want)

	testkit.NoError(t, a.AddSockets(ctx, adapter.BroadcastOptions{}, []string{"room9"}))
	expect(base, `{"type":4,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["room9"]}`+tail)
	testkit.NoError(t, a.DelSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"room9"}}, []string{"room9"}))
	expect(base, `{"type":5,"data":{"opts":{"rooms":["room9"],"except":[],"flags":{}},"rooms":["room9"]}`+tail)
	testkit.NoError(t, a.DisconnectSockets(ctx, adapter.BroadcastOptions{Rooms: []string{sid}}, false))
	expect(base, `{"type":6,"data":{"opts":{"rooms":["`+sid+`"],"except":[],"flags":{}},"close":false}`+tail)

	_, err = a.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"sse"`), json.RawMessage(`"a"`), json.RawMessage(`2`)}, false)
	testkit.NoError(t, err)
	expect(base, `{"type":9,"data":{"packet":["sse","a",2]}`+tail)

	// The observer is counted as a node (SHARDNUMSUB) and never answers.
	n, err := a.ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, n, 2)
	_, err = a.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"sse2"`), json.RawMessage(`"q"`)}, true)
	testkit.Equal(t, err.Error(), "timeout reached: only 0 responses received out of 1")
	expect(base, `{"type":9,"data":{"requestId":"R","packet":["sse2","q"]}`+tail)
	_, err = a.FetchSockets(ctx, adapter.BroadcastOptions{})
	testkit.Equal(t, err.Error(), "timeout reached: only 0 responses received out of 1")
	expect(base, `{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"R"}`+tail)
}

// TestShardedAnswers sends Node's requests and answers to a Go adapter by
// hand and reads its answers on the requester's channel.
func TestShardedAnswers(t *testing.T) {
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	ctx := context.Background()
	f := NewSharded(newClient(t, url), ShardedOptions{Key: key, Logger: testLogger(t), MaxMessageBytes: 4096})
	t.Cleanup(func() { testkit.NoError(t, f.Close(ctx)) })
	ns := &fakeNamespace{name: "/"}
	ad, err := f.Adapter(ns)
	testkit.NoError(t, err)
	a := ad.(*ShardedAdapter)
	s := newFakeSocket("s1")
	a.AddAll(s, []string{"s1", "room1"})

	node := "f814a91ae584e293"
	pub := newClient(t, url)
	ps := pub.SSubscribe(ctx, key+"#/#"+node+"#")
	t.Cleanup(func() { _ = ps.Close() })
	_, err = ps.ReceiveTimeout(ctx, 5*time.Second)
	testkit.NoError(t, err)
	answer := func() string {
		t.Helper()
		for {
			msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
			testkit.NoError(t, err)
			if m, ok := msg.(*goredis.Message); ok {
				return m.Payload
			}
		}
	}
	send := func(channel, msg string) {
		t.Helper()
		testkit.NoError(t, pub.SPublish(ctx, channel, msg).Err())
	}
	tail := `,"uid":"` + a.UID() + `","nsp":"/"}`

	// A broadcast with acks from Node: the count, then each answer.
	send(key+"#/#", `{"type":3,"data":{"packet":{"type":2,"data":["ackme"]},"requestId":"cfd5bfe62a75c903","opts":{"rooms":[],"except":[],"flags":{"timeout":1000}}},"uid":"`+node+`","nsp":"/"}`)
	testkit.Equal(t, answer(), `{"type":11,"data":{"requestId":"cfd5bfe62a75c903","clientCount":1}`+tail)
	p := s.next(t)
	testkit.Equal(t, string(p.Data), `["ackme"]`)
	s.mu.Lock()
	ack := s.acks[0]
	s.mu.Unlock()
	ack([]parser.Raw{{JSON: json.RawMessage(`"fromB"`)}})
	testkit.Equal(t, answer(), `{"type":12,"data":{"requestId":"cfd5bfe62a75c903","packet":"fromB"}`+tail)

	// A broadcast to the room's channel, and one of another namespace.
	send(key+"#/#room1#", `{"type":3,"data":{"packet":{"type":2,"data":["r1", "x"]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"`+node+`","nsp":"/"}`)
	// Valid JSON is passed on as it came (Node's JSON.stringify writes it compact).
	testkit.Equal(t, string(s.next(t).Data), `["r1", "x"]`)

	// fetchSockets.
	send(key+"#/#", `{"type":7,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{"timeout":2000}},"requestId":"c10104b4f18c796b"},"uid":"`+node+`","nsp":"/"}`)
	testkit.Equal(t, answer(), `{"type":8,"data":{"requestId":"c10104b4f18c796b","sockets":[{"id":"s1","handshake":{"headers":{},"auth":{}},"rooms":[],"data":{}}]}`+tail)

	// An answer over MaxMessageBytes: an empty one Node counts, with an error.
	s.info.Data = json.RawMessage(`"` + string(make([]byte, 5000)) + `"`)
	for i := range 5000 {
		s.info.Data[1+i] = 'x'
	}
	send(key+"#/#", `{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"c10104b4f18c796c"},"uid":"`+node+`","nsp":"/"}`)
	got := answer()
	testkit.True(t, regexp.MustCompile(`^\{"type":8,"data":\{"requestId":"c10104b4f18c796c","sockets":\[\],"error":\{"code":"messageTooLarge",.*\}\}`+regexp.QuoteMeta(tail)+`$`).MatchString(got), "answer %s", got)

	// serverSideEmit with ack; only the first answer is sent.
	ns.sse = func(args []json.RawMessage, ack func(json.RawMessage)) {
		ack(json.RawMessage(`{"ok":true,"arg":"q"}`))
		ack(json.RawMessage(`"twice"`))
	}
	send(key+"#/#", `{"type":9,"data":{"requestId":"5279e29be8399b14","packet":["sse2","q"]},"uid":"`+node+`","nsp":"/"}`)
	testkit.Equal(t, answer(), `{"type":10,"data":{"requestId":"5279e29be8399b14","packet":{"ok":true,"arg":"q"}}`+tail)

	// Its own messages and other namespaces' are ignored; garbage too.
	send(key+"#/#", `{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"aaaaaaaaaaaaaaaa"},"uid":"`+node+`","nsp":"/other"}`)
	send(key+"#/#", "\x93\x01")
	send(key+"#/#", `{"type":7}`)
	send(key+"#/#", `not json`)
	send(key+"#/#", `{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"bbbbbbbbbbbbbbbb"},"uid":"`+node+`","nsp":"/"}`)
	testkit.True(t, regexp.MustCompile(`"requestId":"bbbbbbbbbbbbbbbb"`).MatchString(answer()), "the next answer is the last request's")
}

func TestShardedHelpers(t *testing.T) {
	// Redis Cluster's key slots (CLUSTER KEYSLOT).
	testkit.Equal(t, cluster.HashSlot("foo"), 12182)
	testkit.Equal(t, cluster.HashSlot("{user1000}.following"), cluster.HashSlot("{user1000}.followers"))
	testkit.Equal(t, cluster.HashSlot("socket.io#/#"), cluster.HashSlot("socket.io#/#"))
	testkit.Equal(t, cluster.HashSlot("a{}b"), cluster.HashSlot("a{}b"))
	// JavaScript lengths.
	testkit.Equal(t, cluster.JSLength("u35mTHo8wgXgZ1bsAAAB"), 20)
	testkit.Equal(t, cluster.JSLength("é"), 1)
	testkit.Equal(t, cluster.JSLength("😀"), 2)
	// flags.timeout.
	o := cluster.Opts{Flags: map[string]json.RawMessage{"timeout": json.RawMessage(`1500`), "volatile": json.RawMessage(`true`), "compress": json.RawMessage(`"no"`)}}
	got := o.Options()
	testkit.Equal(t, got.Flags.Timeout, 1500*time.Millisecond)
	testkit.True(t, got.Flags.Volatile && got.Flags.Compress == nil, "flags %+v", got.Flags)
	for _, bad := range []string{`-1`, `"x"`, `null`, `1e400`} {
		o.Flags["timeout"] = json.RawMessage(bad)
		testkit.Equal(t, o.Options().Flags.Timeout, time.Duration(0), bad)
	}
	o.Flags["timeout"] = json.RawMessage(`1e30`)
	testkit.Equal(t, o.Options().Flags.Timeout, time.Duration(cluster.MaxFlagTimeout)*time.Millisecond)
	// Malformed messages are errors, never panics.
	for _, m := range []string{"", "{", `{"type":3}`, `{"nsp":"/"}`, "\x84", "\x81\xa4type\x03", "\xc1"} {
		_, err := cluster.Decode([]byte(m))
		testkit.True(t, err != nil, "%q decoded", m)
	}
}

// TestShardedPublishQueue: a burst of broadcasts far larger than the
// publish queue. Unpaced, the bounds refuse what does not fit
// (ErrQueueFull); paced (as the server's emits are), the sender waits for
// the publisher and the other node receives every broadcast.
func TestShardedPublishQueue(t *testing.T) {
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	const burst = 3000
	payload := []byte(`["m","0123456789012345678901234567890123456789"]`)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		paced bool
		opts  ShardedOptions
	}{
		{"unpaced-count", false, ShardedOptions{Key: key + "c", MaxPendingPublishes: 16}},
		{"unpaced-bytes", false, ShardedOptions{Key: key + "b", MaxPendingPublishBytes: 2048}},
		{"paced", true, ShardedOptions{Key: key + "p", MaxPendingPublishes: 16, MaxPendingPublishBytes: 2048}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newAdapter := func(o ShardedOptions) *ShardedAdapter {
				o.Logger = testLogger(t)
				f := NewSharded(newClient(t, url), o)
				t.Cleanup(func() { testkit.NoError(t, f.Close(ctx)) })
				a, err := f.Adapter(&fakeNamespace{name: "/"})
				testkit.NoError(t, err)
				return a.(*ShardedAdapter)
			}
			a := newAdapter(tc.opts)
			b := newAdapter(ShardedOptions{Key: tc.opts.Key})
			sock := &countingSocket{fakeSocket: newFakeSocket("s1")}
			b.AddAll(sock, []string{sock.id})
			full := 0
			for range burst {
				p := adapter.NewPacket("/", payload, nil)
				if tc.paced {
					p.EnablePacing()
				}
				err := a.Broadcast(p, adapter.BroadcastOptions{})
				p.WaitPaced(5 * time.Second)
				if errors.Is(err, cluster.ErrQueueFull) {
					full++
				} else {
					testkit.NoError(t, err)
				}
			}
			if !tc.paced {
				testkit.True(t, full > 0, "the queue's bound refused nothing")
				return
			}
			testkit.Equal(t, full, 0, "paced broadcasts refused")
			eventually(t, "every broadcast received", func() bool { return sock.n.Load() == burst })
		})
	}
}
