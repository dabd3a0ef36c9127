package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// loadResult is the part of the load tool's JSON output that the smoke test checks.
type loadResult struct {
	Scenario     string                       `json:"scenario"`
	Connected    int                          `json:"connected"`
	Clients      int                          `json:"clients"`
	Disconnected int                          `json:"disconnected"`
	ServerCPU    float64                      `json:"server_cpu_s"`
	Count        int                          `json:"count"`
	Expected     int64                        `json:"expected"`
	Deliveries   int64                        `json:"deliveries"`
	Lost         int64                        `json:"lost"`
	Extra        int64                        `json:"extra"`
	Disorder     int64                        `json:"disorder"`
	BadFrames    int64                        `json:"bad_frames"`
	Latency      *loadQuantiles               `json:"latency_ms"`
	Acks         int64                        `json:"acks"`
	RTT          *loadQuantiles               `json:"rtt_ms"`
	Calls        int                          `json:"calls"`
	Errors       int                          `json:"errors"`
	Responses    int                          `json:"responses"`
	ServerMs     *loadQuantiles               `json:"server_ms"`
	PeakRSSKB    int64                        `json:"peak_rss_kb"`
	Nodes        []struct{ Pid, Clients int } `json:"nodes"`
}

// loadQuantiles are latencies in milliseconds.
type loadQuantiles struct{ P50, P99, Max float64 }

// buildLoadtest builds integration/loadtest, go build ./loadtest in this module's directory
// (with -race when this test binary has it).
func buildLoadtest(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "loadtest")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, "./loadtest")...)
	cmd.Dir = filepath.Join(testkit.RepoRoot(t), testkit.IntegrationDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./loadtest (in %s): %v\n%s", cmd.Dir, err, out)
	}
	return bin
}

// TestLoadtest runs every scenario of the load tool, briefly and with few clients, against
// the Go testapp, and checks that the numbers it reports are consistent. It asserts nothing
// about speed.
func TestLoadtest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the load tool")
	}
	tool := buildLoadtest(t)
	t.Run("refuses remote targets", func(t *testing.T) {
		for _, target := range []string{"http://10.1.2.3:3000", "http://localhost:3000", "https://127.0.0.1:3000"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := exec.CommandContext(ctx, tool, "-targets", target, "-clients", "1").CombinedOutput()
			cancel()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "-targets") {
				t.Fatalf("%s: want exit status 2 and a -targets error, got %v: %s", target, err, out)
			}
		}
	})
	t.Run("smoke", func(t *testing.T) { loadtestSmoke(t, tool) })
}

func loadtestSmoke(t *testing.T, tool string) {
	app := testkit.BuildTestapp(t)
	srv := testkit.StartProcess(t, context.Background(), app, "-addr", "127.0.0.1:0")

	const clients = 50
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool,
		"-targets", srv.URL(), "-pids", strconv.Itoa(srv.Pid()),
		"-clients", strconv.Itoa(clients), "-scenario", "idle,paced,burst,echo,sse", "-duration", "1s",
		"-rate", "20", "-sse-count", "20", "-json", "-timeout", "80s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("loadtest output:\n%s", stderr.String())
	testkit.NoError(t, err, "loadtest")

	got := map[string]loadResult{}
	var order []string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r loadResult
		testkit.NoError(t, json.Unmarshal(sc.Bytes(), &r), "JSON line %q", sc.Text())
		got[r.Scenario] = r
		order = append(order, r.Scenario)
	}
	testkit.Equal(t, order, []string{"connect", "idle", "paced", "burst", "echo", "sse"})

	c := got["connect"]
	testkit.Equal(t, c.Connected, clients, "connected")
	for _, name := range order[1:] {
		r := got[name]
		testkit.Equal(t, r.Clients, clients, "%s: clients", name)
		testkit.Equal(t, r.Disconnected, 0, "%s: disconnected", name)
		testkit.True(t, r.ServerCPU >= 0, "%s: server CPU %v", name, r.ServerCPU)
		testkit.Equal(t, len(r.Nodes), 1, "%s: nodes", name)
		testkit.Equal(t, r.Nodes[0].Pid, srv.Pid(), "%s: pid", name)
	}
	testkit.Equal(t, got["idle"].Nodes[0].Clients, clients, "idle: clients on the node")

	for _, name := range []string{"paced", "burst"} {
		r := got[name]
		testkit.True(t, r.Count > 0, "%s: count %d", name, r.Count)
		testkit.Equal(t, r.Expected, int64(r.Count)*clients, "%s: expected", name)
		testkit.Equal(t, r.Deliveries, r.Expected, "%s: deliveries", name)
		testkit.Equal(t, r.Lost+r.Extra+r.Disorder+r.BadFrames, int64(0), "%s: lost, extra, out of order, bad", name)
		testkit.True(t, r.Latency != nil && r.Latency.P50 <= r.Latency.P99 && r.Latency.P99 <= r.Latency.Max,
			"%s: latency quantiles %+v", name, r.Latency)
	}
	testkit.Equal(t, got["paced"].Count, 20, "paced: rate × duration")
	testkit.True(t, got["burst"].PeakRSSKB > 0, "burst: peak RSS")

	e := got["echo"]
	testkit.True(t, e.Acks > 0, "echo: acks")
	testkit.True(t, e.RTT != nil && e.RTT.P50 <= e.RTT.P99 && e.RTT.P99 <= e.RTT.Max, "echo: rtt %+v", e.RTT)

	s := got["sse"]
	testkit.True(t, s.Calls > 0 && s.Calls <= 20, "sse: calls %d", s.Calls)
	testkit.Equal(t, s.Errors, 0, "sse: errors")
	testkit.Equal(t, s.Responses, 0, "sse: a node alone has no peer to answer")
	testkit.True(t, s.ServerMs != nil, "sse: server round trip")

	testkit.True(t, strings.Contains(stderr.String(), "summary:"), "the summary table is printed")
}
