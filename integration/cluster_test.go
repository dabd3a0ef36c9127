package integration

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/integration/internal/redistest"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The cluster rows of the contract, on clusters of three separate processes (n1, n2, n3) on
// one Redis (redistest.StartRedis: REDIS_ADDR, else a throw-away redis-server, else a Redis
// container where Docker runs; skipped when there is none), driven by the official
// socket.io-client:
//
//   - go: three Go testapp nodes, in the three transport modes;
//   - js: three Node.js reference nodes, in the three transport modes (IOSWARM_TARGET=js or
//     all), to check the scenarios against the reference;
//   - js+go+go and go+js+go: mixed clusters, WebSocket and polling, whenever the Go nodes run
//     (the default run included; skipped when node or the npm packages are missing). The
//     requests of most rows start on n1, so the requester is a JS node in one and a Go node
//     in the other; every row also makes requests from the other nodes.
//
// TestCluster starts one cluster per layout and runs every row (cluster_rows_test.go) in each
// transport mode on it: the modes in parallel, the rows of a mode one after the other, each
// row in dynamic namespaces of its own, so that rows do not see each other's sockets. The
// "static" row, which uses "/" and "/custom", runs in the first mode only. Rows that
// disconnect sockets hold the cluster's lifecycle lock, since last-disconnect is per node.
// The fault tests (cluster_faults_test.go: Redis restarted, a node hung, a node killed)
// start clusters of their own.

// clusterRequestsTimeout is the -requests-timeout of the nodes of TestCluster.
const clusterRequestsTimeout = 1500 * time.Millisecond

// clusterSize is the number of nodes of a test cluster.
const clusterSize = 3

// layout is the targets of the nodes n1, n2, n3 of a cluster and the transport modes of its
// clients.
type layout struct {
	nodes [clusterSize]target
	modes []mode
}

// name is the target name when every node runs the same one, else the targets joined by "+".
func (l layout) name() string {
	names := make([]string, clusterSize)
	same := true
	for i, tg := range l.nodes {
		names[i] = tg.name
		same = same && tg.name == l.nodes[0].name
	}
	if same {
		return names[0]
	}
	return strings.Join(names, "+")
}

// nodeName is the -node name of node i (from 0).
func nodeName(i int) string { return fmt.Sprintf("n%d", i+1) }

// clusterLayouts returns the clusters to run, after IOSWARM_TARGET: "go" (the default) gives
// the Go cluster and the mixed ones, "js" the JS cluster, "all" every one of them.
func clusterLayouts(t *testing.T) []layout {
	t.Helper()
	var js, gt target
	for _, tg := range allTargets {
		switch tg.name {
		case "js":
			js = tg
		case "go":
			gt = tg
		}
	}
	var goSel, jsSel bool
	for _, tg := range selectedTargets(t) {
		goSel = goSel || tg.name == "go"
		jsSel = jsSel || tg.name == "js"
	}
	mixedModes := modesNamed("websocket", "polling")
	var out []layout
	if goSel {
		out = append(out, layout{nodes: [clusterSize]target{gt, gt, gt}, modes: modes})
	}
	if jsSel {
		out = append(out, layout{nodes: [clusterSize]target{js, js, js}, modes: modes})
	}
	if goSel {
		out = append(out,
			layout{nodes: [clusterSize]target{js, gt, gt}, modes: mixedModes},
			layout{nodes: [clusterSize]target{gt, js, gt}, modes: mixedModes})
	}
	return out
}

// modesNamed returns the transport modes of those names.
func modesNamed(names ...string) []mode {
	var out []mode
	for _, n := range names {
		for _, m := range modes {
			if m.name == n {
				out = append(out, m)
			}
		}
	}
	return out
}

// ---------------------------------------------------------------- clusters

// cluster is three nodes on one Redis, and the client driver of their scenarios.
type cluster struct {
	layout  layout
	adapter string // testapp -adapter: redis, redis-sharded or redis-streams
	procs   [clusterSize]*testkit.Process
	drv     *testkit.NodeClientDriver

	// lifecycle is held by the rows that disconnect sockets or read last-disconnect.
	lifecycle sync.Mutex
}

// clusterKeys numbers the channel prefixes, so that clusters sharing a Redis (REDIS_ADDR)
// do not hear each other.
var clusterKeys atomic.Int64

// startCluster starts the nodes of l on the Redis at redisURL, one after the other, then a
// client driver (stopped first at cleanup, so the nodes see their clients leave).
func startCluster(t *testing.T, l layout, adapter, redisURL string, requestsTimeout time.Duration) *cluster {
	t.Helper()
	c := &cluster{layout: l, adapter: adapter}
	key := fmt.Sprintf("ioswarm-it-%d-%d", os.Getpid(), clusterKeys.Add(1))
	args := []string{"-redis", redisURL, "-key", key, "-requests-timeout", requestsTimeout.String(),
		"-adapter", adapter}
	for i, tg := range l.nodes {
		c.procs[i] = tg.start(t, append([]string{"-node", nodeName(i)}, args...)...)
	}
	c.drv = testkit.NewNodeClientDriver(t)
	return c
}

// stopNodes stops the nodes still running (SIGTERM); their cleanup reports a bad exit.
func (c *cluster) stopNodes() {
	for _, p := range c.procs {
		_ = p.Stop()
	}
}

// envs returns an environment per node for the clients of t in mode m.
func (c *cluster) envs(t *testing.T, m mode) [clusterSize]*env {
	var es [clusterSize]*env
	for i, p := range c.procs {
		es[i] = envOn(t, c.layout.nodes[i], m, p, c.drv, "-node", nodeName(i))
	}
	return es
}

// ---------------------------------------------------------------- rows

// row is one cluster row in one transport mode: an environment per node, and the
// namespaces its clients use.
type row struct {
	t  *testing.T
	c  *cluster
	e  [clusterSize]*env
	ns string // the row's namespace
	// ns2 is a second namespace, for what must not leak from one namespace to another.
	ns2 string
}

// clusterRow is a scenario run on each cluster in each transport mode.
type clusterRow struct {
	name string // [a-z0-9]+: also names its namespaces
	// static rows run on "/" and "/custom", in the first mode only.
	static bool
	fn     func(r *row)
}

// modeTag shortens a mode name for namespace names.
func modeTag(m mode) string {
	switch m.name {
	case "websocket":
		return "ws"
	case "polling":
		return "pl"
	}
	return "df"
}

// clusterAdapter reports whether the nodes run an adapter built on socket.io-adapter's
// ClusterAdapter: the sharded Pub/Sub one or the Redis Streams one, which share its behaviour
// (all-rooms is local, Node's requests wait a fixed 5 s, its timeout texts).
func (c *cluster) clusterAdapter() bool {
	return c.adapter == "redis-sharded" || c.adapter == "redis-streams"
}

// clusterAdapters returns the adapters the cluster tests run on: IOSWARM_ADAPTER (a
// comma-separated list of testapp -adapter values), else all three Redis adapters.
func clusterAdapters() []string {
	env := strings.TrimSpace(os.Getenv("IOSWARM_ADAPTER"))
	if env == "" {
		return []string{"redis", "redis-sharded", "redis-streams"}
	}
	var out []string
	for _, a := range strings.Split(env, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// allRooms checks the all-rooms of c, unless the nodes run the sharded adapter, whose
// all-rooms is local by design (Node's cluster adapter has no allRooms request), nor the
// streams adapter's.
func (r *row) allRooms(c *client, want list, msg ...any) {
	r.t.Helper()
	if r.c.clusterAdapter() {
		return
	}
	testkit.Equal(r.t, c.ack1("all-rooms"), want, msg...)
}

// js reports whether node i runs the reference.
func (r *row) js(i int) bool { return r.c.layout.nodes[i].name == "js" }

// on connects a client to node i, in the row's namespace unless opts say otherwise.
func (r *row) on(i int, opts ...opt) *client {
	r.t.Helper()
	return r.e[i].connect(append([]opt{nsp(r.ns)}, opts...)...)
}

// ctx is a context for one step.
func (r *row) ctx() context.Context { return r.e[0].ctx() }

// eventually retries cond for up to 5 s.
func (r *row) eventually(what string, cond func() (bool, any)) {
	r.t.Helper()
	r.e[0].eventually(what, cond)
}

// others returns the names of the nodes other than i, sorted.
func others(i int) []any {
	var out []string
	for j := 0; j < clusterSize; j++ {
		if j != i {
			out = append(out, nodeName(j))
		}
	}
	return strs(out...)
}

// TestCluster runs every cluster row on every selected cluster layout, in each of its
// transport modes, on each Redis adapter (clusterAdapters). On the classic adapter every
// layout runs in every mode; on the others, the Go-only cluster and a mixed one (Node.js node
// first), one mode each, which is what differs by adapter, at a third of the time.
func TestCluster(t *testing.T) {
	t.Parallel()
	for _, adapter := range clusterAdapters() {
		t.Run(adapter, func(t *testing.T) {
			t.Parallel()
			for _, l := range clusterLayouts(t) {
				ms := l.modes
				if adapter != "redis" {
					if n := l.name(); n != "go" && n != "js+go+go" {
						continue
					}
					ms = ms[:1]
				}
				t.Run(l.name(), func(t *testing.T) {
					t.Parallel()
					c := startCluster(t, l, adapter, redistest.StartRedis(t), clusterRequestsTimeout)
					for mi, m := range ms {
						t.Run(m.name, func(t *testing.T) {
							t.Parallel()
							for _, cr := range clusterRows {
								if cr.static && mi > 0 {
									continue
								}
								t.Run(cr.name, func(t *testing.T) {
									r := &row{t: t, c: c, e: c.envs(t, m)}
									if cr.static {
										r.ns, r.ns2 = "/", "/custom"
									} else {
										r.ns = "/dyn-" + cr.name + modeTag(m)
										r.ns2 = r.ns + "x"
									}
									cr.fn(r)
								})
							}
						})
					}
				})
			}
		})
	}
}

// ---------------------------------------------------------------- asynchronous acks

// pendingAck is an acknowledgement on its way, so that several requests that end at a
// timeout can wait together.
type pendingAck struct {
	c    *client
	what string
	done chan struct{}
	res  []any
	err  error
	took time.Duration
}

// ackLater emits with an acknowledgement in the background; wait returns the result.
func (c *client) ackLater(event string, args ...any) *pendingAck {
	p := &pendingAck{c: c, what: event, done: make(chan struct{})}
	ctx := c.e.ctx()
	start := time.Now()
	go func() {
		defer close(p.done)
		p.res, p.err = c.EmitWithAck(ctx, event, args...)
		p.took = time.Since(start)
	}()
	return p
}

// wait returns the single ack argument and how long the acknowledgement took.
func (p *pendingAck) wait() (any, time.Duration) {
	t := p.c.e.t
	t.Helper()
	<-p.done
	testkit.NoError(t, p.err, "%s: emit %q", p.c.Handle(), p.what)
	testkit.Equal(t, len(p.res), 1, "%s: number of ack arguments of %q: %v", p.c.Handle(), p.what, p.res)
	return p.res[0], p.took
}

// ackResult splits a {"err", "responses"} reply, the responses sorted.
func ackResult(t *testing.T, v any) (any, []any) {
	t.Helper()
	o := asObj(t, v)
	testkit.Equal(t, len(o), 2, "keys of %s", show(o))
	rs := asList(t, o["responses"])
	rs = append([]any(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return show(rs[i]) < show(rs[j]) })
	return o["err"], rs
}

// handles returns the handles of clients, sorted, as a JSON array.
func handles(cs ...*client) []any {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Handle()
	}
	return sorted(out...)
}
