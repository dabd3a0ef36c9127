package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/integration/internal/redistest"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The scenarios of the test application contract (docs/testapp-contract.md), driven
// by the official socket.io-client. Each runs for every selected target in three transport
// modes, with a server of its own.

// ---------------------------------------------------------------- connection

func TestWelcome(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		testkit.True(e.t, idPattern.MatchString(c.id), "socket id %q is not 20 characters of [A-Za-z0-9_-]", c.id)
		testkit.Equal(e.t, c.welcome, obj{"node": e.node, "id": c.id, "nsp": "/", "auth": obj{}})

		a := e.connect(auth(obj{"token": "abc", "n": 1, "nested": obj{"x": list{true, nil}}}))
		testkit.Equal(e.t, a.welcome["auth"], obj{"token": "abc", "n": 1.0, "nested": obj{"x": list{true, nil}}})

		cu := e.connect(nsp("/custom"))
		testkit.Equal(e.t, cu.welcome, obj{"node": e.node, "id": cu.id, "nsp": "/custom", "auth": obj{}})

		// One Engine.IO connection, two namespaces: a new socket id for each.
		m1 := e.connect(manager("m"))
		m2 := e.connect(manager("m"), nsp("/custom"), auth(obj{"k": "v"}))
		testkit.NotEqual(e.t, m1.id, m2.id)
		testkit.Equal(e.t, m2.welcome["auth"], obj{"k": "v"})
		ids := map[string]bool{}
		for _, x := range []*client{c, a, cu, m1, m2} {
			testkit.True(e.t, !ids[x.id], "socket id %s used twice", x.id)
			ids[x.id] = true
		}
	})
}

func TestNode(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		testkit.Equal(e.t, c.ack1("node"), e.node)
		testkit.Equal(e.t, c.welcome["node"], e.node)
		testkit.Equal(e.t, e.node, e.srv.Addr, "default node name is the bound address")
	})
}

func TestNodeFlag(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect(nsp("/custom"))
		testkit.Equal(e.t, c.welcome["node"], "node-x")
		testkit.Equal(e.t, c.ack1("node"), "node-x")
	}, "-node", "node-x")
}

func TestMiddlewareRefusal(t *testing.T) {
	scenario(t, func(e *env) {
		for _, ns := range []string{"/", "/custom", "/dyn-mw1"} {
			c := e.dial(nsp(ns), auth(obj{"token": "bad"}))
			ce, err := c.WaitConnectError(e.ctx())
			testkit.NoError(e.t, err, "namespace %s", ns)
			testkit.Equal(e.t, ce.Message, "unauthorized", "namespace %s", ns)
			testkit.True(e.t, ce.HasData, "namespace %s: connect_error without data", ns)
			testkit.Equal(e.t, ce.Data, obj{"reason": "bad token"}, "namespace %s", ns)

			ok := e.connect(nsp(ns), auth(obj{"token": "good"}))
			testkit.Equal(e.t, ok.welcome["auth"], obj{"token": "good"})
		}
	})
}

func TestUnknownNamespace(t *testing.T) {
	scenario(t, func(e *env) {
		main := e.connect(manager("m"))
		for _, ns := range []string{"/nope", "/dyn-ABC", "/dyn-", "/custom/x"} {
			c := e.dial(manager("m"), nsp(ns))
			ce, err := c.WaitConnectError(e.ctx())
			testkit.NoError(e.t, err, "namespace %s", ns)
			testkit.Equal(e.t, ce.Message, "Invalid namespace", "namespace %s", ns)
			testkit.True(e.t, !ce.HasData, "namespace %s: connect_error has data %s", ns, show(ce.Data))
		}
		// The Engine.IO connection stays open: the main namespace keeps working.
		testkit.Equal(e.t, main.ack("echo", "still here"), list{"still here"})
		info, err := main.Info(e.ctx())
		testkit.NoError(e.t, err)
		testkit.True(e.t, info.Connected, "main namespace socket disconnected")
		other := e.connect(manager("m"), nsp("/custom"))
		testkit.Equal(e.t, other.ack("echo", 1), list{1.0})
	})
}

func TestDynamicNamespaces(t *testing.T) {
	scenario(t, func(e *env) {
		main := e.connect()
		d1 := e.connect(nsp("/dyn-abc1"))
		d2 := e.connect(nsp("/dyn-abc1"), auth(obj{"who": "d2"}))
		other := e.connect(nsp("/dyn-zz9"))
		testkit.Equal(e.t, d1.welcome, obj{"node": e.node, "id": d1.id, "nsp": "/dyn-abc1", "auth": obj{}})
		testkit.Equal(e.t, d2.welcome["auth"], obj{"who": "d2"})
		testkit.Equal(e.t, other.welcome["nsp"], "/dyn-zz9")

		// Every handler exists there and acts within the namespace.
		testkit.Equal(e.t, d1.ack("echo", "x", []byte{1}), list{"x", []byte{1}})
		testkit.Equal(e.t, d1.ack1("join", "room"), sorted(d1.id, "room"))
		testkit.Equal(e.t, d1.ack1("count", obj{}), 2.0)
		testkit.Equal(e.t, other.ack1("count", obj{}), 1.0)
		testkit.Equal(e.t, main.ack1("count", obj{}), 1.0)
		testkit.Equal(e.t, d2.ack1("all-rooms"), list{"room"})
		testkit.Equal(e.t, main.ack1("all-rooms"), list{})

		// A broadcast in the dynamic namespace reaches only its sockets.
		testkit.Equal(e.t, d2.ack1("broadcast", obj{"event": "dyn-hello", "args": list{"hi"}}), true)
		testkit.Equal(e.t, d1.next("dyn-hello"), list{"hi"})
		testkit.Equal(e.t, d2.next("dyn-hello"), list{"hi"})
		for _, c := range []*client{main, other} {
			testkit.Equal(e.t, c.ack1("echo-event", "marker"), true)
			evs, err := c.Until(e.ctx(), "marker")
			testkit.NoError(e.t, err)
			testkit.Equal(e.t, names(evs), []string{"marker"}, "%s received the other namespace's broadcast", c.Handle())
		}
		fs := asList(e.t, d1.ack1("fetch-sockets", obj{}))
		testkit.Equal(e.t, len(fs), 2)
		for _, s := range fs {
			testkit.Equal(e.t, asObj(e.t, s)["nsp"], "/dyn-abc1")
		}
	})
}

// ---------------------------------------------------------------- echo

func TestEcho(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		cases := []struct {
			name string
			args []any
		}{
			{"no args", list{}},
			{"string", list{"hello"}},
			{"unicode", list{"héllo ✓ 😀 \u2028 \"quoted\" \\ \n"}},
			{"numbers", list{1.0, -2.5, 0.0, 1e21, 123456789012.0}},
			{"literals", list{true, false, nil}},
			{"several", list{"a", 1.0, obj{"b": list{}}, list{obj{}}, ""}},
			{"nested", list{obj{"a": obj{"b": list{1.0, obj{"c": "d", "e": list{nil, true}}}}}}},
			{"binary", list{[]byte{0, 1, 2, 255}}},
			{"empty binary", list{[]byte{}}},
			{"two binaries", list{[]byte("first"), "between", []byte("second")}},
			{"nested binary", list{obj{"file": []byte{9, 8, 7}, "list": list{[]byte{1}, "x", obj{"deep": []byte{2, 3}}}}}},
			{"large", list{strings.Repeat("abcdefghij", 20_000)}},
		}
		for _, tc := range cases {
			testkit.Equal(e.t, c.ack("echo", tc.args...), tc.args, tc.name)
		}

		// Object keys keep their order, as on Node.
		for _, raw := range []string{
			`{"b":1,"a":2}`,
			`{"z":{"y":1,"x":[{"d":1,"c":2}]},"a":null,"m":"n"}`,
		} {
			got := c.rawAck("echo", json.RawMessage(raw), "tail")
			testkit.Equal(e.t, got, []string{raw, `"tail"`}, "key order")
		}
	})
}

func TestEchoEvent(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		for _, tc := range []struct {
			event string
			args  []any
		}{
			{"greeting", list{"a", 1.0, obj{"k": list{true}}}},
			{"no-args", list{}},
			{"binary", list{[]byte{1, 2, 3}, obj{"nested": []byte{4}}}},
			{"message", list{"the name of a plain event"}},
		} {
			res := c.ack("echo-event", append(list{tc.event}, tc.args...)...)
			testkit.Equal(e.t, res, list{true}, tc.event)
			// The event was written before the ack: it is already buffered.
			ev, ok := c.TryNext(tc.event)
			testkit.True(e.t, ok, "%s: event not received before the ack; buffered: %v", tc.event, c.Buffered())
			testkit.Equal(e.t, ev.Args, tc.args, tc.event)
		}
		raw := c.rawAck("echo-event", "ordered", json.RawMessage(`{"b":1,"a":2}`))
		testkit.Equal(e.t, raw, []string{"true"})
		ev, ok := c.TryNext("ordered")
		testkit.True(e.t, ok, "ordered: not received before the ack")
		testkit.Equal(e.t, string(ev.Raw[0]), `{"b":1,"a":2}`)
	})
}

// TestCatchAll checks that every event the server emits reaches the client's catch-all
// listener, whatever its name and arity, and that events the server has no handler for are
// ignored without harm.
func TestCatchAll(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		events := []struct {
			name string
			args []any
		}{
			{"x y", list{}},
			{"ünïcödé-名前", list{1.0}},
			{"123", list{"a", "b", "c", "d", "e"}},
			{"welcome", list{"not really"}},
			{"error", list{obj{"message": "not an error"}}},
		}
		for _, ev := range events {
			testkit.Equal(e.t, c.ack("echo-event", append(list{ev.name}, ev.args...)...), list{true})
		}
		testkit.Equal(e.t, c.ack1("emit-reserved", "from-reserved"), nil)
		testkit.Equal(e.t, c.ack1("echo-event", "end"), true)
		got, err := c.Until(e.ctx(), "end")
		testkit.NoError(e.t, err)
		want := []string{}
		for _, ev := range events {
			want = append(want, ev.name)
		}
		want = append(want, "from-reserved", "end")
		testkit.Equal(e.t, names(got), want)
		for i, ev := range events {
			testkit.Equal(e.t, got[i].Args, ev.args, ev.name)
		}

		// No handler: no ack, no harm.
		_, err = c.EmitWithAckTimeout(e.ctx(), 300*time.Millisecond, "no-such-event", 1)
		testkit.True(e.t, testkit.IsAckTimeout(err), "ack of an unhandled event: got %v, want a timeout", err)
		c.emit("no-such-event-either", "x")
		testkit.Equal(e.t, c.ack("echo", "alive"), list{"alive"})
	})
}

// ---------------------------------------------------------------- rooms and data

func TestRooms(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		testkit.Equal(e.t, c.rooms(), list{c.id})
		testkit.Equal(e.t, c.ack1("join", "b"), sorted(c.id, "b"))
		testkit.Equal(e.t, c.ack1("join", list{"c", "a", "Z", "é"}), sorted(c.id, "a", "b", "c", "Z", "é"))
		testkit.Equal(e.t, c.ack1("join", "a"), sorted(c.id, "a", "b", "c", "Z", "é"), "join twice")
		testkit.Equal(e.t, c.ack1("leave", "not-joined"), sorted(c.id, "a", "b", "c", "Z", "é"), "leave unjoined")
		testkit.Equal(e.t, c.ack1("leave", "b"), sorted(c.id, "a", "c", "Z", "é"))
		testkit.Equal(e.t, c.rooms(), sorted(c.id, "a", "c", "Z", "é"))

		// Rooms belong to the namespace socket.
		other := e.connect(nsp("/custom"))
		testkit.Equal(e.t, other.rooms(), list{other.id})
	})
}

func TestFetchSockets(t *testing.T) {
	scenario(t, func(e *env) {
		a, b, c := e.connect(), e.connect(), e.connect()
		d := e.connect(nsp("/custom"))
		testkit.Equal(e.t, a.ack1("set-data", obj{"name": "a", "n": 1, "bin": false}), true)
		testkit.Equal(e.t, b.ack1("set-data", list{1, "two"}), true)
		testkit.Equal(e.t, d.ack1("set-data", "custom"), true)
		a.ack1("join", "r1")
		b.ack1("join", list{"r1", "r2"})
		c.ack1("join", "r2")

		entry := func(x *client, data any, rooms ...string) any {
			return obj{"id": x.id, "rooms": sorted(append(rooms, x.id)...), "data": data, "nsp": x.Namespace()}
		}
		ea := entry(a, obj{"name": "a", "n": 1.0, "bin": false}, "r1")
		eb := entry(b, list{1.0, "two"}, "r1", "r2")
		ec := entry(c, obj{}, "r2")
		byID := func(es ...any) any {
			out := append(list{}, es...)
			sort.Slice(out, func(i, j int) bool {
				return out[i].(obj)["id"].(string) < out[j].(obj)["id"].(string)
			})
			return out
		}
		for _, tc := range []struct {
			name string
			spec any
			want any
		}{
			{"all", obj{}, byID(ea, eb, ec)},
			{"empty lists", obj{"in": list{}, "except": list{}}, byID(ea, eb, ec)},
			{"in r1", obj{"in": list{"r1"}}, byID(ea, eb)},
			{"union, each once", obj{"in": list{"r1", "r2"}}, byID(ea, eb, ec)},
			{"in minus except", obj{"in": list{"r2"}, "except": list{"r1"}}, byID(ec)},
			{"except only", obj{"except": list{"r1"}}, byID(ec)},
			{"by socket id", obj{"in": list{b.id}}, byID(eb)},
			{"nobody", obj{"in": list{"nobody"}}, list{}},
		} {
			testkit.Equal(e.t, a.ack1("fetch-sockets", tc.spec), tc.want, tc.name)
		}
		testkit.Equal(e.t, d.ack1("fetch-sockets", obj{}), list{entry(d, "custom")}, "other namespace")
	})
}

func TestSocketsJoinLeave(t *testing.T) {
	scenario(t, func(e *env) {
		a, b, c := e.connect(), e.connect(), e.connect()
		a.ack1("join", "r1")
		b.ack1("join", "r1")
		expect := func(x *client, rooms ...string) {
			e.t.Helper()
			want := sorted(append(rooms, x.id)...)
			e.eventually(x.Handle()+" rooms", func() (bool, any) {
				got := x.rooms()
				return show(got) == show(want), got
			})
		}
		testkit.Equal(e.t, c.ack1("sockets-join", obj{"in": list{"r1"}, "rooms": list{"x", "y"}}), true)
		expect(a, "r1", "x", "y")
		expect(b, "r1", "x", "y")
		expect(c)

		testkit.Equal(e.t, c.ack1("sockets-join", obj{"except": list{"r1"}, "rooms": list{"z"}}), true)
		expect(c, "z")
		expect(a, "r1", "x", "y")

		testkit.Equal(e.t, a.ack1("sockets-join", obj{"rooms": list{"all"}}), true)
		expect(a, "r1", "x", "y", "all")
		expect(b, "r1", "x", "y", "all")
		expect(c, "z", "all")

		testkit.Equal(e.t, a.ack1("sockets-leave", obj{"in": list{"x"}, "except": list{b.id}, "rooms": list{"x", "y"}}), true)
		expect(a, "r1", "all")
		expect(b, "r1", "x", "y", "all")

		testkit.Equal(e.t, b.ack1("sockets-leave", obj{"rooms": list{"all", "never-joined"}}), true)
		expect(a, "r1")
		expect(b, "r1", "x", "y")
		expect(c, "z")
	})
}

func TestAllRooms(t *testing.T) {
	scenario(t, func(e *env) {
		a, b := e.connect(), e.connect()
		d := e.connect(nsp("/custom"))
		testkit.Equal(e.t, a.ack1("all-rooms"), list{})
		a.ack1("join", list{"r2", "r1"})
		b.ack1("join", list{"r3", "r2"})
		d.ack1("join", "c1")
		testkit.Equal(e.t, a.ack1("all-rooms"), list{"r1", "r2", "r3"})
		testkit.Equal(e.t, d.ack1("all-rooms"), list{"c1"})
		b.ack1("leave", "r3")
		testkit.Equal(e.t, b.ack1("all-rooms"), list{"r1", "r2"})
	})
}

func TestCount(t *testing.T) {
	scenario(t, func(e *env) {
		a, b, c := e.connect(), e.connect(), e.connect()
		d := e.connect(nsp("/custom"))
		a.ack1("join", "r1")
		b.ack1("join", list{"r1", "r2"})
		for _, tc := range []struct {
			spec any
			want float64
		}{
			{obj{}, 3},
			{obj{"in": list{}}, 3},
			{obj{"in": list{"r1"}}, 2},
			{obj{"in": list{"r1", "r2"}}, 2},
			{obj{"in": list{"r1", c.id}}, 3},
			{obj{"in": list{"nobody"}}, 0},
		} {
			testkit.Equal(e.t, c.ack1("count", tc.spec), tc.want, "count %s", show(tc.spec))
		}
		testkit.Equal(e.t, d.ack1("count", obj{}), 1.0)
	})
}

// ---------------------------------------------------------------- broadcasts

func TestBroadcast(t *testing.T) {
	scenario(t, func(e *env) {
		a, b, c, d := e.connect(), e.connect(), e.connect(), e.connect()
		other := e.connect(nsp("/custom"))
		a.ack1("join", "r1")
		b.ack1("join", list{"r1", "r2"})
		c.ack1("join", "r2")
		all := []*client{a, b, c, d}

		for i, tc := range []struct {
			name string
			spec obj
			want []*client
		}{
			{"to one room, sender included", obj{"to": list{"r1"}}, []*client{a, b}},
			{"to a union, each once", obj{"to": list{"r1", "r2"}}, []*client{a, b, c}},
			{"to minus except", obj{"to": list{"r1", "r2"}, "except": list{"r2"}}, []*client{a}},
			{"everyone", obj{}, all},
			{"except only", obj{"except": list{"r1"}}, []*client{c, d}},
			{"broadcast excludes the sender", obj{"broadcast": true}, []*client{b, c, d}},
			{"broadcast to a room", obj{"broadcast": true, "to": list{"r1"}}, []*client{b}},
			{"to a socket id", obj{"to": list{b.id}}, []*client{b}},
			{"local", obj{"local": true, "to": list{"r2"}}, []*client{b, c}},
			{"nobody", obj{"to": list{"nobody"}}, nil},
		} {
			event := fmt.Sprintf("bc%d", i)
			spec := obj{"event": event, "args": list{tc.name, i}}
			for k, v := range tc.spec {
				spec[k] = v
			}
			testkit.Equal(e.t, a.ack1("broadcast", spec), true, tc.name)
			expectDelivery(e, a, all, tc.want, event, list{tc.name, float64(i)}, tc.name)
		}

		// Binary arguments.
		testkit.Equal(e.t, a.ack1("broadcast", obj{"event": "bin", "to": list{"r2"}, "args": list{[]byte{1, 2}, obj{"b": []byte{3}}}}), true)
		expectDelivery(e, a, all, []*client{b, c}, "bin", list{[]byte{1, 2}, obj{"b": []byte{3}}}, "binary")

		// Volatile: delivered to connected, idle clients. Give polling clients time to have
		// their next GET pending.
		time.Sleep(300 * time.Millisecond)
		testkit.Equal(e.t, a.ack1("broadcast", obj{"event": "vol", "to": list{"r2"}, "volatile": true, "args": list{"v"}}), true)
		for _, x := range []*client{b, c} {
			testkit.Equal(e.t, x.next("vol"), list{"v"}, "volatile to %s", x.Handle())
		}

		// The other namespace received nothing.
		testkit.Equal(e.t, other.ack1("echo-event", "marker"), true)
		evs, err := other.Until(e.ctx(), "marker")
		testkit.NoError(e.t, err)
		testkit.Equal(e.t, names(evs), []string{"marker"})
	})
}

// expectDelivery checks that exactly the clients in want received event once, with args:
// sender broadcasts a marker to the whole namespace, and since each client receives in order,
// what came before the marker is what the broadcast delivered.
func expectDelivery(e *env, sender *client, all, want []*client, event string, args []any, what string) {
	e.t.Helper()
	testkit.Equal(e.t, sender.ack1("broadcast", obj{"event": "marker"}), true, "%s: marker", what)
	wanted := map[*client]bool{}
	for _, x := range want {
		wanted[x] = true
	}
	for _, x := range all {
		evs, err := x.Until(e.ctx(), "marker")
		testkit.NoError(e.t, err, what)
		var got []string
		for _, ev := range evs[:len(evs)-1] {
			got = append(got, ev.Name)
			testkit.Equal(e.t, ev.Args, args, "%s: arguments received by %s", what, x.Handle())
		}
		if wanted[x] {
			testkit.Equal(e.t, got, []string{event}, "%s: %s should receive it once", what, x.Handle())
		} else {
			testkit.Equal(e.t, got, []string(nil), "%s: %s should not receive it", what, x.Handle())
		}
	}
}

func TestBroadcastAck(t *testing.T) {
	scenario(t, func(e *env) {
		a, b, c := e.connect(), e.connect(), e.connect()
		for _, x := range []*client{a, b, c} {
			testkit.NoError(e.t, x.OnAck(e.ctx(), "q", x.Handle(), "second argument is dropped"))
			testkit.NoError(e.t, x.OnAckEcho(e.ctx(), "echo-q"))
		}
		testkit.NoError(e.t, a.OnAck(e.ctx(), "q2", "a"))
		testkit.NoError(e.t, b.OnAck(e.ctx(), "q2", "b"))
		testkit.NoError(e.t, c.OnAckSilent(e.ctx(), "q2"))
		b.ack1("join", "r")
		c.ack1("join", "r")

		result := func(v any) (any, []any) {
			e.t.Helper()
			o := asObj(e.t, v)
			testkit.Equal(e.t, len(o), 2, "keys of %s", show(o))
			rs := asList(e.t, o["responses"])
			sort.Slice(rs, func(i, j int) bool { return show(rs[i]) < show(rs[j]) })
			return o["err"], rs
		}

		err, rs := result(a.ack1("broadcast", obj{"event": "q", "args": list{1}, "timeoutMs": 3000}))
		testkit.Equal(e.t, err, nil, "everyone answering")
		testkit.Equal(e.t, rs, sorted(a.Handle(), b.Handle(), c.Handle()))

		err, rs = result(a.ack1("broadcast", obj{"event": "q", "broadcast": true, "timeoutMs": 3000}))
		testkit.Equal(e.t, err, nil)
		testkit.Equal(e.t, rs, sorted(b.Handle(), c.Handle()), "broadcast excludes the sender")

		err, rs = result(a.ack1("broadcast", obj{"event": "q", "to": list{"r"}, "except": list{b.id}, "local": true, "timeoutMs": 3000}))
		testkit.Equal(e.t, err, nil)
		testkit.Equal(e.t, rs, list{c.Handle()}, "to/except/local")

		err, rs = result(a.ack1("broadcast", obj{"event": "echo-q", "to": list{"r"}, "args": list{[]byte{7, 8}}, "timeoutMs": 3000}))
		testkit.Equal(e.t, err, nil)
		testkit.Equal(e.t, rs, list{[]byte{7, 8}, []byte{7, 8}}, "binary responses")

		start := time.Now()
		err, rs = result(a.ack1("broadcast", obj{"event": "q2", "args": list{"x"}, "timeoutMs": 500}))
		testkit.Equal(e.t, err, "operation has timed out", "a silent client")
		testkit.Equal(e.t, rs, list{"a", "b"}, "partial responses")
		testkit.True(e.t, time.Since(start) >= 450*time.Millisecond, "timed out after %v, before the 500 ms timeout", time.Since(start))

		start = time.Now()
		err, rs = result(a.ack1("broadcast", obj{"event": "q", "to": list{"nobody"}, "timeoutMs": 5000}))
		testkit.Equal(e.t, err, nil, "no client matched")
		testkit.Equal(e.t, rs, list{})
		testkit.True(e.t, time.Since(start) < 4*time.Second, "a broadcast that matches nobody answered after %v, not at once", time.Since(start))

		for _, x := range []*client{a, b, c} {
			testkit.Equal(e.t, x.ack("echo", "alive"), list{"alive"})
		}
	})
}

func TestAsk(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		testkit.NoError(e.t, c.OnAck(e.ctx(), "question", "answer", 42))
		testkit.Equal(e.t, c.ack1("ask", obj{"event": "question", "args": list{"x", obj{"y": 1}}, "timeoutMs": 3000}),
			obj{"err": nil, "response": list{"answer", 42.0}})
		ev, err := c.NextEvent(e.ctx(), "question")
		testkit.NoError(e.t, err)
		testkit.Equal(e.t, ev.Args, list{"x", obj{"y": 1.0}})

		testkit.NoError(e.t, c.OnAckSilent(e.ctx(), "hush"))
		start := time.Now()
		testkit.Equal(e.t, c.ack1("ask", obj{"event": "hush", "args": list{}, "timeoutMs": 300}),
			obj{"err": "operation has timed out", "response": list{}})
		testkit.True(e.t, time.Since(start) >= 250*time.Millisecond, "timed out after %v", time.Since(start))

		testkit.NoError(e.t, c.OnAckEcho(e.ctx(), "bin"))
		testkit.Equal(e.t, c.ack1("ask", obj{"event": "bin", "args": list{[]byte{1, 2, 3}, obj{"k": []byte{4}}}, "timeoutMs": 3000}),
			obj{"err": nil, "response": list{[]byte{1, 2, 3}, obj{"k": []byte{4}}}})

		testkit.NoError(e.t, c.OnAck(e.ctx(), "nothing"))
		testkit.Equal(e.t, c.ack1("ask", obj{"event": "nothing", "timeoutMs": 3000}),
			obj{"err": nil, "response": list{}}, "an ack without arguments")

		// Without timeoutMs the server waits for as long as it takes.
		var wg sync.WaitGroup
		var res []any
		var askErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, askErr = c.EmitWithAck(e.ctx(), "ask", obj{"event": "later", "args": list{"q"}})
		}()
		ev, err = c.NextEvent(e.ctx(), "later")
		testkit.NoError(e.t, err)
		testkit.True(e.t, ev.HasAck(), "the server did not ask for an ack")
		time.Sleep(700 * time.Millisecond)
		testkit.NoError(e.t, ev.Ack(e.ctx(), "done", []byte{5}))
		wg.Wait()
		testkit.NoError(e.t, askErr)
		testkit.Equal(e.t, res, list{obj{"err": nil, "response": list{"done", []byte{5}}}})
	})
}

// ---------------------------------------------------------------- cluster operations alone

func TestServerSideEmitAlone(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		cu := e.connect(nsp("/custom"))
		testkit.Equal(e.t, c.ack1("server-side-emit", obj{"event": "record", "args": list{1, "x"}}), true)
		testkit.Equal(e.t, c.ack1("server-side-emit", obj{"event": "record", "args": list{}, "timeoutMs": nil}), true)
		start := time.Now()
		testkit.Equal(e.t, c.ack1("server-side-emit", obj{"event": "ping", "args": list{}, "timeoutMs": 1000}),
			obj{"err": nil, "responses": list{}})
		testkit.Equal(e.t, cu.ack1("server-side-emit", obj{"event": "whoami", "args": list{"a"}, "timeoutMs": 1000}),
			obj{"err": nil, "responses": list{}})
		// At once: not after the 5 s default requests timeout.
		testkit.True(e.t, time.Since(start) < 3*time.Second, "alone, serverSideEmit with ack took %v", time.Since(start))
		// A node never receives its own serverSideEmit.
		time.Sleep(100 * time.Millisecond)
		testkit.Equal(e.t, c.ack1("recorded"), list{})
		testkit.Equal(e.t, cu.ack1("recorded"), list{})
	})
}

func TestSSE(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		o := asObj(e.t, c.ack1("sse"))
		ms, ok := o["ms"].(float64)
		testkit.True(e.t, ok && ms >= 0 && ms < 3000, "ms = %s", show(o["ms"]))
		delete(o, "ms")
		testkit.Equal(e.t, o, obj{"err": nil, "responses": list{}, "node": e.node})
	})
}

func TestHandlerError(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		// serverSideEmit refuses reserved names: the handler fails and acks {"error": message}.
		testkit.Equal(e.t, c.ack1("server-side-emit", obj{"event": "connect", "args": list{}}),
			obj{"error": `"connect" is a reserved event name`})
		testkit.Equal(e.t, c.ack1("broadcast", obj{"event": "disconnect", "args": list{}}),
			obj{"error": `"disconnect" is a reserved event name`})
		testkit.Equal(e.t, c.ack("echo", "alive"), list{"alive"})
	})
}

func TestDisconnectSockets(t *testing.T) {
	scenario(t, func(e *env) {
		a, b, c := e.connect(), e.connect(), e.connect()
		a.ack1("join", "kick")
		b.ack1("join", list{"kick", "other"})
		testkit.Equal(e.t, c.ack1("disconnect-sockets", obj{"in": list{"kick"}}), true)
		testkit.Equal(e.t, a.waitDisconnect(), "io server disconnect")
		testkit.Equal(e.t, b.waitDisconnect(), "io server disconnect")
		testkit.Equal(e.t, c.ack("echo", "still here"), list{"still here"})
		e.eventually("last-disconnect", func() (bool, any) {
			ld := c.ack1("last-disconnect")
			o, _ := ld.(map[string]any)
			return o != nil && o["reason"] == "server namespace disconnect" && (o["id"] == a.id || o["id"] == b.id), ld
		})

		// The caller selected too: the ack comes first.
		d := e.connect()
		d.ack1("join", "me")
		testkit.Equal(e.t, d.ack1("disconnect-sockets", obj{"in": list{"me"}, "except": list{"nobody"}}), true)
		testkit.Equal(e.t, d.waitDisconnect(), "io server disconnect")

		// except
		f, g := e.connect(), e.connect()
		g.ack1("join", "keep")
		testkit.Equal(e.t, c.ack1("disconnect-sockets", obj{"except": list{"keep"}}), true)
		testkit.Equal(e.t, c.waitDisconnect(), "io server disconnect")
		testkit.Equal(e.t, f.waitDisconnect(), "io server disconnect")
		testkit.Equal(e.t, g.ack("echo", 1), list{1.0})

		// close: true disconnects every namespace socket of the selected connections.
		m1 := e.connect(manager("m"))
		m2 := e.connect(manager("m"), nsp("/custom"))
		m1.ack1("join", "bye")
		testkit.Equal(e.t, g.ack1("disconnect-sockets", obj{"in": list{"bye"}, "close": true}), true)
		testkit.Equal(e.t, m1.waitDisconnect(), "io server disconnect")
		// Node sends a DISCONNECT for each namespace of the connection before closing it.
		testkit.Equal(e.t, m2.waitDisconnect(), "io server disconnect", "other namespace of the connection")
		testkit.Equal(e.t, g.ack("echo", 2), list{2.0})
	})
}

func TestEmitReserved(t *testing.T) {
	scenario(t, func(e *env) {
		c := e.connect()
		for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
			testkit.Equal(e.t, c.ack1("emit-reserved", name), fmt.Sprintf("%q is a reserved event name", name))
		}
		for _, name := range []string{"custom-name", "connection", "message"} {
			testkit.Equal(e.t, c.ack1("emit-reserved", name), nil, name)
			ev, ok := c.TryNext(name)
			testkit.True(e.t, ok, "%s not received before the ack", name)
			testkit.Equal(e.t, ev.Args, list{}, name)
		}
		testkit.Equal(e.t, c.ack("echo", "alive"), list{"alive"})
	})
}

func TestLastDisconnect(t *testing.T) {
	scenario(t, func(e *env) {
		obs := e.connect()
		testkit.Equal(e.t, obs.ack1("last-disconnect"), nil)
		expect := func(x *client, reason string, rooms ...string) {
			e.t.Helper()
			want := obj{"id": x.id, "reason": reason, "rooms": sorted(append(rooms, x.id)...)}
			e.eventually("last-disconnect of "+x.Handle(), func() (bool, any) {
				got := obs.ack1("last-disconnect")
				return show(got) == show(want), got
			})
		}

		a := e.connect()
		a.ack1("join", list{"r1", "r0"})
		testkit.NoError(e.t, a.Disconnect(e.ctx()))
		testkit.Equal(e.t, a.waitDisconnect(), "io client disconnect")
		expect(a, "client namespace disconnect", "r0", "r1")

		b := e.connect()
		b.ack1("join", "r2")
		testkit.Equal(e.t, obs.ack1("disconnect-sockets", obj{"in": list{"r2"}}), true)
		testkit.Equal(e.t, b.waitDisconnect(), "io server disconnect")
		expect(b, "server namespace disconnect", "r2")

		c := e.connect()
		c.ack1("join", "r3")
		testkit.NoError(e.t, c.CloseTransport(e.ctx()))
		c.waitDisconnect()
		expect(c, "transport close", "r3")

		// Kept per node, across namespaces.
		d := e.connect(nsp("/custom"))
		d.ack1("join", "r4")
		testkit.NoError(e.t, d.Disconnect(e.ctx()))
		expect(d, "client namespace disconnect", "r4")
	})
}

func TestRecorded(t *testing.T) {
	scenario(t, func(e *env) {
		for _, ns := range []string{"/", "/custom", "/dyn-rec1"} {
			c := e.connect(nsp(ns))
			testkit.Equal(e.t, c.ack1("recorded"), list{}, ns)
		}
	})
}

// TestGracefulShutdown: SIGTERM closes the transports without a DISCONNECT packet and the
// process exits 0.
func TestGracefulShutdown(t *testing.T) {
	scenario(t, func(e *env) {
		a := e.connect()
		b := e.connect(nsp("/custom"))
		e.waitTransport(a)
		e.waitTransport(b)
		testkit.NoError(e.t, e.srv.Stop(), "stop")
		for _, x := range []*client{a, b} {
			reason := x.waitDisconnect()
			if e.mode.name == "polling" && reason == "transport error" {
				// The reference is racy here: io.close() writes the close packet to the
				// pending GET, then closes the HTTP server, which may cut that response.
				continue
			}
			testkit.Equal(e.t, reason, "transport close", x.Handle())
		}
	})
}

// ---------------------------------------------------------------- load-test events

func TestBcast(t *testing.T) {
	scenario(t, func(e *env) {
		a, b, c := e.connect(), e.connect(), e.connect()
		b.ack1("join", "room1")
		// first message each client gets must be exactly the expected one
		first := func(x *client, want any) {
			e.t.Helper()
			testkit.Equal(e.t, x.next("msg"), list{want}, x.Handle())
		}

		testkit.Equal(e.t, a.ack("bcast", "room1", obj{"x": 1}), list{true})
		testkit.Equal(e.t, a.ack("bcast", nil, "everyone"), list{true})
		first(b, obj{"x": 1.0})
		for _, x := range []*client{a, b, c} {
			first(x, "everyone")
		}
		testkit.Equal(e.t, a.ack("bcast", "", []byte{1, 2}), list{true})
		for _, x := range []*client{a, b, c} {
			first(x, []byte{1, 2})
		}
		// Without an ack.
		a.emit("bcast", "room1", "no ack")
		first(b, "no ack")
		testkit.Equal(e.t, a.ack("bcast", nil, "end"), list{true})
		for _, x := range []*client{a, b, c} {
			first(x, "end")
		}
	})
}

func TestPublish(t *testing.T) {
	scenario(t, func(e *env) {
		a, b := e.connect(), e.connect()
		b.ack1("join", "pub")

		before := time.Now().UnixMicro()
		res := asObj(e.t, a.ack1("publish", obj{"room": "pub", "count": 20, "rate": 0, "size": 16}))
		after := time.Now().UnixMicro()
		testkit.Equal(e.t, res["sent"], 20.0)
		ms, ok := res["ms"].(float64)
		testkit.True(e.t, ok && ms >= 0, "ms = %s", show(res["ms"]))
		testkit.Equal(e.t, len(res), 2, "keys of %s", show(res))
		var lastT float64
		for i := 0; i < 20; i++ {
			p := asObj(e.t, b.next("msg")[0])
			tm, ok := p["t"].(float64)
			testkit.True(e.t, ok && tm == math.Trunc(tm), "t = %s is not an integer", show(p["t"]))
			testkit.True(e.t, tm >= float64(before-1_000_000) && tm <= float64(after+1_000_000), "t = %.0f µs is not between %d and %d (±1 s)", tm, before, after)
			testkit.True(e.t, tm >= lastT, "t went backwards")
			lastT = tm
			delete(p, "t")
			testkit.Equal(e.t, p, obj{"seq": float64(i), "src": "srv", "pad": strings.Repeat("x", 16)}, "message %d", i)
		}
		// The sender is not in "pub".
		testkit.Equal(e.t, a.ack("bcast", nil, "marker"), list{true})
		testkit.Equal(e.t, a.next("msg"), list{"marker"})
		testkit.Equal(e.t, b.next("msg"), list{"marker"})

		// Paced: message i is due i/F seconds after the start; an empty room is everyone.
		res = asObj(e.t, a.ack1("publish", obj{"room": "", "count": 5, "rate": 50, "size": 0}))
		testkit.Equal(e.t, res["sent"], 5.0)
		ms, _ = res["ms"].(float64)
		testkit.True(e.t, ms >= 75, "5 messages at 50/s took %v ms, want at least 80", res["ms"])
		for _, x := range []*client{a, b} {
			var ts []float64
			for i := 0; i < 5; i++ {
				p := asObj(e.t, x.next("msg")[0])
				testkit.Equal(e.t, p["seq"], float64(i))
				testkit.Equal(e.t, p["pad"], "")
				ts = append(ts, p["t"].(float64))
			}
			testkit.True(e.t, ts[4]-ts[0] >= 75_000, "paced messages span %.0f µs, want about 80000", ts[4]-ts[0])
		}
	})
}

// TestSigtermExit: a Go testapp node (Redis adapter, recovery on) exits 0 within 12 s of
// SIGTERM with clients connected over every transport — long-polls pending, an Engine.IO
// session that never connected a namespace among them — and its clients see their
// transport close (the official client then reconnects), never "io server disconnect".
func TestSigtermExit(t *testing.T) {
	const limit = 12 * time.Second // the requirement for a node behind an orchestrator
	url := redistest.StartRedis(t)
	srv := startGo(t, "-recovery", "10s", "-redis", url, "-key", "sigterm-"+strconv.Itoa(testkit.FreePort(t)), "-node", "sigterm")
	drv := testkit.NewNodeClientDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type member struct {
		c    *testkit.Client
		mode string
	}
	var members []member
	for _, m := range modes {
		for range 2 {
			c, err := drv.Connect(ctx, testkit.ConnectOptions{URL: srv.URL(), Transports: m.transports, Reconnection: true,
				Extra: map[string]any{"reconnectionDelay": 500, "reconnectionDelayMax": 500, "randomizationFactor": 0}})
			testkit.NoError(t, err)
			_, err = c.WaitConnect(ctx)
			testkit.NoError(t, err, "%s client", m.name)
			_, err = c.Next(ctx, "welcome")
			testkit.NoError(t, err)
			members = append(members, member{c, m.name})
		}
	}
	// A bare Engine.IO polling session with its GET pending: the server must answer it, not
	// leave http.Server.Shutdown waiting for it.
	hsReq, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/socket.io/?EIO=4&transport=polling", nil)
	testkit.NoError(t, err)
	hsResp, err := http.DefaultClient.Do(hsReq)
	testkit.NoError(t, err)
	hsBody, err := io.ReadAll(hsResp.Body)
	hsResp.Body.Close()
	testkit.NoError(t, err)
	open, ok := strings.CutPrefix(string(hsBody), "0")
	testkit.True(t, ok, "handshake %q", hsBody)
	var handshake struct {
		SID string `json:"sid"`
	}
	testkit.NoError(t, json.Unmarshal([]byte(open), &handshake), "handshake %q", hsBody)
	sid := handshake.SID
	poll := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL() + "/socket.io/?EIO=4&transport=polling&sid=" + sid)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		poll <- err
	}()
	// The polling clients are idle: each has its long-poll GET pending, as the raw one.
	time.Sleep(500 * time.Millisecond)

	start := time.Now()
	testkit.NoError(t, syscall.Kill(srv.Pid(), syscall.SIGTERM))
	select {
	case <-srv.Exited():
		// Under go test -race the testapp is a race build too: its runtime sleeps 1 s before
		// exiting (GORACE atexit_sleep_ms), which this includes; a plain build exits in ms.
		t.Logf("testapp exited %v after SIGTERM (limit %v), %d clients and a pending raw long-poll",
			time.Since(start).Round(time.Millisecond), limit, len(members))
	case <-time.After(limit):
		t.Fatalf("testapp did not exit within %v of SIGTERM", limit)
	}
	testkit.NoError(t, srv.Stop(), "exit status after SIGTERM") // exited: only checks the status

	for _, mb := range members {
		reason, err := mb.c.WaitDisconnect(ctx)
		testkit.NoError(t, err, "%s client %s", mb.mode, mb.c.Handle())
		testkit.Equal(t, reason, "transport close", "%s client %s: disconnect reason (io server disconnect would stop the official client from reconnecting)", mb.mode, mb.c.Handle())
	}
	// The official client reconnects after a transport close: with the node gone, its
	// attempts fail (connect_error), which shows they are made.
	for _, mb := range members {
		_, err := mb.c.WaitConnectError(ctx)
		testkit.NoError(t, err, "%s client %s: no reconnection attempt after the node left", mb.mode, mb.c.Handle())
		info, err := mb.c.Info(ctx)
		testkit.NoError(t, err)
		testkit.True(t, info.Active, "%s client %s gave up reconnecting", mb.mode, mb.c.Handle())
		_ = mb.c.Close(ctx)
	}
	select {
	case err := <-poll:
		t.Logf("raw long-poll ended with %v", err)
	case <-ctx.Done():
		t.Fatal("the raw long-poll GET never ended")
	}
}
