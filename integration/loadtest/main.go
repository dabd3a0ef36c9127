// Command loadtest measures a Socket.IO v4 cluster that implements the test
// application contract (docs/testapp-contract.md, "Load-test events"):
// the Go testapp (integration/testapp) or the Node.js reference
// (integration/node/testapp.js), on one node or several behind Redis. Its
// numbers are those of the project's comparison table: deliveries per server
// CPU-second, memory per idle connection, broadcast latency, echo acks,
// serverSideEmit round trip. With -compare it starts both implementations
// itself and prints them side by side.
//
// # Usage
//
//	go run ./loadtest -targets http://127.0.0.1:3001,http://127.0.0.1:3002 \
//	    -pids 1234,1235,1236 -clients 1000 -scenario all -duration 10s -size 64 [-json]
//	go run ./loadtest -compare -clients 1000,10000 [-repeats 2] [-json]
//
// Flags:
//
//	-targets URLs      server nodes, comma-separated; only http://127.0.0.1:PORT (or ws://)
//	                   is accepted. Clients spread over them round-robin.
//	-pids PIDS         processes to measure (CPU from /proc/PID/stat, VmRSS and VmHWM from
//	                   /proc/PID/status): first one per target, in the same order, then
//	                   others such as redis-server, whose CPU is counted with the servers'.
//	-clients N         WebSocket clients (default 100); with -compare, a comma-separated
//	                   list: one round per value
//	-connect-rate R    new connections per second (default 500)
//	-scenario LIST     all, or a comma-separated list of idle, bcast, bcast-burst, paced,
//	                   burst, echo, echo-inflight, sse; they always run in that order. With
//	                   -compare, all is idle, bcast, bcast-burst, paced, burst,
//	                   echo-inflight, sse
//	-duration D        length of each scenario (default 10s)
//	-size S            payload padding in bytes (default 64)
//	-deliveries-rate R deliveries per second, in all, that the paced scenarios (bcast,
//	                   paced) aim at (default 50000): their rate is R / clients messages
//	                   per second, so that the load is the same at any number of clients
//	-rate R            messages per second of the paced scenarios, instead
//	-burst-deliveries N  deliveries of a burst (bcast-burst, burst): N / clients messages,
//	                   uncapped. Default 2000000 with -compare; otherwise 0, which sizes
//	                   bursts with two calibration bursts to last about -duration
//	-inflight N        echo requests outstanding at once, in all, in echo-inflight
//	                   (default 64)
//	-sse-count N       sse calls of the sse scenario (default 200)
//	-room NAME         the room every client joins (default "load")
//	-timeout D         global deadline; 0 computes one from the other flags
//	-json              print one JSON object per scenario on stdout; the human lines
//	                   and the summary table then go to stderr
//	-cpuprofile FILE   write the load tool's own CPU profile (go tool pprof)
//	-compare           start Redis and two clusters, ioswarm and Node.js, and compare
//	                   them (see "Compare mode"); no -targets or -pids
//	-testapp PATH      -compare: the Go testapp binary (default: go build ./testapp)
//	-node-app PATH     -compare: the Node.js testapp (default: node/testapp.js of the
//	                   integration module)
//	-repeats N         -compare: runs of each phase per implementation (default 1); the
//	                   table shows the median
//
// # Clients
//
// Each client is a raw Engine.IO v4 / Socket.IO v5-protocol WebSocket
// connection (no polling) to namespace "/" with one reading goroutine. It
// answers pings, finds the "t", "seq" and "from" fields of `42["msg",{...}]`
// frames with a byte scan, and records latencies in a sharded lock-free
// histogram, so that the load tool stays small next to the servers on shared
// cores. Clients connect at -connect-rate and each joins -room with an ack
// before the scenarios start. RLIMIT_NOFILE is raised to its hard limit; when
// the client count cannot be reached, the tool says so and measures the
// clients it has.
//
// # Scenarios
//
// They run in this order, on the same connections; each prints one line.
//
//   - idle: waits min(duration, 3 s) and reports (RSS now − RSS before the
//     clients connected) / clients, per node and overall.
//   - bcast (client broadcast, paced): one client per node (the senders)
//     emits `bcast` (room, {"t", "seq", "from", "pad"}) without an ack, in
//     turn, at the paced rate for -duration; the server broadcasts each to
//     the room, senders included. Every client measures now − t of each
//     "msg". Reports deliveries, deliveries per server CPU-second (the sum
//     over -pids during the scenario), latency p50/p99/max, lost messages
//     (count × clients expected) and messages whose seq did not increase
//     (per sender). A sender whose schedule slips (the server reads it
//     slowly) is reported OVERLOADED.
//   - bcast-burst (client broadcast, burst): the same with -burst-deliveries
//     / clients messages sent as fast as the server takes them: nothing paces
//     the senders but the server (TCP backpressure), and every message must
//     arrive. Also the sum of the nodes' VmHWM (peak RSS since they started).
//   - paced (server-side publish, paced): one client asks for publish
//     {"room", "count": rate × duration, "rate", "size"}; measured as bcast.
//   - burst (server-side publish, burst): publish at rate 0 (as fast as the
//     server can) of -burst-deliveries / clients messages (or calibrated, see
//     -burst-deliveries); measured as bcast-burst.
//   - echo: every client keeps one echo request with an ack outstanding for
//     -duration; reports acks per second, acks per server CPU-second and the
//     round trip p50/p99.
//   - echo-inflight: the same with -inflight requests outstanding in all (not
//     per client), spread round-robin over the first clients (so over the
//     nodes).
//   - sse: one client calls sse up to -sse-count times within -duration and
//     reports the serverSideEmit round trip the server measured (meaningful with
//     two nodes or more; alone, a node answers at once).
//
// # Output
//
// One line per scenario, then a table in the rows of the project's comparison
// table. With -json, stdout carries one JSON object per line: a "connect"
// object first (requested, connected, failures), then one per scenario (see
// Result). Latencies are in milliseconds, memory in kB, CPU in seconds.
//
// # Compare mode
//
// With -compare the tool starts redis-server (a free 127.0.0.1 port, no
// snapshots, no append-only file), builds the Go testapp once (go build ./testapp, or takes
// -testapp), and for each -clients value starts two fresh 2-node clusters on
// that Redis, each with its own -key: ioswarm (the Go testapp) and Node.js
// (node node/testapp.js), every node on a free 127.0.0.1 port. It connects the
// clients of each cluster (the connect phase: server CPU per connection), then
// runs each phase on ioswarm, then on Node, before the next phase (with
// -repeats 2 each phase runs twice per side, Node first the second time), so
// that both see the same machine. When RLIMIT_NOFILE cannot hold both sides'
// clients at once (10,000 each needs more than 20,256 descriptors), each side
// connects and runs all its phases alone, then closes its clients before the
// other side connects. A side's server CPU is its two nodes'; Redis
// is measured apart (redis_cpu_s, and a line above each table). Then it prints,
// per number of clients, a table: each row, the ioswarm value, the Node value
// and × — ioswarm/Node for rates, Node/ioswarm for CPU per connection, memory
// and latencies — so that × > 1 always means ioswarm is better. The notes
// column says what went wrong (lost messages, disconnections, an overloaded
// schedule). With -json, stdout carries one object per line: {"type":"result",
// "impl", "clients_requested", …Result} per phase and side, then
// {"type":"row", "clients_requested", "row", "phase", "unit", "better",
// "ioswarm", "node", "ratio", "notes"} per table row. Every process the tool
// started is stopped at the end, on SIGINT or SIGTERM, and at -timeout (and
// killed with the tool, Pdeathsig). The README's comparison comes from
//
//	cd integration && go run ./loadtest -compare -clients 1000,10000 -duration 10s
//
// # Example: a two-node cluster
//
//	redis-server --port 6390 --save '' --appendonly no & R=$!
//	cd integration    # a module of its own
//	go build -o /tmp/testapp ./testapp
//	/tmp/testapp -addr 127.0.0.1:3001 -redis redis://127.0.0.1:6390/0 & P1=$!
//	/tmp/testapp -addr 127.0.0.1:3002 -redis redis://127.0.0.1:6390/0 & P2=$!
//	go run ./loadtest -targets http://127.0.0.1:3001,http://127.0.0.1:3002 \
//	    -pids $P1,$P2,$R -clients 1000 -duration 5s
//
// The Node.js reference takes the same flags:
// node node/testapp.js -addr 127.0.0.1:3001 -redis redis://127.0.0.1:6390/0.
//
// # Limits
//
// Everything is bounded: each handshake (10 s), each write (10 s), each
// broadcast's sending and drain (three times its schedule, or for a burst
// three times -duration, and at least the time a server delivering 10,000
// messages a second would take, plus 30 s), and the whole run by -timeout
// (default: per round the connect time plus 30 s, plus 4 × duration + 45 s
// per scenario, plus that bound for each burst; with -compare, twice, plus a
// minute to start the clusters). Before each scenario the tool waits (at most
// 15 s) until the previous one's deliveries stopped, unless it ended with
// nothing in flight; messages stamped before a broadcast started are counted
// apart ("stale"). On the deadline or SIGINT the tool closes its clients,
// prints what it measured and exits with status 1. The exit status is 2 for
// bad flags, 1 when no client connected. The tool never asks the servers to
// stop a publication: an overloaded paced scenario (the servers fall behind
// its schedule) is reported as such, and the next scenario waits for it to
// end. Nothing is capped to suit a server: a burst's size depends only on
// -burst-deliveries and the number of clients.
//
// The numbers are only as good as the machine: the load tool shares the cores
// with the servers (its own CPU is reported as loadgen cpu), and CPU-second
// ratios are more stable than rates and latencies on a busy machine.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config holds the flags.
type config struct {
	targets     []string // http://127.0.0.1:PORT
	wsURLs      []string // ws://127.0.0.1:PORT/socket.io/?EIO=4&transport=websocket
	pids        []int
	clients     int
	connectRate float64
	// -clients as given: one value, or with -compare a list
	clientsList []int
	scenarios   []string
	duration    time.Duration
	size        int
	rate        float64
	rateSet     bool // -rate was given; else -deliveries-rate / clients
	sseCount    int

	deliveriesRate  float64 // paced scenarios: target deliveries per second
	burstDeliveries int     // bursts: count = burstDeliveries / clients; 0 calibrates
	inflight        int     // echo-inflight: echo requests outstanding in all

	compare    bool
	testapp    string // -compare: the Go testapp binary ("" builds it)
	nodeApp    string // -compare: integration/node/testapp.js
	repeats    int    // -compare: runs of each phase per implementation
	room       string
	timeout    time.Duration
	json       bool
	cpuProfile string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	targets := fs.String("targets", "", "server URLs, comma-separated (http://127.0.0.1:PORT only)")
	pids := fs.String("pids", "", "pids to measure: one per target in the same order, then others (redis-server)")
	cfg := &config{}
	clients := fs.String("clients", "100", "WebSocket clients (with -compare, a comma-separated list)")
	fs.Float64Var(&cfg.connectRate, "connect-rate", 500, "new connections per second")
	scen := fs.String("scenario", "all", "all, or a comma-separated list of "+strings.Join(scenarioOrder, ", "))
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each scenario")
	fs.IntVar(&cfg.size, "size", 64, "payload padding in bytes")
	fs.Float64Var(&cfg.rate, "rate", 0, "messages per second of the paced scenarios (default: -deliveries-rate / clients)")
	fs.Float64Var(&cfg.deliveriesRate, "deliveries-rate", 50000, "deliveries per second the paced scenarios aim at, in all")
	burstDeliveries := fs.Int("burst-deliveries", -1, "deliveries a burst aims at: count = this / clients (default 2000000 with -compare, else 0: calibrated)")
	fs.IntVar(&cfg.inflight, "inflight", 64, "echo requests outstanding at once in all, for echo-inflight")
	fs.BoolVar(&cfg.compare, "compare", false, "start Redis and two 2-node clusters (ioswarm, Node.js) and compare them")
	fs.StringVar(&cfg.testapp, "testapp", "", "-compare: the Go testapp binary (default: go build ./testapp)")
	fs.StringVar(&cfg.nodeApp, "node-app", "", "-compare: the Node.js testapp (default: node/testapp.js of the integration module)")
	fs.IntVar(&cfg.repeats, "repeats", 1, "-compare: runs of each phase per implementation, alternating which goes first")
	fs.IntVar(&cfg.sseCount, "sse-count", 200, "sse calls of the sse scenario")
	fs.StringVar(&cfg.room, "room", "load", "the room every client joins")
	fs.DurationVar(&cfg.timeout, "timeout", 0, "global deadline (0: computed)")
	fs.BoolVar(&cfg.json, "json", false, "one JSON object per scenario on stdout")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { cfg.rateSet = cfg.rateSet || f.Name == "rate" })
	for c := range strings.SplitSeq(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-clients: %q is not a number of clients (at least 1)", c)
		}
		cfg.clientsList = append(cfg.clientsList, n)
	}
	cfg.clients = cfg.clientsList[0]
	cfg.burstDeliveries = *burstDeliveries
	if cfg.burstDeliveries < 0 {
		cfg.burstDeliveries = 0
		if cfg.compare {
			cfg.burstDeliveries = 2_000_000
		}
	}
	switch {
	case cfg.compare && (*targets != "" || *pids != ""):
		return nil, errors.New("-compare starts its own servers: no -targets or -pids")
	case cfg.compare: // each side gets its own targets and pids
	case *targets == "":
		return nil, errors.New("-targets is required (or -compare)")
	case len(cfg.clientsList) > 1:
		return nil, errors.New("-clients: a list needs -compare")
	case cfg.testapp != "" || cfg.nodeApp != "" || cfg.repeats != 1:
		return nil, errors.New("-testapp, -node-app and -repeats need -compare")
	}
	for t := range strings.SplitSeq(*targets, ",") {
		if cfg.compare {
			break
		}
		httpURL, wsURL, err := parseTarget(strings.TrimSpace(t))
		if err != nil {
			return nil, err
		}
		cfg.targets = append(cfg.targets, httpURL)
		cfg.wsURLs = append(cfg.wsURLs, wsURL)
	}
	if *pids != "" {
		for p := range strings.SplitSeq(*pids, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("-pids: bad pid %q", p)
			}
			cfg.pids = append(cfg.pids, n)
		}
	}
	if *scen == "all" && cfg.compare {
		cfg.scenarios = comparePhases
	} else if *scen == "all" {
		cfg.scenarios = scenarioOrder
	} else {
		var chosen []string
		for s := range strings.SplitSeq(*scen, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(scenarioOrder, s) {
				return nil, fmt.Errorf("-scenario: unknown %q (want all or %s)", s, strings.Join(scenarioOrder, ", "))
			}
			chosen = append(chosen, s)
		}
		for _, s := range scenarioOrder { // always in the same order
			if slices.Contains(chosen, s) {
				cfg.scenarios = append(cfg.scenarios, s)
			}
		}
	}
	switch {
	case cfg.connectRate <= 0:
		return nil, errors.New("-connect-rate must be positive")
	case cfg.duration <= 0:
		return nil, errors.New("-duration must be positive")
	case cfg.size < 0 || cfg.size > 1<<19:
		return nil, errors.New("-size must be in [0, 524288]")
	case cfg.rateSet && cfg.rate <= 0:
		return nil, errors.New("-rate must be positive")
	case cfg.deliveriesRate <= 0:
		return nil, errors.New("-deliveries-rate must be positive")
	case cfg.inflight < 1:
		return nil, errors.New("-inflight must be at least 1")
	case cfg.repeats < 1:
		return nil, errors.New("-repeats must be at least 1")
	case cfg.sseCount < 1:
		return nil, errors.New("-sse-count must be at least 1")
	case cfg.timeout < 0:
		return nil, errors.New("-timeout must not be negative")
	}
	if cfg.timeout == 0 {
		cfg.timeout = defaultTimeout(cfg)
	}
	return cfg, nil
}

// defaultTimeout is the global deadline when -timeout is 0: for each number
// of clients (and, with -compare, each implementation and repeat), the connect
// time plus 30 s, plus 4 × duration + 45 s per scenario, plus for each burst
// the time a server delivering slowestDeliveries per second would take; with
// -compare also a minute to start each pair of clusters.
func defaultTimeout(cfg *config) time.Duration {
	var total time.Duration
	sides, repeats := 1, 1
	if cfg.compare {
		sides, repeats = 2, cfg.repeats
		total = time.Minute // Redis, building the testapp
	}
	for _, n := range cfg.clientsList {
		connect := time.Duration(float64(n)/cfg.connectRate*float64(time.Second)) + 30*time.Second
		phases := time.Duration(len(cfg.scenarios)) * (4*cfg.duration + 45*time.Second)
		for _, s := range cfg.scenarios {
			if strings.HasSuffix(s, "burst") {
				phases += 2 * time.Duration(float64(cfg.burstDeliveries)/slowestDeliveries*float64(time.Second))
			}
		}
		total += time.Duration(sides) * (connect + time.Duration(repeats)*phases)
		if cfg.compare {
			total += time.Minute
		}
	}
	return total
}

// parseTarget accepts http://127.0.0.1:PORT[/path/] or ws://…, and refuses
// every other host: the tool only loads servers on this machine's loopback.
func parseTarget(s string) (httpURL, wsURL string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("-targets: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "ws" {
		return "", "", fmt.Errorf("-targets: %q: scheme must be http or ws", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || port == "" {
		return "", "", fmt.Errorf("-targets: %q: want 127.0.0.1:PORT", s)
	}
	if host != "127.0.0.1" {
		return "", "", fmt.Errorf("-targets: %q: only 127.0.0.1 targets are allowed", s)
	}
	path := u.Path
	if path == "" || path == "/" {
		path = "/socket.io/"
	}
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	return "http://" + u.Host, "ws://" + u.Host + path + "?EIO=4&transport=websocket", nil
}

func run(ctx context.Context, cfg *config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	out, human := io.Writer(os.Stdout), io.Writer(os.Stdout)
	if cfg.json {
		human = os.Stderr
	}
	enc := json.NewEncoder(out)
	emit := func(v any) {
		if cfg.json {
			_ = enc.Encode(v)
		}
	}

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.compare {
		return runCompare(ctx, cfg)
	}
	if limit, err := raiseNoFile(uint64(cfg.clients) + 64); err != nil {
		fmt.Fprintf(human, "warning: RLIMIT_NOFILE: %v\n", err)
	} else if need := uint64(cfg.clients) + 64; limit < need {
		fmt.Fprintf(human, "warning: RLIMIT_NOFILE is %d: %d clients cannot all connect\n", limit, cfg.clients)
	}
	procs := &procSet{pids: cfg.pids, nodes: min(len(cfg.pids), len(cfg.targets)), tck: clockTicks(), self: os.Getpid()}
	baseline := procs.sample()
	for i, pid := range cfg.pids {
		if baseline[i].err != nil {
			return fmt.Errorf("-pids: %d: %v", pid, baseline[i].err)
		}
	}
	if len(cfg.pids) < len(cfg.targets) {
		fmt.Fprintf(human, "warning: %d pids for %d targets: CPU and memory are measured for the first %d only\n", len(cfg.pids), len(cfg.targets), len(cfg.pids))
	}

	h := newHub(cfg.size)
	fmt.Fprintf(human, "connecting %d clients to %s at %g/s\n", cfg.clients, strings.Join(cfg.targets, ", "), cfg.connectRate)
	clients, conn := connectAll(ctx, cfg.wsURLs, cfg.clients, cfg.connectRate, cfg.room, h, func(done, failed int) {
		fmt.Fprintf(human, "  … %d/%d handshakes done, %d failed\n", done, cfg.clients, failed)
	})
	defer closeAll(h, clients)
	emit(struct {
		Scenario string `json:"scenario"`
		connectResult
	}{"connect", conn})
	fmt.Fprintf(human, "connect %d/%d clients in %.1f s", conn.Connected, conn.Requested, conn.Seconds)
	if conn.Failed > 0 {
		fmt.Fprintf(human, ", %d FAILED: %s", conn.Failed, strings.Join(conn.Failures, "; "))
	}
	fmt.Fprintln(human)
	if conn.Connected == 0 {
		return errors.New("no client connected")
	}
	if conn.Connected < conn.Requested {
		fmt.Fprintf(human, "warning: only %d of %d clients connected; measuring those\n", conn.Connected, conn.Requested)
	}

	r := &runner{cfg: cfg, hub: h, clients: clients, procs: procs, baseline: baseline}
	var results []*Result
	for _, name := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		res := r.run(ctx, name)
		results = append(results, res)
		emit(res)
		fmt.Fprintln(human, res.line())
	}
	printTable(human, cfg, conn, results)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped before the end: %w", context.Cause(ctx))
	}
	return nil
}
