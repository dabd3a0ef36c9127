package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// transportModes are the ways the page's client may reach a node.
var transportModes = []struct {
	name       string
	transports []string
}{
	{"websocket", []string{"websocket"}},
	{"polling", []string{"polling"}},
	{"default", nil}, // polling, then upgrade
}

func TestClusterChat(t *testing.T) {
	testkit.CheckGoroutines(t)
	n := startNode(t, "solo", "", "", time.Minute)
	drv := testkit.NewNodeClientDriver(t)
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) {
			room := "r-" + m.name
			a, wa := connect(t, drv, n.URL(), m.transports, map[string]any{"name": "ann", "room": room})
			testkit.Equal(t, wa, welcome{Node: "solo", ID: wa.ID, Name: "ann", Room: room})
			b, wb := connect(t, drv, n.URL(), m.transports, map[string]any{"name": "  bob\n the\tbuilder ", "room": strings.ToUpper(room)})
			testkit.Equal(t, wb.Name, "bob the builder", "names are cleaned")
			testkit.Equal(t, wb.Room, room, "rooms are lower-cased")
			c, wc := connect(t, drv, n.URL(), m.transports, nil) // no auth: defaults
			testkit.Equal(t, wc.Room, defaultRoom)
			testkit.Equal(t, wc.Name, "guest-"+strings.ToLower(wc.ID[len(wc.ID)-4:]))

			// A message reaches the whole room, its sender included, stamped with the
			// sender's node; not the other rooms.
			var ack map[string]string
			ask(t, a, &ack, eventChat, map[string]any{"text": "  hello  "})
			testkit.True(t, ack["id"] != "", "chat ack %v", ack)
			for _, x := range []*testkit.Client{a, b} {
				var msg chatMessage
				next(t, x, eventChat, &msg)
				testkit.True(t, msg.At > 0, "message time")
				msg.At = 0
				testkit.Equal(t, msg, chatMessage{ID: ack["id"], Room: room, Name: "ann", Text: "hello", Node: "solo", Sender: wa.ID})
			}
			ask(t, c, &ack, eventChat, map[string]any{"text": "lobby only"})
			var msg chatMessage
			next(t, c, eventChat, &msg)
			testkit.Equal(t, msg.Text, "lobby only", "c saw a message of another room first")

			// Joining another room (and renaming) moves the socket.
			var w welcome
			ask(t, b, &w, eventJoin, map[string]any{"room": "lobby", "name": "bobby"})
			testkit.Equal(t, w, welcome{Node: "solo", ID: wb.ID, Name: "bobby", Room: "lobby"})
			ask(t, a, &ack, eventChat, map[string]any{"text": "b left"})
			ask(t, c, &ack, eventChat, map[string]any{"text": "welcome b"})
			next(t, b, eventChat, &msg)
			testkit.Equal(t, msg.Text, "welcome b", "b saw a message of the room it left")
			next(t, a, eventChat, &msg)
			testkit.Equal(t, msg.Text, "b left")
			next(t, c, eventChat, &msg)
			testkit.Equal(t, msg.Text, "welcome b")

			// Refusals.
			for _, tc := range []struct {
				event string
				arg   any
				want  string
			}{
				{eventChat, map[string]any{"text": " "}, "empty message"},
				{eventChat, map[string]any{"text": strings.Repeat("x", maxText+1)}, "message too long"},
				{eventChat, 42, "chat: want {text}"},
				{eventJoin, map[string]any{"room": "Not a room!"}, "a room name is 1 to 24 of a-z, 0-9, - and _"},
				{eventJoin, map[string]any{"room": strings.Repeat("r", 25)}, "a room name is 1 to 24 of a-z, 0-9, - and _"},
				{eventJoin, "lobby", "join: want {room, name}"},
			} {
				var f failure
				ask(t, a, &f, tc.event, tc.arg)
				testkit.Equal(t, f.Error, tc.want, "%s %v", tc.event, tc.arg)
			}
			for _, x := range []*testkit.Client{a, b, c} {
				_, pending := x.TryNext(eventChat)
				testkit.True(t, !pending, "%s got a message it should not have", x.Handle())
			}
		})
	}
}

func TestClusterPanelAlone(t *testing.T) {
	testkit.CheckGoroutines(t)
	n := startNode(t, "solo", "", "", time.Minute)
	drv := testkit.NewNodeClientDriver(t)
	a, _ := connect(t, drv, n.URL(), []string{"websocket"}, nil)
	connect(t, drv, n.URL(), []string{"polling"}, nil)
	var v panelView
	ask(t, a, &v, eventCluster)
	testkit.Equal(t, v.Node, "solo")
	testkit.Equal(t, len(v.Nodes), 1, "nodes %+v", v.Nodes)
	got := v.Nodes[0]
	testkit.True(t, got.Up && got.Self, "the node itself is up: %+v", got)
	testkit.Equal(t, got.Clients, 2)
	testkit.True(t, got.Started.Equal(n.started), "started %v, want %v", got.Started, n.started)
}

// Three nodes on one Redis: each panel lists all of them with their clients;
// a node that leaves shows as down on the others, then disappears.
func TestClusterPanelRedis(t *testing.T) {
	testkit.CheckGoroutines(t)
	url := testkit.StartRedis(t)
	const forget = 3 * time.Second
	n1 := startNode(t, "n1", url, "cd-panel", forget)
	n2 := startNode(t, "n2", url, "cd-panel", forget)
	n3 := startNode(t, "n3", url, "cd-panel", forget)
	drv := testkit.NewNodeClientDriver(t)
	a, _ := connect(t, drv, n1.URL(), nil, map[string]any{"room": "x"})
	b, _ := connect(t, drv, n2.URL(), []string{"polling"}, map[string]any{"room": "x"})
	connect(t, drv, n2.URL(), []string{"websocket"}, nil)
	c, _ := connect(t, drv, n3.URL(), []string{"websocket"}, map[string]any{"room": "x"})

	for _, x := range []struct {
		c    *testkit.Client
		node string
	}{{a, "n1"}, {b, "n2"}, {c, "n3"}} {
		var v panelView
		ask(t, x.c, &v, eventCluster)
		testkit.Equal(t, v.Node, x.node)
		testkit.Equal(t, rows(v), []string{"n1:up:1", "n2:up:2", "n3:up:1"}, "panel of %s", x.node)
		for _, pn := range v.Nodes {
			testkit.Equal(t, pn.Self, pn.Node == x.node, "panel of %s: self flag of %s", x.node, pn.Node)
		}
	}

	// Messages cross nodes, stamped with the sender's node.
	var ack map[string]string
	ask(t, c, &ack, eventChat, map[string]any{"text": "from n3"})
	for _, x := range []*testkit.Client{a, b, c} {
		var msg chatMessage
		next(t, x, eventChat, &msg)
		testkit.Equal(t, msg.Node, "n3")
		testkit.Equal(t, msg.Text, "from n3")
	}

	// n3 leaves: down on the others' panels, then forgotten.
	var v panelView
	n3.stop(t)
	left := time.Now()
	eventually(t, 5*time.Second, "n3 down on n1's panel", func() (bool, any) {
		ask(t, a, &v, eventCluster)
		r := rows(v)
		return len(r) == 3 && r[0] == "n1:up:1" && r[1] == "n2:up:2" && strings.HasPrefix(r[2], "n3:down:"), r
	})
	testkit.True(t, !v.Nodes[2].LastSeen.IsZero(), "a down node keeps its last-seen time")
	eventually(t, forget+5*time.Second, "n3 forgotten by n1", func() (bool, any) {
		ask(t, a, &v, eventCluster)
		r := rows(v)
		return len(r) == 2, r
	})
	testkit.True(t, time.Since(left) >= forget-time.Second, "n3 forgotten after %v, before -forget %v", time.Since(left), forget)
}

// The page's JSON: what app.js reads.
func TestClusterPanelJSON(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	v := panelView{Node: "a", Nodes: []panelNode{
		{nodeStatus: nodeStatus{Node: "a", Clients: 2, Started: started}, Up: true, LastSeen: started, Self: true},
		{nodeStatus: nodeStatus{Node: "b", Clients: 1, Started: started}, LastSeen: started},
	}}
	b, err := json.Marshal(v)
	testkit.NoError(t, err)
	testkit.JSONEqual(t, string(b), `{"node":"a","nodes":[`+
		`{"node":"a","clients":2,"started":"2026-01-02T03:04:05.006Z","up":true,"lastSeen":"2026-01-02T03:04:05.006Z","self":true},`+
		`{"node":"b","clients":1,"started":"2026-01-02T03:04:05.006Z","up":false,"lastSeen":"2026-01-02T03:04:05.006Z"}]}`)
}
