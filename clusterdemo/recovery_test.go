package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// waitReconnect waits up to within for c to connect again (testkit.Client.WaitReconnect).
func waitReconnect(t *testing.T, c *testkit.Client, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	id, err := c.WaitReconnect(ctx)
	testkit.NoError(t, err, "%s did not reconnect within %v", c.Handle(), within)
	return id
}

// expectRecovered checks the reconnection of c, which had the session was
// and was away while the texts of missed were sent to its room: the same
// socket id, socket.recovered, the missed messages before its new welcome,
// and that welcome (from node, with was's name and room, recovered). why
// says what the recovery needs, for the failure message.
func expectRecovered(t *testing.T, c *testkit.Client, id string, was welcome, node string, missed []string, why string) {
	t.Helper()
	info, err := c.Info(opCtx(t))
	testkit.NoError(t, err)
	if id != was.ID || !info.Recovered {
		t.Fatalf("%s reconnected with a new session (socket id %s, was %s; socket.recovered %v): not recovered. %s",
			c.Handle(), id, was.ID, info.Recovered, why)
	}
	evs, err := c.Until(opCtx(t), eventWelcome)
	testkit.NoError(t, err, "welcome after the recovery")
	var got []string
	for _, e := range evs[:len(evs)-1] {
		if e.Name != eventChat {
			t.Fatalf("%s got %q before its welcome, want only the missed chat messages", c.Handle(), e.Name)
		}
		var m chatMessage
		testkit.NoError(t, json.Unmarshal(e.Raw[0], &m))
		got = append(got, m.Text)
	}
	testkit.Equal(t, strings.Join(got, "|"), strings.Join(missed, "|"), "missed messages delivered before the welcome")
	var w welcome
	testkit.NoError(t, json.Unmarshal(evs[len(evs)-1].Raw[0], &w))
	testkit.Equal(t, w, welcome{Node: node, ID: was.ID, Name: was.Name, Room: was.Room, Recovered: true}, "welcome after the recovery")
}

// chatTo sends text from c and waits for its ack.
func chatTo(t *testing.T, c *testkit.Client, text string) {
	t.Helper()
	var ack map[string]string
	ask(t, c, &ack, eventChat, map[string]any{"text": text})
	testkit.True(t, ack["id"] != "", "chat ack %v", ack)
}

// A page whose connection drops (its node runs on) comes back to the same
// node recovered: same id, the room and name it chose after connecting (not
// those of its auth, which the page sends again), and the messages of its
// room sent meanwhile, before its welcome. On both adapters: with Redis, the
// messages come from another node.
func TestClusterRecoverySameNode(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			var n, other *testNode
			if backend == "redis" {
				url := testkit.StartRedis(t)
				n = startNode(t, "n1", url, "cd-recover", time.Minute)
				other = startNode(t, "n2", url, "cd-recover", time.Minute)
			} else {
				n = startNode(t, "solo", "", "", time.Minute)
				other = n
			}
			drv := testkit.NewNodeClientDriver(t)
			for _, m := range transportModes {
				t.Run(m.name, func(t *testing.T) {
					room := "rec-" + m.name
					a, wa := connectWith(t, drv, reconnecting(n.URL(), m.transports, map[string]any{"name": "ann", "room": "lobby"}))
					var w welcome
					ask(t, a, &w, eventJoin, map[string]any{"room": room, "name": "annie"})
					testkit.Equal(t, w, welcome{Node: n.name, ID: wa.ID, Name: "annie", Room: room})
					b, _ := connect(t, drv, other.URL(), m.transports, map[string]any{"name": "bob", "room": room})

					testkit.NoError(t, a.CloseTransport(opCtx(t)))
					_, err := a.WaitDisconnect(opCtx(t))
					testkit.NoError(t, err)
					// a comes back after 300 ms: sent before, these are missed.
					chatTo(t, b, "while away 1")
					chatTo(t, b, "while away 2")

					id := waitReconnect(t, a, opTimeout)
					expectRecovered(t, a, id, w, n.name, []string{"while away 1", "while away 2"},
						"Same-node recovery (the socket's node ran on) is in this tree: this is a regression.")

					// Live again, as annie in the room, without a join.
					chatTo(t, a, "back")
					for _, x := range []*testkit.Client{a, b} {
						var msg chatMessage
						for {
							next(t, x, eventChat, &msg)
							if msg.Text == "back" {
								break
							}
						}
						testkit.Equal(t, msg.Name, "annie")
						testkit.Equal(t, msg.Room, room)
						testkit.Equal(t, msg.Sender, wa.ID)
					}
					want := 1 // a, recovered: its former socket is gone
					if other == n {
						want = 2 // and b
					}
					testkit.Equal(t, len(n.srv.Sockets()), want, "sockets of %s after the recovery", n.name)
					_ = a.Close(opCtx(t))
					_ = b.Close(opCtx(t))
				})
			}
		})
	}
}

// Without recovery (-recovery 0) a page that lost its connection gets a new
// session with the name and room of its auth.
func TestClusterRecoveryOff(t *testing.T) {
	testkit.CheckGoroutines(t)
	addr, cancel, done := startRun(t, []string{"-addr", "127.0.0.1:0", "-node", "norec", "-recovery", "0"})
	drv := testkit.NewNodeClientDriver(t)
	a, wa := connectWith(t, drv, reconnecting("http://"+addr, []string{"websocket"}, map[string]any{"name": "ann", "room": "r1"}))
	testkit.NoError(t, a.CloseTransport(opCtx(t)))
	_, err := a.WaitDisconnect(opCtx(t))
	testkit.NoError(t, err)
	id := waitReconnect(t, a, opTimeout)
	testkit.True(t, id != wa.ID, "same socket id %s without recovery", id)
	var w welcome
	next(t, a, eventWelcome, &w)
	testkit.Equal(t, w, welcome{Node: "norec", ID: id, Name: "ann", Room: "r1"})
	_ = a.Close(opCtx(t))
	cancel()
	testkit.NoError(t, <-done)
}

// A node stops (SIGTERM: run's context ends) and its pages reconnect to the
// same address, where a node starts again: the same node restarted, or
// another one (as a load balancer sends a page to another node). They are
// recovered — same id, room and name, and the messages the rest of the
// cluster sent while they were away. The session outlives the node's process
// only in Redis: this needs cross-node recovery in the Redis adapter.
func TestClusterRecoveryNodeRestart(t *testing.T) {
	testkit.CheckGoroutines(t)
	url := testkit.StartRedis(t)
	other := startNode(t, "stays", url, "cd-restart", time.Minute)
	drv := testkit.NewNodeClientDriver(t)

	for _, tc := range []struct{ name, first, then string }{
		{"restarted", "restarts", "restarts"},
		{"moved", "leaves", "takes-over"},
	} {
		for _, m := range transportModes {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				addr := testkit.FreeAddr(t)
				args := func(node string) []string {
					return []string{"-addr", addr, "-node", node, "-redis", url, "-key", "cd-restart", "-recovery", "1m"}
				}
				_, cancel, done := startRun(t, args(tc.first))
				room := "restart-" + tc.name + "-" + m.name
				a, wa := connectWith(t, drv, reconnecting("http://"+addr, m.transports, map[string]any{"name": "ann", "room": room}))
				testkit.Equal(t, wa.Node, tc.first)
				b, _ := connect(t, drv, other.URL(), m.transports, map[string]any{"name": "bob", "room": room})

				cancel()
				select {
				case err := <-done:
					testkit.NoError(t, err, "run after SIGTERM")
				case <-time.After(12 * time.Second):
					t.Fatal("the node did not stop within 12 s of SIGTERM")
				}
				reason, err := a.WaitDisconnect(opCtx(t))
				testkit.NoError(t, err)
				testkit.Equal(t, reason, "transport close", "a node that shuts down closes its clients at the transport level")
				text := "while " + tc.first + " is away"
				chatTo(t, b, text)

				_, cancel, done = startRun(t, args(tc.then))
				id := waitReconnect(t, a, opTimeout)
				expectRecovered(t, a, id, wa, tc.then, []string{text},
					fmt.Sprintf("Recovering the session on %s, after the node it was left on (%s) stopped, needs "+
						"the session kept in Redis (cross-node connection state recovery on the Redis adapter); "+
						"without it a node knows only the sessions of its own process.", tc.then, tc.first))
				_ = a.Close(opCtx(t))
				_ = b.Close(opCtx(t))
				cancel()
				testkit.NoError(t, <-done)
			})
		}
	}
}
