package integration

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/redis"
	"github.com/ioswarm/ioswarm/integration/internal/redistest"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// TestEmitterMixedCluster: what the Go emitter (redis.Emitter) sends reaches the clients of a
// Node.js node and of a Go node alike: a broadcast to a room, binary included, and a
// disconnection.
func TestEmitterMixedCluster(t *testing.T) {
	testkit.RequireNode(t)
	redisURL := redistest.StartRedis(t)
	key := fmt.Sprintf("ioswarm-emitter-%d", os.Getpid())
	js := startJS(t, "-redis", redisURL, "-node", "n1", "-key", key)
	gn := startGo(t, "-redis", redisURL, "-node", "n2", "-key", key)
	drv := testkit.NewNodeClientDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var clients []*testkit.Client
	for _, url := range []string{js.URL(), gn.URL()} {
		c, err := drv.Connect(ctx, testkit.ConnectOptions{URL: url, Transports: []string{"websocket"}})
		testkit.NoError(t, err)
		_, err = c.WaitConnect(ctx)
		testkit.NoError(t, err)
		_, err = c.EmitWithAck(ctx, "join", "r1")
		testkit.NoError(t, err)
		clients = append(clients, c)
	}
	opts, err := goredis.ParseURL(redisURL)
	testkit.NoError(t, err)
	rc := goredis.NewClient(opts)
	defer rc.Close()
	e := redis.NewEmitter(rc, redis.EmitterOptions{Key: key})
	testkit.NoError(t, e.To("r1").Emit(ctx, "news", "hello", []byte{7, 8}))
	for i, c := range clients {
		args, err := c.Next(ctx, "news")
		testkit.NoError(t, err)
		testkit.Equal(t, args[0], "hello", "client %d", i)
		b, ok := args[1].([]byte)
		testkit.True(t, ok && len(b) == 2 && b[0] == 7 && b[1] == 8, "client %d: binary argument %#v", i, args[1])
	}
	testkit.NoError(t, e.In("r1").DisconnectSockets(ctx, false))
	for i, c := range clients {
		reason, err := c.WaitDisconnect(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, reason, "io server disconnect", "client %d", i)
	}
}
