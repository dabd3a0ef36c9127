package redis

import (
	"context"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestCleanupEmptyChildNamespacesRedis: a server with
// CleanupEmptyChildNamespaces serves a dynamic namespace over a Redis
// adapter; clients of the project's Go client visit many of its names one
// after another. Redis itself shows that the node subscribes to a child's
// channels while it has sockets and that its subscriptions do not grow
// with the names visited: once the clients left they are those of the
// main namespace again (PUBSUB NUMPAT and PUBSUB CHANNELS, or PUBSUB
// SHARDCHANNELS for the sharded adapter), and the parent has no child
// left. A name visited again is served again. Not parallel, for the
// goroutine check; each adapter on a Redis of its own, for NUMPAT.
func TestCleanupEmptyChildNamespacesRedis(t *testing.T) {
	for _, tc := range []struct {
		name string
		// factory returns the adapter Factory of a node using key.
		factory func(t *testing.T, client *goredis.Client, key string) adapter.Factory
		// channels lists the channels of key the node subscribed to.
		channels func(ctx context.Context, c *goredis.Client, key string) ([]string, error)
		// child is a channel the node subscribes to for the child nsp.
		child func(key, nsp string) string
	}{
		{
			name: "classic",
			factory: func(t *testing.T, client *goredis.Client, key string) adapter.Factory {
				return New(client, Options{Key: key, Logger: testLogger(t)})
			},
			channels: func(ctx context.Context, c *goredis.Client, key string) ([]string, error) {
				return c.PubSubChannels(ctx, key+"*").Result()
			},
			child: func(key, nsp string) string { return key + "-request#" + nsp + "#" },
		},
		{
			name: "sharded",
			factory: func(t *testing.T, client *goredis.Client, key string) adapter.Factory {
				return NewSharded(client, ShardedOptions{Key: key, Logger: testLogger(t)})
			},
			channels: func(ctx context.Context, c *goredis.Client, key string) ([]string, error) {
				return c.PubSubShardChannels(ctx, key+"*").Result()
			},
			child: func(key, nsp string) string { return key + "#" + nsp + "#" },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			rs := testkit.StartRedisServer(t)
			rc := newClient(t, rs.URL())
			key := uniqueKey(t)
			srv := server.New(server.Config{
				Adapter:                     tc.factory(t, newClient(t, rs.URL()), key),
				CleanupEmptyChildNamespaces: true,
				Logger:                      testLogger(t),
			})
			dyn := srv.OfRegexp(regexp.MustCompile(`^/d-\d+$`))
			dyn.On("who", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(s.Namespace().Name()) })
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			t.Cleanup(func() { testkit.NoError(t, srv.Close(testkit.Ctx(t))) })

			ctx := testkit.Ctx(t)
			state := func() (patterns int64, channels []string) {
				t.Helper()
				patterns, err := rc.PubSubNumPat(ctx).Result()
				testkit.NoError(t, err)
				channels, err = tc.channels(ctx, rc, key)
				testkit.NoError(t, err)
				slices.Sort(channels)
				return patterns, channels
			}
			basePatterns, baseChannels := state() // the main namespace's
			testkit.True(t, len(baseChannels) > 0, "the main namespace subscribed to nothing")

			visit := func(i int) (patterns int64, channels []string) {
				t.Helper()
				nsp := "/d-" + strconv.Itoa(i)
				off := false
				s, err := client.NewSocket(ts.URL+nsp, client.Options{Transports: []string{"websocket"}, Reconnection: &off})
				testkit.NoError(t, err)
				defer s.Close()
				testkit.NoError(t, s.Connect(ctx))
				res, err := s.EmitWithAck(ctx, "who")
				testkit.NoError(t, err)
				var name string
				testkit.NoError(t, res.Decode(0, &name))
				testkit.Equal(t, name, nsp)
				// Connected: the child's adapter subscribed before the
				// namespace accepted the socket.
				patterns, channels = state()
				testkit.True(t, slices.Contains(channels, tc.child(key, nsp)), "%s: %s not subscribed: %v", nsp, tc.child(key, nsp), channels)
				return patterns, channels
			}

			const visits = 200
			maxPatterns, maxChannels := basePatterns, len(baseChannels)
			for i := range visits {
				patterns, channels := visit(i)
				maxPatterns = max(maxPatterns, patterns)
				maxChannels = max(maxChannels, len(channels))
			}
			t.Logf("%d names visited: at most %d patterns and %d channels (main namespace alone: %d and %d)",
				visits, maxPatterns, maxChannels, basePatterns, len(baseChannels))
			testkit.Equal(t, maxPatterns, basePatterns, "patterns grew with the namespaces")
			// The child being visited, and the few the server is still
			// removing (its sockets leave after the client closed).
			testkit.True(t, maxChannels <= 10*len(baseChannels), "channels grew with the names visited: up to %d", maxChannels)

			// Once every client left: no child, and the subscriptions of
			// the main namespace only.
			settled := func() bool {
				patterns, channels := state()
				return len(dyn.Children()) == 0 && patterns == basePatterns && slices.Equal(channels, baseChannels)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !settled() && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			patterns, channels := state()
			testkit.Equal(t, len(dyn.Children()), 0, "children left")
			testkit.Equal(t, patterns, basePatterns, "patterns left")
			testkit.Equal(t, channels, baseChannels, "channels left")
			for _, ch := range channels {
				testkit.True(t, !strings.Contains(ch, "/d-"), "a child's channel is left: %s", ch)
			}

			// A name visited again is created and subscribed again, and
			// removed again.
			visit(7)
			for !settled() && time.Now().Before(deadline.Add(10*time.Second)) {
				time.Sleep(20 * time.Millisecond)
			}
			testkit.True(t, settled(), "after a second visit: children %d, state %v", len(dyn.Children()), func() []string { _, c := state(); return c }())
		})
	}
}
