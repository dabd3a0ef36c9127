package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/parser"
)

// The wire tests compare what the adapter publishes, read by a plain Redis
// subscriber, with the messages captured from @socket.io/redis-adapter 8.3.0
// (docs/protocol/redis-adapter.md, A.5 and A.7), after
// replacing the random uids and request ids by the captured ones.

var requestIDField = regexp.MustCompile(`"requestId":"[A-Za-z0-9_-]{6}"`)

// normalizeJSON puts the captured ids in a JSON message.
func normalizeJSON(msg []byte, uid, requestID string) string {
	msg = bytes.ReplaceAll(msg, []byte(`"uid":"`+uid+`"`), []byte(`"uid":"4TrWtR"`))
	return requestIDField.ReplaceAllString(string(msg), `"requestId":"`+requestID+`"`)
}

// normalizeMsgpack puts the captured ids in a msgpack message (the ids keep
// their length, so the headers do not change).
func normalizeMsgpack(t *testing.T, msg []byte, uid, requestID string) string {
	t.Helper()
	out := bytes.ReplaceAll(msg, append([]byte{0xa6}, uid...), append([]byte{0xa6}, "4TrWtR"...))
	if requestID != "" {
		i := bytes.Index(out, []byte("\xa9requestId\xa6"))
		testkit.True(t, i >= 0, "no requestId in %x", msg)
		copy(out[i+11:i+17], requestID)
	}
	return hex.EncodeToString(out)
}

func TestWirePublished(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	f := newTestFactory(t, url, Options{Key: key, RequestsTimeout: 300 * time.Millisecond})
	a, _ := newTestAdapter(t, f, "/")
	// The plain subscriber of the request channel counts as a node, so the
	// adapter publishes its requests (and times out waiting for answers).
	sub := newSubscriber(t, newClient(t, url), []string{key + "#*"}, []string{key + "-request#/#"})
	ctx := context.Background()

	t.Run("broadcast", func(t *testing.T) {
		p := adapter.NewPacket("/", json.RawMessage(`["hello",1,"two",{"three":3.5}]`), nil)
		testkit.NoError(t, a.Broadcast(p, adapter.BroadcastOptions{}))
		m := sub.next()
		testkit.Equal(t, m.Channel, key+"#/#")
		testkit.Equal(t, normalizeMsgpack(t, []byte(m.Payload), a.uid, ""), hex.EncodeToString(testkit.Msgpack(t,
			`93 a6 "4TrWtR" 83 a4 "type" 02 a4 "data" 94 a5 "hello" 01 a3 "two" 81 a5 "three" cb 40 0c 00 00 00 00 00 00
			a3 "nsp" a1 "/" 83 a5 "rooms" 90 a6 "except" 90 a5 "flags" 80`)))

		// One room: that room's channel.
		testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["r1","x"]`), nil), adapter.BroadcastOptions{Rooms: []string{"room1"}}))
		m = sub.next()
		testkit.Equal(t, m.Channel, key+"#/#room1#")
		js, _, err := cluster.MsgpackToJSON([]byte(m.Payload), cluster.BinBufferJSON)
		testkit.NoError(t, err)
		testkit.Equal(t, normalizeJSON([]byte(js), a.uid, ""), `["`+a.uid+`",{"type":2,"data":["r1","x"],"nsp":"/"},{"rooms":["room1"],"except":[],"flags":{}}]`)

		// Local broadcasts are not published: the next message is the marker.
		testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["loc"]`), nil), adapter.BroadcastOptions{Flags: adapter.Flags{Local: true}}))
		testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", json.RawMessage(`["marker"]`), nil), adapter.BroadcastOptions{}))
		b, err := decodeBroadcast([]byte(sub.next().Payload), "")
		testkit.NoError(t, err)
		testkit.Equal(t, string(b.data), `["marker"]`)
	})

	t.Run("broadcast with acks", func(t *testing.T) {
		p := adapter.NewPacket("/", json.RawMessage(`["ackme"]`), nil)
		p.ID, p.HasID = 3, true
		testkit.NoError(t, a.BroadcastWithAck(p, adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: time.Second}}, func(int) {}, func([]parser.Raw) {}))
		m := sub.next()
		testkit.Equal(t, m.Channel, key+"-request#/#")
		testkit.Equal(t, normalizeMsgpack(t, []byte(m.Payload), a.uid, "w9ZQ4-"), hex.EncodeToString(testkit.Msgpack(t,
			`85 a3 "uid" a6 "4TrWtR" a9 "requestId" a6 "w9ZQ4-" a4 "type" 07
			a6 "packet" 83 a4 "type" 02 a4 "data" 91 a5 "ackme" a3 "nsp" a1 "/"
			a4 "opts" 83 a5 "rooms" 90 a6 "except" 90 a5 "flags" 81 a7 "timeout" cd 03 e8`)))
	})

	t.Run("requests", func(t *testing.T) {
		type call struct {
			name string
			do   func() error
			want string
			err  string
		}
		for _, c := range []call{
			{"fetchSockets", func() error { _, err := a.FetchSockets(ctx, adapter.BroadcastOptions{}); return err },
				`{"uid":"4TrWtR","requestId":"gT08mN","type":5,"opts":{"rooms":[],"except":[]}}`,
				"timeout reached while waiting for fetchSockets response"},
			{"fetchSockets in/except", func() error {
				_, err := a.FetchSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"r"}, Except: []string{"x"}})
				return err
			}, `{"uid":"4TrWtR","requestId":"gT08mN","type":5,"opts":{"rooms":["r"],"except":["x"]}}`,
				"timeout reached while waiting for fetchSockets response"},
			{"allRooms", func() error { _, err := a.AllRooms(ctx); return err },
				`{"uid":"4TrWtR","requestId":"8AjAUf","type":1}`, "timeout reached while waiting for allRooms response"},
			{"socketsJoin", func() error { return a.AddSockets(ctx, adapter.BroadcastOptions{}, []string{"room9"}) },
				`{"uid":"4TrWtR","type":2,"opts":{"rooms":[],"except":[]},"rooms":["room9"]}`, ""},
			{"socketsLeave", func() error {
				return a.DelSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"room9"}}, []string{"room9"})
			}, `{"uid":"4TrWtR","type":3,"opts":{"rooms":["room9"],"except":[]},"rooms":["room9"]}`, ""},
			{"disconnectSockets", func() error {
				return a.DisconnectSockets(ctx, adapter.BroadcastOptions{Rooms: []string{"znMCb6rlmSKCJqpoAAAB"}}, false)
			}, `{"uid":"4TrWtR","type":4,"opts":{"rooms":["znMCb6rlmSKCJqpoAAAB"],"except":[]},"close":false}`, ""},
			{"serverSideEmit", func() error {
				_, err := a.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"sse"`), json.RawMessage(`"a"`), json.RawMessage(`2`)}, false)
				return err
			}, `{"uid":"4TrWtR","type":6,"data":["sse","a",2]}`, ""},
			{"serverSideEmit with ack", func() error {
				res, err := a.ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"sse2"`), json.RawMessage(`"q"`)}, true)
				testkit.Equal(t, len(res), 0)
				testkit.True(t, res != nil, "partial responses are an empty list, not nil")
				return err
			}, `{"uid":"4TrWtR","requestId":"LW29gZ","type":6,"data":["sse2","q"]}`, "timeout reached: only 0 responses received out of 1"},
		} {
			t.Run(c.name, func(t *testing.T) {
				errc := make(chan error, 1)
				start := time.Now()
				go func() { errc <- c.do() }()
				m := sub.next()
				testkit.Equal(t, m.Channel, key+"-request#/#")
				testkit.Equal(t, normalizeJSON([]byte(m.Payload), a.uid, requestID(c.want)), c.want)
				err := <-errc
				if c.err == "" {
					testkit.NoError(t, err)
					return
				}
				testkit.True(t, err != nil, "no error")
				testkit.Equal(t, err.Error(), c.err)
				testkit.ErrorIs(t, err, adapter.ErrTimeout)
				var te *adapter.TimeoutError
				testkit.True(t, errors.As(err, &te), "%T is not an *adapter.TimeoutError", err)
				testkit.True(t, time.Since(start) >= 250*time.Millisecond, "timed out after %v", time.Since(start))
			})
		}
	})
}

// requestID extracts the captured request id of a wanted message.
func requestID(want string) string {
	m := regexp.MustCompile(`"requestId":"([^"]+)"`).FindStringSubmatch(want)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestWireAnswers(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	f := newTestFactory(t, url, Options{Key: key})
	a, ns := newTestAdapter(t, f, "/")
	sock := newFakeSocket("znMCb6rlmSKCJqpoAAAB")
	sock.info.Handshake = json.RawMessage(`{"headers":{"host":"x"},"time":"Sat Nov 21 2026 22:33:23 GMT+0000 (Coordinated Universal Time)","address":"127.0.0.1","xdomain":false,"secure":false,"issued":1795300403128,"url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4","transport":"websocket"},"auth":{}}`)
	sock.info.Data = json.RawMessage(`{"user":"bob","n":1}`)
	a.AddAll(sock, []string{sock.id, "room1"})
	sock.info.Rooms = a.SocketRooms(sock.id)
	other := newFakeSocket("otherSocketIdAAAAAAA")
	a.AddAll(other, []string{other.id})

	pub := newClient(t, url)
	sub := newSubscriber(t, newClient(t, url), nil, []string{key + "-response#/#", key + "-response#/#4TrWtR#"})
	ctx := context.Background()
	request := func(msg []byte) {
		t.Helper()
		testkit.NoError(t, pub.Publish(ctx, key+"-request#/#", msg).Err())
	}
	answer := func() string {
		t.Helper()
		m := sub.next()
		testkit.Equal(t, m.Channel, key+"-response#/#")
		return m.Payload
	}

	t.Run("fetchSockets", func(t *testing.T) {
		request([]byte(`{"uid":"4TrWtR","requestId":"gT08mN","type":5,"opts":{"rooms":["room1"],"except":[]}}`))
		testkit.Equal(t, answer(), `{"requestId":"gT08mN","sockets":[{"id":"znMCb6rlmSKCJqpoAAAB","handshake":`+string(sock.info.Handshake)+
			`,"rooms":["room1","znMCb6rlmSKCJqpoAAAB"],"data":{"user":"bob","n":1}}]}`)
		request([]byte(`{"uid":"4TrWtR","requestId":"gT08mN","type":5,"opts":{"rooms":["none"],"except":[]}}`))
		testkit.Equal(t, answer(), `{"requestId":"gT08mN","sockets":[]}`)
	})
	t.Run("allRooms", func(t *testing.T) {
		request([]byte(`{"uid":"4TrWtR","requestId":"8AjAUf","type":1}`))
		testkit.Equal(t, answer(), `{"requestId":"8AjAUf","rooms":["otherSocketIdAAAAAAA","room1","znMCb6rlmSKCJqpoAAAB"]}`)
	})
	t.Run("legacy sockets", func(t *testing.T) {
		request([]byte(`{"uid":"4TrWtR","requestId":"s0s0s0","type":0,"rooms":["room1"]}`))
		testkit.Equal(t, answer(), `{"requestId":"s0s0s0","sockets":["znMCb6rlmSKCJqpoAAAB"]}`)
	})
	t.Run("serverSideEmit", func(t *testing.T) {
		got := make(chan string, 2)
		ns.mu.Lock()
		ns.sse = func(args []json.RawMessage, ack func(json.RawMessage)) {
			got <- string(cluster.AppendRawArray(nil, args))
			if ack != nil {
				ack(json.RawMessage(`{"ok":true,"arg":"q"}`))
				ack(json.RawMessage(`"second call ignored"`))
			}
		}
		ns.mu.Unlock()
		request([]byte(`{"uid":"4TrWtR","type":6,"data":["sse","a",2]}`))
		testkit.Equal(t, <-got, `["sse","a",2]`)
		request([]byte(`{"uid":"4TrWtR","requestId":"LW29gZ","type":6,"data":["sse2","q"]}`))
		testkit.Equal(t, <-got, `["sse2","q"]`)
		testkit.Equal(t, answer(), `{"type":6,"requestId":"LW29gZ","data":{"ok":true,"arg":"q"}}`)
		// Its own serverSideEmit never reaches a node.
		request([]byte(`{"uid":"` + a.uid + `","type":6,"data":["own"]}`))
		request([]byte(`{"uid":"4TrWtR","type":6,"data":["after"]}`))
		testkit.Equal(t, <-got, `["after"]`)
	})
	t.Run("broadcast with acks", func(t *testing.T) {
		request(testkit.Msgpack(t, `85 a3 "uid" a6 "4TrWtR" a9 "requestId" a6 "w9ZQ4-" a4 "type" 07
			a6 "packet" 83 a4 "type" 02 a4 "data" 91 a5 "ackme" a3 "nsp" a1 "/"
			a4 "opts" 83 a5 "rooms" 91 a5 "room1" a6 "except" 90 a5 "flags" 81 a7 "timeout" cd 03 e8`))
		p := sock.next(t)
		testkit.Equal(t, string(p.Data), `["ackme"]`)
		testkit.True(t, p.HasID, "the packet carries an ack id from the namespace")
		testkit.Equal(t, answer(), `{"type":8,"requestId":"w9ZQ4-","clientCount":1}`)
		sock.mu.Lock()
		ack := sock.acks[0]
		sock.mu.Unlock()
		ack(rawArgs(t, `["fromB","only the first argument travels"]`))
		testkit.Equal(t, hex.EncodeToString([]byte(answer())), hex.EncodeToString(testkit.Msgpack(t, `83 a4 "type" 09 a9 "requestId" a6 "w9ZQ4-" a6 "packet" a5 "fromB"`)))
	})
	t.Run("join leave disconnect", func(t *testing.T) {
		eventually := func(what string, cond func() bool) {
			t.Helper()
			deadline := time.Now().Add(5 * time.Second)
			for !cond() {
				if time.Now().After(deadline) {
					t.Fatalf("%s: not done", what)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		has := func(room string) bool {
			for _, r := range a.SocketRooms(other.id) {
				if r == room {
					return true
				}
			}
			return false
		}
		request([]byte(`{"uid":"4TrWtR","type":2,"opts":{"rooms":[],"except":["room1"]},"rooms":["room9"]}`))
		eventually("join", func() bool { return has("room9") })
		testkit.Equal(t, a.SocketRooms(sock.id), []string{"room1", sock.id}, "except")
		// Own requests were applied when sent; the echo is ignored.
		request([]byte(`{"uid":"` + a.uid + `","type":3,"opts":{"rooms":[],"except":[]},"rooms":["room9"]}`))
		// The emitter sends no uid.
		request([]byte(`{"type":2,"opts":{"rooms":["room9"],"except":[]},"rooms":["emitted"]}`))
		eventually("join without uid", func() bool { return has("emitted") })
		testkit.True(t, has("room9"), "own leave request applied again")
		request([]byte(`{"uid":"4TrWtR","type":3,"opts":{"rooms":[],"except":[]},"rooms":["room9","emitted"]}`))
		eventually("leave", func() bool { return !has("room9") && !has("emitted") })
		// Legacy single-socket form: answered.
		request([]byte(`{"uid":"4TrWtR","requestId":"lgcy01","type":2,"sid":"otherSocketIdAAAAAAA","room":"legacy"}`))
		testkit.Equal(t, answer(), `{"requestId":"lgcy01"}`)
		testkit.True(t, has("legacy"), "legacy join")
		request([]byte(`{"uid":"4TrWtR","type":4,"opts":{"rooms":["otherSocketIdAAAAAAA"],"except":[]},"close":true}`))
		eventually("disconnect", func() bool {
			other.mu.Lock()
			defer other.mu.Unlock()
			return other.disconnected != nil && *other.disconnected
		})
	})
	t.Run("broadcast from node", func(t *testing.T) {
		// Garbage on a room channel no local socket is in is not even decoded.
		testkit.NoError(t, pub.Publish(ctx, key+"#/#nobody#", "\xc1garbage").Err())
		testkit.NoError(t, pub.Publish(ctx, key+"#/#room1#", testkit.Msgpack(t, `93 a6 "4TrWtR" 83 a4 "type" 02 a4 "data" 93 a3 "bin" c4 03 01 02 03 81 a1 "d" d6 ff 00 00 00 00
			a3 "nsp" a1 "/" 83 a5 "rooms" 91 a5 "room1" a6 "except" 90 a5 "flags" 81 a8 "volatile" c3`)).Err())
		p := sock.next(t)
		testkit.Equal(t, string(p.Data), `["bin",{"_placeholder":true,"num":0},{"d":"1970-01-01T00:00:00.000Z"}]`)
		testkit.Equal(t, p.Attachments, [][]byte{{1, 2, 3}})
		sock.mu.Lock()
		flags := sock.flags[len(sock.flags)-1]
		sock.mu.Unlock()
		testkit.True(t, flags.Volatile, "volatile flag")
		// Other namespaces and own messages are dropped.
		testkit.NoError(t, pub.Publish(ctx, key+"#/#", testkit.Msgpack(t, `93 a1 "x" 83 a4 "type" 02 a4 "data" 91 a1 "a" a3 "nsp" a2 "/x" 80`)).Err())
		own, err := encodeBroadcast(a.uid, "/", adapter.NewPacket("/", json.RawMessage(`["own"]`), nil), adapter.BroadcastOptions{})
		testkit.NoError(t, err)
		testkit.NoError(t, pub.Publish(ctx, key+"#/#", own).Err())
		testkit.NoError(t, pub.Publish(ctx, key+"#/#", testkit.Msgpack(t, `93 a1 "x" 83 a4 "type" 02 a4 "data" 91 a1 "b" a3 "nsp" a1 "/" 80`)).Err())
		testkit.Equal(t, string(sock.next(t).Data), `["b"]`)
	})
}

func TestWireSpecificResponseChannel(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	f := newTestFactory(t, url, Options{Key: key, PublishOnSpecificResponseChannel: true})
	a, ns := newTestAdapter(t, f, "/admin")
	a.AddAll(newFakeSocket("s1"), []string{"s1"})
	ns.sse = func(_ []json.RawMessage, ack func(json.RawMessage)) { ack(json.RawMessage(`1`)) }
	pub := newClient(t, url)
	sub := newSubscriber(t, newClient(t, url), nil, []string{key + "-response#/admin#", key + "-response#/admin#4TrWtR#"})
	ctx := context.Background()
	testkit.NoError(t, pub.Publish(ctx, key+"-request#/admin#", `{"uid":"4TrWtR","requestId":"8AjAUf","type":1}`).Err())
	m := sub.next()
	testkit.Equal(t, m.Channel, key+"-response#/admin#4TrWtR#")
	testkit.Equal(t, m.Payload, `{"requestId":"8AjAUf","rooms":["s1"]}`)
	// serverSideEmit answers always use the shared channel, as on Node.
	testkit.NoError(t, pub.Publish(ctx, key+"-request#/admin#", `{"uid":"4TrWtR","requestId":"LW29gZ","type":6,"data":["x"]}`).Err())
	m = sub.next()
	testkit.Equal(t, m.Channel, key+"-response#/admin#")
	testkit.Equal(t, m.Payload, `{"type":6,"requestId":"LW29gZ","data":1}`)
}
