package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// compareLine is one JSON line of loadtest -compare -json: a phase result or a table row.
type compareLine struct {
	Type      string   `json:"type"`
	Impl      string   `json:"impl"`
	Requested int      `json:"clients_requested"`
	Row       string   `json:"row"`
	Phase     string   `json:"phase"`
	Better    string   `json:"better"`
	Ioswarm   float64  `json:"ioswarm"`
	Node      float64  `json:"node"`
	Ratio     float64  `json:"ratio"`
	Notes     []string `json:"notes"`
	loadResult
}

// compareRows are the rows the -compare table must have, in order.
var compareRows = []string{
	"connect: server CPU per 1,000 connections",
	"memory per idle connection",
	"client broadcast, paced: deliveries per server CPU-s",
	"client broadcast, paced: latency p99",
	"client broadcast, burst: deliveries per server CPU-s",
	"client broadcast, burst: deliveries per second",
	"server-side publish, paced: deliveries per server CPU-s",
	"server-side publish, paced: latency p99",
	"server-side publish, burst: deliveries per server CPU-s",
	"server-side publish, burst: deliveries per second",
	"peak memory of the nodes, after the bursts",
	"echo, 64 in flight: acks per server CPU-s",
	"echo, 64 in flight: round trip p50",
	"echo, 64 in flight: round trip p99",
	"serverSideEmit round trip p99 (measured by the server)",
}

// TestLoadtestCompare runs loadtest -compare at a tiny size (50 clients, 1 s phases): it
// starts Redis and a 2-node cluster of each implementation itself. The test checks that
// every phase ran on both sides without losing anything and that the table has every row
// with values that make sense; it asserts nothing about which implementation is faster.
func TestLoadtestCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the load tool against two clusters")
	}
	testkit.RequireNode(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("redis-server is not installed: %v", err)
	}
	dir := filepath.Join(testkit.RepoRoot(t), testkit.IntegrationDir, "node")
	for _, pkg := range []string{"socket.io", "@socket.io/redis-adapter", "redis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			t.Skipf("integration/node/node_modules/%s is missing (npm ci in %s): %v", pkg, dir, err)
		}
	}
	tool := buildLoadtest(t)
	app := testkit.BuildTestapp(t)

	const clients = 50
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "-compare", "-testapp", app,
		"-clients", "50", "-duration", "1s", "-deliveries-rate", "5000", "-burst-deliveries", "10000",
		"-sse-count", "20", "-json", "-timeout", "50s")
	cmd.Dir = filepath.Join(testkit.RepoRoot(t), testkit.IntegrationDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("loadtest -compare (%v):\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	testkit.NoError(t, err, "loadtest -compare")

	results := map[string]map[string]compareLine{"ioswarm": {}, "node": {}}
	var rows []compareLine
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l compareLine
		testkit.NoError(t, json.Unmarshal(sc.Bytes(), &l), "JSON line %q", sc.Text())
		testkit.Equal(t, l.Requested, clients, "clients_requested of %q", sc.Text())
		switch l.Type {
		case "result":
			results[l.Impl][l.Scenario] = l
		case "row":
			rows = append(rows, l)
		default:
			t.Fatalf("unexpected line %q", sc.Text())
		}
	}

	phases := []string{"connect", "idle", "bcast", "bcast-burst", "paced", "burst", "echo-inflight", "sse"}
	for _, impl := range []string{"ioswarm", "node"} {
		for _, p := range phases {
			r, ok := results[impl][p]
			testkit.True(t, ok, "%s: no %s result", impl, p)
			testkit.Equal(t, r.Clients, clients, "%s %s: clients", impl, p)
			testkit.Equal(t, r.Disconnected, 0, "%s %s: disconnected", impl, p)
			testkit.Equal(t, len(r.Nodes), 2, "%s %s: both nodes measured", impl, p)
		}
		for _, p := range []string{"bcast", "bcast-burst", "paced", "burst"} {
			r := results[impl][p]
			testkit.True(t, r.Count > 0, "%s %s: count", impl, p)
			testkit.Equal(t, r.Expected, int64(r.Count)*clients, "%s %s: expected", impl, p)
			testkit.Equal(t, r.Deliveries, r.Expected, "%s %s: every message delivered", impl, p)
			testkit.Equal(t, r.Lost+r.Extra+r.Disorder+r.BadFrames, int64(0), "%s %s: lost, extra, out of order, bad", impl, p)
		}
		// -deliveries-rate 5000 over 50 clients: 100 msg/s for 1 s; 10,000 deliveries in a burst.
		testkit.Equal(t, results[impl]["bcast"].Count, 100, "%s bcast: count", impl)
		testkit.Equal(t, results[impl]["paced"].Count, 100, "%s paced: count", impl)
		testkit.Equal(t, results[impl]["bcast-burst"].Count, 200, "%s bcast-burst: count", impl)
		testkit.Equal(t, results[impl]["burst"].Count, 200, "%s burst: count", impl)
		testkit.True(t, results[impl]["echo-inflight"].Acks > 0, "%s echo-inflight: acks", impl)
		s := results[impl]["sse"]
		testkit.True(t, s.Calls > 0 && s.Errors == 0 && s.Responses == 1, "%s sse: %d calls, %d errors, %d responses (want 1, the other node)", impl, s.Calls, s.Errors, s.Responses)
	}

	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Row
		if r.Row == "memory per idle connection" {
			// RSS growth over 50 connections is small and noisy; it is measured, not judged.
			testkit.True(t, r.Ioswarm != 0 && r.Node != 0, "%s: %v, %v", r.Row, r.Ioswarm, r.Node)
			continue
		}
		testkit.True(t, r.Ioswarm > 0 && r.Node > 0 && !math.IsInf(r.Ioswarm, 0) && !math.IsInf(r.Node, 0),
			"%s: ioswarm %v, node %v", r.Row, r.Ioswarm, r.Node)
		want := r.Ioswarm / r.Node
		if r.Better == "lower" {
			want = r.Node / r.Ioswarm
		}
		testkit.True(t, math.Abs(r.Ratio-want) < 1e-9*want, "%s: ratio %v, want %v (%s is better)", r.Row, r.Ratio, want, r.Better)
		for _, n := range r.Notes {
			testkit.True(t, !strings.Contains(n, "lost") && !strings.Contains(n, "disconnected"), "%s: %s", r.Row, n)
		}
	}
	testkit.Equal(t, names, compareRows, "table rows")
	testkit.True(t, strings.Contains(stderr.String(), "×: how many times better ioswarm is"), "the table is printed")
}
