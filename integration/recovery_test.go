package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Connection state recovery on one node (testapp -recovery): what the
// official client sees must be the same on both targets.

// dialRecovering connects a client that reconnects after delay, waits for
// its welcome — which carries an offset, the client's position in the log —
// and returns it with its socket id.
func (e *env) dialRecovering(delay time.Duration) (*testkit.Client, string) {
	e.t.Helper()
	o := e.options()
	o.Reconnection = true
	o.Extra = map[string]any{"reconnectionDelay": delay.Milliseconds(), "reconnectionDelayMax": delay.Milliseconds(), "randomizationFactor": 0}
	c, err := e.drv.Connect(e.ctx(), o)
	testkit.NoError(e.t, err)
	id, err := c.WaitConnect(e.ctx())
	testkit.NoError(e.t, err)
	args, err := c.Next(e.ctx(), "welcome")
	testkit.NoError(e.t, err)
	testkit.Equal(e.t, len(args), 2, "welcome arguments: the object, then the offset")
	off, ok := args[1].(string)
	testkit.True(e.t, ok && off != "", "welcome offset is %#v", args[1])
	return c, id
}

func eventNames(evs []*testkit.Event) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return strings.Join(out, ",")
}

func TestRecoveryContract(t *testing.T) {
	scenario(t, func(e *env) {
		c, id := e.dialRecovering(1500 * time.Millisecond)
		rc := &client{Client: c, e: e, id: id}
		rc.ack("join", "r1")
		rc.ack("set-data", map[string]any{"k": "v"})
		other, otherID := e.dialRecovering(100 * time.Millisecond)
		oc := &client{Client: other, e: e, id: otherID}

		testkit.NoError(t, c.CloseTransport(e.ctx()))
		_, err := c.WaitDisconnect(e.ctx())
		testkit.NoError(t, err)
		// While c is away (it comes back after 1.5 s): what it must get back,
		// and what it must not (volatile, other rooms, excluded).
		oc.ack("broadcast", map[string]any{"to": []string{"r1"}, "event": "m1", "args": []any{1}})
		oc.ack("broadcast", map[string]any{"event": "m-volatile", "volatile": true})
		oc.ack("broadcast", map[string]any{"to": []string{"r2"}, "event": "m-r2"})
		oc.ack("broadcast", map[string]any{"except": []string{"r1"}, "event": "m-except"})
		oc.ack("broadcast", map[string]any{"to": []string{id}, "event": "m2", "args": []any{[]byte{7}}})
		oc.ack("broadcast", map[string]any{"event": "m3", "args": []any{"x"}})

		sid, err := c.WaitConnect(e.ctx())
		testkit.NoError(t, err)
		testkit.Equal(t, sid, id, "socket id after recovery")
		info, err := c.Info(e.ctx())
		testkit.NoError(t, err)
		testkit.True(t, info.Recovered, "socket.recovered")
		// The missed packets, in order, before the new welcome.
		evs, err := c.Until(e.ctx(), "welcome")
		testkit.NoError(t, err)
		testkit.Equal(t, eventNames(evs), "m1,m2,m3,welcome", "events after the reconnection")
		testkit.Equal(t, len(evs[0].Args), 2, "m1: its argument and the offset")
		if b, ok := evs[1].Args[0].([]byte); !ok || len(b) != 1 || b[0] != 7 {
			t.Fatalf("m2 argument %#v", evs[1].Args)
		}
		testkit.Equal(t, rc.ack1("recovered"), true, "server: socket.recovered")
		testkit.Equal(t, show(rc.ack1("rooms")), show(sorted(id, "r1")), "rooms restored")
		socks := asList(t, oc.ack1("fetch-sockets", map[string]any{"in": []string{id}}))
		testkit.Equal(t, len(socks), 1, "fetch-sockets")
		testkit.Equal(t, show(asObj(t, socks[0])["data"]), show(map[string]any{"k": "v"}), "data restored")

		// Live traffic goes on, once.
		oc.ack("broadcast", map[string]any{"to": []string{"r1"}, "event": "live"})
		evs, err = c.Until(e.ctx(), "live")
		testkit.NoError(t, err)
		testkit.Equal(t, eventNames(evs), "live", "live events")
		testkit.NoError(t, c.Close(e.ctx()))
		testkit.NoError(t, other.Close(e.ctx()))
	}, "-recovery", "10s")
}

func TestRecoveryContractExpired(t *testing.T) {
	scenario(t, func(e *env) {
		c, id := e.dialRecovering(1200 * time.Millisecond)
		rc := &client{Client: c, e: e, id: id}
		rc.ack("join", "r1")
		testkit.NoError(t, c.CloseTransport(e.ctx()))
		_, err := c.WaitDisconnect(e.ctx())
		testkit.NoError(t, err)
		sid, err := c.WaitConnect(e.ctx())
		testkit.NoError(t, err)
		testkit.True(t, sid != id, "a new socket id after the window")
		info, err := c.Info(e.ctx())
		testkit.NoError(t, err)
		testkit.True(t, !info.Recovered, "socket.recovered after the window")
		rc.id = sid
		testkit.Equal(t, rc.ack1("recovered"), false, "server: socket.recovered")
		testkit.Equal(t, show(rc.ack1("rooms")), show(sorted(sid)), "rooms of the new session")
		testkit.NoError(t, c.Close(e.ctx()))
	}, "-recovery", "300ms")
}
