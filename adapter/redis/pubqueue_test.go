package redis

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// countingSocket counts the broadcasts delivered to it.
type countingSocket struct {
	*fakeSocket
	n atomic.Int64
}

func (s *countingSocket) Deliver(*adapter.Packet, adapter.Flags, adapter.AckFunc) { s.n.Add(1) }

// TestPublishQueuePacesBroadcasts: a burst of broadcasts emitted on one node
// far larger than its publish queue. Unpaced, the queue's bounds refuse
// what does not fit (ErrQueueFull, in messages and in bytes); paced (as the
// server's emits are), the sender waits for the publisher and the other
// node receives every broadcast.
func TestPublishQueuePacesBroadcasts(t *testing.T) {
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	const burst = 3000
	payload := []byte(`["m","0123456789012345678901234567890123456789"]`)

	for _, tc := range []struct {
		name  string
		paced bool
		opts  Options
	}{
		{"unpaced-count", false, Options{Key: key + "c", MaxPendingPublishes: 16}},
		{"unpaced-bytes", false, Options{Key: key + "b", MaxPendingPublishBytes: 2048}},
		{"paced", true, Options{Key: key + "p", MaxPendingPublishes: 16, MaxPendingPublishBytes: 2048}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fa := newTestFactory(t, url, tc.opts)
			fb := newTestFactory(t, url, Options{Key: tc.opts.Key})
			a, _ := newTestAdapter(t, fa, "/")
			b, _ := newTestAdapter(t, fb, "/")
			sock := &countingSocket{fakeSocket: newFakeSocket("s1")}
			b.AddAll(sock, []string{sock.id})

			var full int
			for i := 0; i < burst; i++ {
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
				t.Logf("%s: %d of %d refused", tc.name, full, burst)
				testkit.True(t, full > 0, "the queue's bound refused nothing")
				return
			}
			testkit.Equal(t, full, 0, "paced broadcasts refused")
			deadline := time.Now().Add(10 * time.Second)
			for sock.n.Load() < burst && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			testkit.Equal(t, sock.n.Load(), int64(burst), "broadcasts received by the other node")
		})
	}
}
