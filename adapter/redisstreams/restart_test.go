package redisstreams

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// TestRedisRestart: Redis restarts (empty: no persistence) while a node
// broadcasts; the other node's reader, failing meanwhile, goes on from the
// last entry it read, so its client gets every broadcast that reached the
// stream, those written while the reader was still waiting to reconnect
// included (reading from "$" again would skip them).
func TestRedisRestart(t *testing.T) {
	rs := testkit.StartRedisServer(t)
	opts := testOptions()
	opts.BlockTime = 200 * time.Millisecond
	A := startNode(t, redisClient(t, rs.URL()), opts, "A")
	B := startNode(t, redisClient(t, rs.URL()), opts, "B")
	drv := testkit.NewNodeClientDriver(t)
	a := connect(t, drv, A.ts.URL)

	testkit.NoError(t, B.srv.Emit("before"))
	_, err := a.Next(testkit.Ctx(t), "before")
	testkit.NoError(t, err)

	rs.Stop()
	testkit.NoError(t, B.srv.Emit("while-down")) // queued, then dropped: Redis is away
	time.Sleep(300 * time.Millisecond)           // A's reader fails and backs off
	rs.Start()
	for i := range 40 {
		testkit.NoError(t, B.srv.Emit(fmt.Sprintf("after-%d", i)))
		time.Sleep(25 * time.Millisecond)
	}

	// Every broadcast the stream holds now reaches a, in order.
	raw := redisClient(t, rs.URL())
	var added []string
	testkit.Eventually(t, "B writing again", func() bool {
		entries, err := raw.XRange(context.Background(), opts.StreamName, "-", "+").Result()
		if err != nil {
			return false
		}
		added = added[:0]
		for _, e := range entries {
			var d struct {
				Packet struct {
					Data []json.RawMessage `json:"data"`
				} `json:"packet"`
			}
			s, _ := e.Values["data"].(string)
			if json.Unmarshal([]byte(s), &d) == nil && len(d.Packet.Data) > 0 {
				var name string
				_ = json.Unmarshal(d.Packet.Data[0], &name)
				added = append(added, name)
			}
		}
		return len(added) > 0 && added[len(added)-1] == "after-39"
	})
	testkit.True(t, len(added) >= 10, "only %d broadcasts reached the restarted Redis: %v", len(added), added)
	for _, name := range added {
		_, err := a.Next(testkit.Ctx(t), name)
		testkit.NoError(t, err, "a missed %s (the stream holds %v)", name, added)
	}
}
