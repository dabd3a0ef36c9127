package redis

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestRecoverySameNode: with the Redis adapter, a client that comes back to
// the node it left is recovered, with the broadcasts other nodes sent
// meanwhile; what travels between nodes carries no offset.
func TestRecoverySameNode(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	node := func(rc *server.RecoveryConfig) (*server.Server, string) {
		f := New(newClient(t, url), Options{Key: key, RequestsTimeout: clusterTimeout, Logger: testLogger(t)})
		srv := server.New(server.Config{Adapter: f, ConnectionStateRecovery: rc, Logger: testLogger(t)})
		ts := httptest.NewServer(srv)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Close(ctx)
			ts.Close()
		})
		return srv, ts.URL
	}
	A, urlA := node(&server.RecoveryConfig{})
	B, urlB := node(nil) // Node-like: no recovery, so offsets would show
	A.OnConnection(func(s *server.Socket) {
		if !s.Recovered() {
			_ = s.Join("r1")
		}
		_ = s.Emit("live")
	})

	drv := testkit.NewNodeClientDriver(t)
	c, err := drv.Connect(tctx(t), testkit.ConnectOptions{URL: urlA, Transports: []string{"websocket"}, Reconnection: true,
		Extra: map[string]any{"reconnectionDelay": 300, "reconnectionDelayMax": 300, "randomizationFactor": 0}})
	testkit.NoError(t, err)
	id, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	_, err = c.Next(tctx(t), "live") // the client has an offset
	testkit.NoError(t, err)
	b := connectTo(t, drv, &testNode{url: urlB}, "/")

	// A broadcast from A reaches B's client without an offset.
	testkit.NoError(t, A.Emit("fromA", 1))
	testkit.Equal(t, next(t, b, "fromA"), []any{float64(1)})

	testkit.NoError(t, c.CloseTransport(tctx(t)))
	_, err = c.WaitDisconnect(tctx(t))
	testkit.NoError(t, err)
	eventually(t, "A has no socket left", func() bool { return len(A.Of("/").Sockets()) == 0 })
	testkit.NoError(t, B.To("r1").Emit("m1", "x"))
	testkit.NoError(t, B.Emit("m2"))

	sid, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, sid, id)
	evs, err := c.Until(tctx(t), "live")
	testkit.NoError(t, err)
	var got []string
	for _, e := range evs {
		got = append(got, e.Name)
	}
	// fromA may have arrived before the transport closed; m1 and m2 came
	// from B through Redis while the client was away.
	s := strings.Join(got, ",")
	if s != "m1,m2,live" && s != "fromA,m1,m2,live" {
		t.Fatalf("after recovery: %s", s)
	}
	info, err := c.Info(tctx(t))
	testkit.NoError(t, err)
	testkit.True(t, info.Recovered)
}
