package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// quietPeriod ends a broadcast's drain when no delivery came for that long
	// after the publish ack.
	quietPeriod = 2 * time.Second
	// pollInterval is how often a drain sums the clients' counters.
	pollInterval = 50 * time.Millisecond
	// echoDrain bounds the wait for outstanding echo acks after the loop stops.
	echoDrain = 5 * time.Second
	// callTimeout bounds one sse call (the server's own timeout is 5 s).
	callTimeout = 10 * time.Second
	// settleQuiet and settleLimit: before a scenario, wait until deliveries
	// stopped for settleQuiet, at most settleLimit.
	settleQuiet = 500 * time.Millisecond
	settleLimit = 15 * time.Second
	// slowestDeliveries (per second) sizes the time bounds of a broadcast:
	// a server slower than that is reported as such rather than waited for.
	slowestDeliveries = 10_000
)

// scenarioOrder is the order in which scenarios run.
var scenarioOrder = []string{"idle", "bcast", "bcast-burst", "paced", "burst", "echo", "echo-inflight", "sse"}

// runner runs the scenarios on one set of connected clients.
type runner struct {
	cfg      *config
	hub      *hub
	clients  []*client
	procs    *procSet
	baseline []procSample // before any client connected
	// quiet: the last scenario ended with nothing left in flight (every
	// message delivered, every echo answered), so settle has nothing to wait
	// for.
	quiet bool
}

// window is a measurement window: wall clock and /proc samples at its start.
type window struct {
	start  time.Time
	before []procSample
	dead   int64
	deaths map[string]int
}

func (r *runner) begin() window {
	return window{start: time.Now(), before: r.procs.sample(), dead: r.hub.dead.Load(), deaths: r.hub.deathCounts()}
}

// end fills the common fields of res for the window w.
func (r *runner) end(w window, res *Result) {
	after := r.procs.sample()
	res.Seconds = time.Since(w.start).Seconds()
	res.ServerCPU, res.LoadCPU = r.procs.cpuSeconds(w.before, after)
	res.RedisCPU = r.procs.auxSeconds(w.before, after)
	res.Disconnected = r.hub.dead.Load() - w.dead
	perNode := r.clientsPerNode()
	for i, pid := range r.procs.pids {
		s := after[i]
		if s.err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("pid %d: %v", pid, s.err))
			continue
		}
		n := NodeStat{Pid: pid, RSSKB: s.rssKB, HWMKB: s.hwmKB}
		if w.before[i].err == nil && s.cpuTicks >= w.before[i].cpuTicks {
			n.CPU = float64(s.cpuTicks-w.before[i].cpuTicks) / r.procs.tck
		}
		if i < r.procs.nodes {
			n.Target = r.cfg.targets[i]
			n.Clients = perNode[i]
		}
		res.Nodes = append(res.Nodes, n)
	}
	if res.Disconnected > 0 {
		res.Notes = append(res.Notes, "connections ended: "+strings.Join(r.hub.deathsSince(w.deaths), "; "))
	}
}

// alive returns the clients whose connection still runs.
func (r *runner) alive() []*client {
	out := make([]*client, 0, len(r.clients))
	for _, c := range r.clients {
		if c.alive() {
			out = append(out, c)
		}
	}
	return out
}

// clientsPerNode counts the live clients of each target.
func (r *runner) clientsPerNode() []int {
	n := make([]int, len(r.cfg.targets))
	for _, c := range r.clients {
		if c.alive() {
			n[c.node]++
		}
	}
	return n
}

func (r *runner) delivered() int64 {
	var n int64
	for _, c := range r.clients {
		n += c.got.Load()
	}
	return n
}

func (r *runner) echoCounts() (sent, acked int64) {
	for _, c := range r.clients {
		if c.alive() {
			sent += c.echoSent.Load()
		} else {
			sent += c.echoAcked.Load() // a dead client's request will not be answered
		}
		acked += c.echoAcked.Load()
	}
	return sent, acked
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs one scenario, once the previous one's deliveries stopped.
func (r *runner) run(ctx context.Context, name string) *Result {
	busy := r.settle(ctx)
	r.quiet = false
	res := r.scenario(ctx, name)
	r.quiet = ctx.Err() == nil && res.Deliveries >= res.Expected && !res.pending
	if ctx.Err() != nil {
		res.Notes = append(res.Notes, "cut short by the global deadline (-timeout) or a signal: partial")
	}
	if busy > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("the previous scenario was still delivering %s msg/s after %v: its load overlapped this one", si(busy), settleLimit))
	}
	return res
}

// settle waits until no "msg" arrived for settleQuiet, at most settleLimit,
// and returns the delivery rate it still saw then (0 when it settled).
func (r *runner) settle(ctx context.Context) float64 {
	if r.quiet {
		return 0
	}
	start := time.Now()
	last, lastN := start, r.delivered()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case now := <-tick.C:
			if n := r.delivered(); n != lastN {
				last, lastN = now, n
			}
			if now.Sub(last) >= settleQuiet {
				return 0
			}
			if now.Sub(start) > settleLimit {
				before := lastN
				_ = sleep(ctx, time.Second)
				return float64(r.delivered() - before)
			}
		}
	}
}

func (r *runner) scenario(ctx context.Context, name string) *Result {
	switch name {
	case "idle":
		return r.idle(ctx)
	case "bcast":
		rate := r.pacedRate()
		res := r.measure(ctx, name, r.pacedCount(rate), rate, r.bcast)
		res.Senders = len(r.senders())
		return res
	case "bcast-burst":
		res := r.burst(ctx, name, r.bcast)
		res.Senders = len(r.senders())
		return res
	case "paced":
		rate := r.pacedRate()
		return r.broadcast(ctx, name, r.pacedCount(rate), rate)
	case "burst":
		return r.burst(ctx, name, r.publish)
	case "echo":
		alive := r.alive()
		return r.echo(ctx, name, alive, len(alive))
	case "echo-inflight":
		alive := r.alive()
		return r.echo(ctx, name, alive[:min(len(alive), r.cfg.inflight)], r.cfg.inflight)
	case "sse":
		return r.sse(ctx)
	}
	return &Result{Scenario: name, Notes: []string{"unknown scenario"}}
}

// idle waits a few seconds and reports the RSS growth per connection.
func (r *runner) idle(ctx context.Context) *Result {
	res := &Result{Scenario: "idle", Clients: len(r.alive())}
	w := r.begin()
	if err := sleep(ctx, min(r.cfg.duration, 3*time.Second)); err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	r.end(w, res)
	var grown int64
	var clients int
	for i := range res.Nodes {
		n := &res.Nodes[i]
		if n.Target == "" || r.baseline[i].err != nil {
			continue
		}
		d := n.RSSKB - r.baseline[i].rssKB
		if n.Clients > 0 {
			n.RSSPerConnKB = float64(d) / float64(n.Clients)
		}
		grown += d
		clients += n.Clients
	}
	if clients > 0 {
		res.RSSPerConnKB = float64(grown) / float64(clients)
	}
	return res
}

// publisher is the client that asks for publications: the first live one.
func (r *runner) publisher() *client {
	for _, c := range r.clients {
		if c.alive() {
			return c
		}
	}
	return nil
}

// pacedRate is the messages per second of the paced scenarios: -rate when
// given, else -deliveries-rate / clients, so that the total deliveries per
// second are the same whatever the number of clients.
func (r *runner) pacedRate() float64 {
	if r.cfg.rateSet {
		return r.cfg.rate
	}
	return r.cfg.deliveriesRate / float64(max(1, len(r.alive())))
}

// pacedCount is the number of messages of a paced scenario: rate × duration.
func (r *runner) pacedCount(rate float64) int {
	return max(1, int(rate*r.cfg.duration.Seconds()))
}

// sender sends the count messages of one broadcast, at rate per second (0: as
// fast as possible), within budget. It returns how long sending took (ms) and
// notes; what is not sent shows as lost.
type sender func(ctx context.Context, count int, rate float64, budget time.Duration) (ms float64, notes []string)

// budgets returns how long the sending of a broadcast may take, and how long
// its deliveries may go on after it. These are bounds on the run, not on the
// servers: a server slower than that is reported (messages still arriving,
// lost), never waited for without end. They allow three times the paced
// schedule (or three times -duration for a burst), and at least
// expected / slowestDeliveries seconds.
func (r *runner) budgets(count int, rate float64, expected int64) (send, drain time.Duration) {
	send = 3 * r.cfg.duration
	if rate > 0 {
		send = 3 * time.Duration(float64(count)/rate*float64(time.Second))
	}
	slow := time.Duration(float64(expected) / slowestDeliveries * float64(time.Second))
	return max(send, slow) + 30*time.Second, max(r.cfg.duration, 10*time.Second, slow)
}

// broadcast has one client publish count messages to the room at rate per
// second (0: as fast as possible), waits until every client got them or
// deliveries stop, and reports.
func (r *runner) broadcast(ctx context.Context, name string, count int, rate float64) *Result {
	return r.measure(ctx, name, count, rate, r.publish)
}

// publish is the sender of the server-side scenarios: one client asks the
// server to publish (the "publish" event), and the ack comes after the last
// emit.
func (r *runner) publish(ctx context.Context, count int, rate float64, budget time.Duration) (float64, []string) {
	pub := r.publisher()
	if pub == nil {
		return 0, []string{"no client left"}
	}
	roomJSON, _ := json.Marshal(r.cfg.room)
	spec := fmt.Appendf(nil, `{"room":%s,"count":%d,"rate":%g,"size":%d}`, roomJSON, count, rate, r.cfg.size)
	cctx, cancel := context.WithTimeout(ctx, budget)
	reply, err := pub.call(cctx, "publish", spec)
	cancel()
	if err != nil {
		return 0, []string{err.Error()}
	}
	ms, _ := floatField(reply, []byte(`"ms":`))
	if !bytes.Contains(reply, []byte(`"sent":`)) {
		return ms, []string{fmt.Sprintf("unexpected publish reply %.200s", reply)}
	}
	return ms, nil
}

// measure runs one broadcast of count messages at rate (0: a burst) with
// send, waits until every client got them or deliveries stop, and reports.
func (r *runner) measure(ctx context.Context, name string, count int, rate float64, send sender) *Result {
	res := &Result{Scenario: name, Count: count, Rate: rate}
	alive := r.alive()
	res.Clients = len(alive)
	if len(alive) == 0 {
		res.Notes = append(res.Notes, "no client left")
		return res
	}
	res.Expected = int64(count) * int64(len(alive))
	rec := newRecorder()
	r.hub.epoch.Add(1)
	r.hub.msgRec.Store(rec)
	defer r.hub.msgRec.Store(nil)

	sendBudget, limit := r.budgets(count, rate, res.Expected)
	before := r.delivered()
	w := r.begin()
	var notes []string
	res.PublishMs, notes = send(ctx, count, rate, sendBudget)
	res.Notes = append(res.Notes, notes...)
	if sched := float64(count) / rate * 1000; rate > 0 && res.PublishMs > 1.2*sched+100 {
		res.Notes = append(res.Notes, fmt.Sprintf("OVERLOADED: sending took %.1f s for a %.1f s schedule", res.PublishMs/1000, sched/1000))
	}
	last, arriving := r.drain(ctx, before, res.Expected, limit)
	r.end(w, res)
	res.pending = arriving
	if arriving {
		res.Notes = append(res.Notes, fmt.Sprintf("messages still arriving %v after the last was sent: lost counts late ones too", limit))
	}
	res.Stale = rec.stale.Load()

	res.Deliveries = r.delivered() - before
	if d := res.Deliveries - res.Expected; d > 0 {
		res.Extra = d
	} else {
		res.Lost = -d
	}
	_, res.Latency = rec.hist.summary()
	res.Disorder = rec.disorder.Load()
	res.BadFrames = rec.badFrame.Load()
	res.PerServerCPU = perCPU(float64(res.Deliveries), res.ServerCPU)
	if span := last.Sub(w.start).Seconds(); span > 0 {
		res.PerSecond = float64(res.Deliveries) / span
	}
	return res
}

// drain waits until the clients got want more deliveries than before, or none
// came for quietPeriod, or limit passed. It returns when the last delivery was
// seen (at pollInterval resolution), and whether deliveries were still coming
// when it gave up.
func (r *runner) drain(ctx context.Context, before, want int64, limit time.Duration) (time.Time, bool) {
	start := time.Now()
	last, lastN := start, r.delivered()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for lastN-before < want {
		select {
		case <-ctx.Done():
			return last, false
		case now := <-tick.C:
			if n := r.delivered(); n != lastN {
				last, lastN = now, n
			}
			if now.Sub(last) > quietPeriod {
				return last, false
			}
			if now.Sub(start) > limit {
				return last, true
			}
		}
	}
	return time.Now(), false
}

// burst sends as fast as possible -burst-deliveries / clients messages with
// send, uncapped. With -burst-deliveries 0 it calibrates instead with two
// small bursts (a server is often faster on longer ones), then sends a count
// that should take about -duration.
func (r *runner) burst(ctx context.Context, name string, send sender) *Result {
	n := max(1, len(r.alive()))
	var res *Result
	if r.cfg.burstDeliveries > 0 {
		res = r.measure(ctx, name, max(1, r.cfg.burstDeliveries/n), 0, send)
	} else {
		res = r.calibratedBurst(ctx, name, n, send)
	}
	for _, s := range res.Nodes {
		if s.Target != "" {
			res.PeakRSSKB += s.HWMKB
		}
	}
	return res
}

func (r *runner) calibratedBurst(ctx context.Context, name string, n int, send sender) *Result {
	sized := func(cal *Result, d time.Duration) int {
		count := 10
		if cal.PerSecond > 0 {
			count = int(cal.PerSecond * d.Seconds() / float64(n))
		}
		return max(count, 10)
	}
	calCount := min(max(50000/n, 5), 1000)
	cal := r.measure(ctx, name, calCount, 0, send)
	if ctx.Err() != nil {
		return cal
	}
	cal2Count := sized(cal, r.cfg.duration/5)
	cal2 := r.measure(ctx, name, cal2Count, 0, send)
	if ctx.Err() != nil {
		return cal2
	}
	res := r.measure(ctx, name, sized(cal2, r.cfg.duration), 0, send)
	res.Calibrate = calCount + cal2Count
	for _, c := range []*Result{cal, cal2} {
		if c.Lost > 0 || c.Disconnected > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("calibration burst of %d: lost %d, disconnected %d", c.Count, c.Lost, c.Disconnected))
		}
	}
	return res
}

// echo runs a closed loop of inflight echo requests for -duration, spread
// round-robin over the clients given: each answer sends the next request on
// the same client. The echo scenario has one per client, echo-inflight
// -inflight in all.
func (r *runner) echo(ctx context.Context, name string, clients []*client, inflight int) *Result {
	res := &Result{Scenario: name, Clients: len(r.alive()), Inflight: inflight}
	if len(clients) == 0 {
		res.Notes = append(res.Notes, "no client left")
		return res
	}
	rec := newRecorder()
	r.hub.echoRec.Store(rec)
	defer r.hub.echoRec.Store(nil)
	_, ackedBefore := r.echoCounts()
	w := r.begin()
	r.hub.echoOn.Store(true)
	for j := range inflight {
		_ = clients[j%len(clients)].sendEcho(echoAckID + uint64(j/len(clients)))
	}
	err := sleep(ctx, r.cfg.duration)
	r.hub.echoOn.Store(false)
	loopEnd := time.Now()
	_, ackedAtStop := r.echoCounts()
	if err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	// Wait for the requests still outstanding, so that their CPU is counted
	// with them.
	deadline := time.Now().Add(echoDrain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if sent, acked := r.echoCounts(); acked >= sent {
			break
		}
		_ = sleep(ctx, pollInterval)
	}
	r.end(w, res)
	sent, acked := r.echoCounts()
	res.pending = acked < sent
	if acked < sent {
		res.Notes = append(res.Notes, fmt.Sprintf("%d echo requests unanswered %v after the loop stopped", sent-acked, echoDrain))
	}
	res.Acks = ackedAtStop - ackedBefore
	res.PerSecond = float64(res.Acks) / loopEnd.Sub(w.start).Seconds()
	res.PerServerCPU = perCPU(float64(acked-ackedBefore), res.ServerCPU)
	_, res.RTT = rec.hist.summary()
	res.BadFrames = rec.badFrame.Load()
	return res
}

// sse has one client call sse repeatedly and reports the round trip the
// server measured.
func (r *runner) sse(ctx context.Context) *Result {
	res := &Result{Scenario: "sse", Clients: len(r.alive())}
	c := r.publisher()
	if c == nil {
		res.Notes = append(res.Notes, "no client left")
		return res
	}
	var server, rtt []float64
	w := r.begin()
	stop := time.Now().Add(r.cfg.duration)
	var lastErr error
	for i := 0; i < r.cfg.sseCount && time.Now().Before(stop) && ctx.Err() == nil; i++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		t0 := time.Now()
		reply, err := c.call(cctx, "sse", nil)
		cancel()
		res.Calls++
		if err != nil {
			res.Errors++
			lastErr = err
			if errors.Is(err, context.Canceled) || !c.alive() {
				break
			}
			continue
		}
		rtt = append(rtt, float64(time.Since(t0).Microseconds())/1000)
		if v, ok := floatField(reply, []byte(`"ms":`)); ok {
			server = append(server, v)
		}
		if !bytes.Contains(reply, []byte(`"err":null`)) {
			res.Errors++
			lastErr = fmt.Errorf("reply %.200s", reply)
		}
		res.Responses = bytes.Count(reply, []byte(`"pong"`))
	}
	r.end(w, res)
	if lastErr != nil {
		res.Notes = append(res.Notes, "last error: "+lastErr.Error())
	}
	res.ServerMs = quantilesOf(server)
	res.RTT = quantilesOf(rtt)
	return res
}
