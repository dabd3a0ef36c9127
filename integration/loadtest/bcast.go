package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Client broadcasts: the bcast and bcast-burst scenarios. A few clients (one
// per node, so that every node both receives broadcasts from its clients and
// relays them from the other nodes) emit `bcast` (room, payload) without an
// ack; the server broadcasts the payload to the room as "msg", the senders
// included. Nothing paces the senders but the schedule and the server: a
// server that stops reading a sender slows its writes down (TCP), and that
// time is part of the measurement.

// senders returns the first live client of each node.
func (r *runner) senders() []*client {
	seen := make([]bool, len(r.cfg.targets))
	var out []*client
	for _, c := range r.clients {
		if c.alive() && c.node < len(seen) && !seen[c.node] {
			seen[c.node] = true
			out = append(out, c)
		}
	}
	return out
}

// bcast is the sender of the client broadcast scenarios: message i goes
// through sender i mod len(senders), due i / rate seconds after the start
// (rate 0: at once). A sender behind schedule sends without waiting; one whose
// write fails stops, and its remaining messages count as lost.
func (r *runner) bcast(ctx context.Context, count int, rate float64, budget time.Duration) (float64, []string) {
	senders := r.senders()
	if len(senders) == 0 {
		return 0, []string{"no client left"}
	}
	roomJSON, _ := json.Marshal(r.cfg.room)
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		notes []string
	)
	for k, c := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < count; i += len(senders) {
				if rate > 0 {
					due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						_ = sleep(ctx, d)
					}
				}
				if ctx.Err() != nil {
					mu.Lock()
					notes = append(notes, fmt.Sprintf("sender %d: stopped at message %d of %d: %v", k, i, count, context.Cause(ctx)))
					mu.Unlock()
					return
				}
				if err := c.sendBcast(roomJSON, k, i); err != nil {
					mu.Lock()
					notes = append(notes, fmt.Sprintf("sender %d: message %d of %d: %v", k, i, count, err))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(time.Since(start).Microseconds()) / 1000, notes
}
