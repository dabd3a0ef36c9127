package main

import (
	"context"
	"encoding/json"
	"errors"

	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// -compare: the tool starts redis-server and, for each -clients value, a
// fresh 2-node ioswarm cluster and a fresh 2-node Node.js cluster on it (each
// with its own Redis key), connects -clients clients to each, and runs the
// phases interleaved: phase X on ioswarm, phase X on Node, phase Y on
// ioswarm, … (with -repeats 2, each phase twice, the second time Node first).
// Each side's server CPU is that of its two nodes; Redis is measured apart.

// comparePhases are the scenarios of -compare, after connecting.
var comparePhases = []string{"idle", "bcast", "bcast-burst", "paced", "burst", "echo-inflight", "sse"}

// clusterNodes is the number of nodes of each compared cluster.
const clusterNodes = 2

// The compared implementations, in the order of the table's columns.
const (
	implGo   = "ioswarm"
	implNode = "node"
)

// side is one implementation during one round: its cluster, its clients and
// what it measured.
type side struct {
	impl    string
	cfg     *config
	cluster *cluster
	hub     *hub
	clients []*client
	runner  *runner
	results map[string][]*Result // by scenario, one per repeat
}

// compareEnv is what every round shares.
type compareEnv struct {
	cfg      *config
	noFile   uint64 // RLIMIT_NOFILE once raised; 0 when unknown
	redis    *proc
	commands map[string][]string // the program and first arguments of a node, by impl
	human    io.Writer
	emit     func(v any)
}

// resultLine and rowLine are the JSON lines of -compare -json: a phase's
// result, and a row of the table.
type resultLine struct {
	Type      string `json:"type"` // "result"
	Impl      string `json:"impl"`
	Requested int    `json:"clients_requested"`
	*Result
}

type rowLine struct {
	Type      string `json:"type"` // "row"
	Requested int    `json:"clients_requested"`
	Row
}

func runCompare(ctx context.Context, cfg *config) error {
	out, human := io.Writer(os.Stdout), io.Writer(os.Stdout)
	if cfg.json {
		human = os.Stderr
	}
	enc := json.NewEncoder(out)
	env := &compareEnv{cfg: cfg, human: human, commands: map[string][]string{}}
	env.emit = func(v any) {
		if cfg.json {
			_ = enc.Encode(v)
		}
	}
	if limit, err := raiseNoFile(2*uint64(slicesMax(cfg.clientsList)) + fdMargin); err != nil {
		fmt.Fprintf(human, "warning: RLIMIT_NOFILE: %v\n", err)
	} else {
		env.noFile = limit
		if need := uint64(slicesMax(cfg.clientsList)) + fdMargin; limit < need {
			fmt.Fprintf(human, "warning: RLIMIT_NOFILE is %d: not every client can connect\n", limit)
		}
	}

	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("-compare needs node: %w", err)
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("-compare needs redis-server: %w", err)
	}
	testapp, nodeApp := cfg.testapp, cfg.nodeApp
	if testapp == "" || nodeApp == "" {
		dir, err := integrationDir()
		if err != nil {
			return err
		}
		if nodeApp == "" {
			nodeApp = filepath.Join(dir, "node", "testapp.js")
		}
		if testapp == "" {
			tmp, err := os.MkdirTemp("", "loadtest-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			fmt.Fprintf(human, "building the Go testapp (go build ./testapp in %s)\n", dir)
			if testapp, err = buildTestapp(ctx, dir, tmp); err != nil {
				return err
			}
		}
	}
	env.commands[implGo] = []string{testapp}
	env.commands[implNode] = []string{nodeBin, nodeApp}

	env.redis, err = startRedis(ctx, redisBin)
	if err != nil {
		return err
	}
	defer env.redis.stop()
	fmt.Fprintf(human, "command: loadtest %s\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(human, "machine: %d CPUs; loadtest built with %s; Go testapp %s; node %s, %s; %s (pid %d)\n",
		runtime.NumCPU(), runtime.Version(), testapp, version(ctx, nodeBin, "--version"), nodeApp,
		version(ctx, redisBin, "--version"), env.redis.pid())

	var tables []*table
	var runErr error
	for _, n := range cfg.clientsList {
		if ctx.Err() != nil {
			break
		}
		sides, err := env.round(ctx, n)
		t := compareTable(cfg, n, sides) // what was measured, also when the round failed
		tables = append(tables, t)
		for i := range t.rows {
			env.emit(rowLine{Type: "row", Requested: n, Row: t.rows[i]})
		}
		if err != nil {
			runErr = fmt.Errorf("%d clients: %w", n, err)
			break
		}
	}
	fmt.Fprintf(human, "\nioswarm and Node.js (socket.io), %d nodes each on one Redis; %d-byte payloads, %v phases, %d run(s) each (median)\n",
		clusterNodes, cfg.size, cfg.duration, cfg.repeats)
	fmt.Fprintln(human, "×: how many times better ioswarm is (ioswarm/Node for rates, Node/ioswarm for CPU, memory and latencies): >1 means ioswarm is better")
	for _, t := range tables {
		t.print(human)
	}
	if runErr != nil {
		return runErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped before the end: %w", context.Cause(ctx))
	}
	return nil
}

func slicesMax(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// version runs bin with arg and returns the first line it prints.
func version(ctx context.Context, bin, arg string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, arg).Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// round runs every phase with n clients on fresh clusters of both
// implementations, interleaved, and returns the two sides.
func (env *compareEnv) round(ctx context.Context, n int) ([]*side, error) {
	cfg := env.cfg
	fmt.Fprintf(env.human, "\n== %d clients per implementation\n", n)
	redisURL := "redis://" + env.redis.addr + "/0"
	var sides []*side
	defer func() {
		for _, s := range sides {
			closeAll(s.hub, s.clients)
			s.cluster.stop()
		}
	}()
	impls := []string{implGo, implNode}
	clusters := make([]*cluster, len(impls))
	errs := make([]error, len(impls))
	var wg sync.WaitGroup
	for i, impl := range impls {
		wg.Go(func() {
			key := fmt.Sprintf("loadtest-%s-%d-%d", impl, n, os.Getpid())
			clusters[i], errs[i] = startCluster(ctx, impl, env.commands[impl], redisURL, key, clusterNodes)
		})
	}
	wg.Wait()
	for i, impl := range impls {
		if clusters[i] == nil {
			continue
		}
		s := &side{impl: impl, cluster: clusters[i], hub: newHub(cfg.size), results: map[string][]*Result{}}
		sides = append(sides, s)
	}
	if err := errors.Join(errs...); err != nil {
		return sides, err
	}
	for _, s := range sides {
		scfg := *cfg
		scfg.clients = n
		scfg.targets, scfg.wsURLs, scfg.pids = nil, nil, nil
		for _, p := range s.cluster.nodes {
			httpURL, wsURL, err := parseTarget("http://" + p.addr)
			if err != nil {
				return sides, err
			}
			scfg.targets = append(scfg.targets, httpURL)
			scfg.wsURLs = append(scfg.wsURLs, wsURL)
			scfg.pids = append(scfg.pids, p.pid())
		}
		s.cfg = &scfg
		fmt.Fprintf(env.human, "%s: nodes %s (pids %v)\n", s.impl, strings.Join(scfg.targets, ", "), scfg.pids)
	}

	// Both sides' clients stay connected while the phases alternate,
	// unless the descriptors cannot hold them all: then each side runs all
	// its phases alone, one after the other, and its clients go before the
	// other side's connect.
	if env.noFile > 0 && env.noFile < 2*uint64(n)+fdMargin {
		fmt.Fprintf(env.human, "RLIMIT_NOFILE %d cannot hold both sides' %d clients: the sides run one after the other\n", env.noFile, n)
		for _, s := range sides {
			if err := env.connect(ctx, s, n); err != nil {
				return sides, err
			}
			for _, phase := range cfg.scenarios {
				for range cfg.repeats {
					if ctx.Err() != nil {
						return sides, nil
					}
					env.record(s, n, s.runner.run(ctx, phase))
				}
			}
			closeAll(s.hub, s.clients)
			s.clients, s.runner.clients = nil, nil
		}
		return sides, nil
	}

	// Connect, one side after the other, each measured alone.
	for _, s := range sides {
		if err := env.connect(ctx, s, n); err != nil {
			return sides, err
		}
	}

	for _, phase := range cfg.scenarios {
		for rep := range cfg.repeats {
			order := sides
			if rep%2 == 1 {
				order = []*side{sides[1], sides[0]}
			}
			for _, s := range order {
				if ctx.Err() != nil {
					return sides, nil
				}
				for _, o := range sides { // the other side's load must be over too
					if o != s {
						o.runner.settle(ctx)
					}
				}
				env.record(s, n, s.runner.run(ctx, phase))
			}
		}
	}
	return sides, nil
}

// fdMargin is what the tool needs besides its clients' sockets: /proc
// files, Redis, pipes to the nodes.
const fdMargin = 256

// connect connects a side's n clients, measured alone, as its "connect"
// result.
func (env *compareEnv) connect(ctx context.Context, s *side, n int) error {
	cfg := env.cfg
	procs := &procSet{pids: s.cfg.pids, nodes: len(s.cfg.pids), tck: clockTicks(), self: os.Getpid(), aux: []int{env.redis.pid()}}
	baseline := procs.sample()
	for i, pid := range s.cfg.pids {
		if baseline[i].err != nil {
			return fmt.Errorf("%s: pid %d: %v", s.impl, pid, baseline[i].err)
		}
	}
	s.runner = &runner{cfg: s.cfg, hub: s.hub, procs: procs, baseline: baseline}
	w := s.runner.begin()
	clients, conn := connectAll(ctx, s.cfg.wsURLs, n, cfg.connectRate, cfg.room, s.hub, func(done, failed int) {
		fmt.Fprintf(env.human, "  %s: … %d/%d handshakes done, %d failed\n", s.impl, done, n, failed)
	})
	s.clients, s.runner.clients = clients, clients
	res := &Result{Scenario: "connect", Requested: n, Clients: conn.Connected}
	s.runner.end(w, res)
	res.Seconds = conn.Seconds
	if conn.Failed > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d FAILED: %s", conn.Failed, strings.Join(conn.Failures, "; ")))
	}
	env.record(s, n, res)
	if conn.Connected == 0 {
		return fmt.Errorf("%s: no client connected", s.impl)
	}
	return nil
}

// record keeps a side's result and prints it.
func (env *compareEnv) record(s *side, n int, res *Result) {
	s.results[res.Scenario] = append(s.results[res.Scenario], res)
	env.emit(resultLine{Type: "result", Impl: s.impl, Requested: n, Result: res})
	fmt.Fprintf(env.human, "%-8s %s\n", s.impl, res.line())
}
