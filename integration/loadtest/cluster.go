package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The processes of -compare: one redis-server and, for each number of
// clients, two fresh 2-node clusters on it. Everything listens on 127.0.0.1;
// every process is stopped when the run ends (SIGTERM, then SIGKILL after
// stopGrace), and dies with the tool if the tool is killed (Pdeathsig).

const (
	// startTimeout bounds the wait for a process's readiness line.
	startTimeout = 30 * time.Second
	// stopGrace is how long a process has to exit after SIGTERM.
	stopGrace = 5 * time.Second
	// logLines is how many of its last output lines a process keeps, to say
	// why it failed.
	logLines = 20
)

// proc is a process the tool started.
type proc struct {
	name   string
	cmd    *exec.Cmd
	addr   string        // 127.0.0.1:PORT, from its readiness line
	exited chan struct{} // closed once it exited
	err    error         // how it exited; read after exited is closed

	mu   sync.Mutex
	tail []string // last output lines
}

// startProc starts bin and waits until ready accepts one of its output lines
// (stdout or stderr), which gives the address it listens on.
func startProc(ctx context.Context, name string, ready func(line string) (string, bool), bin string, args ...string) (*proc, error) {
	p := &proc{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	readyc := make(chan string, 1)
	var wg sync.WaitGroup
	scan := func(r io.Reader) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > logLines {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
			if addr, ok := ready(line); ok {
				select {
				case readyc <- addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}
	wg.Add(2)
	go scan(stdout)
	go scan(stderr)
	go func() {
		wg.Wait()
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case p.addr = <-readyc:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before it was ready (%v): %s", name, p.err, p.lastLines())
	case <-t.C:
		p.stop()
		return nil, fmt.Errorf("%s not ready after %v: %s", name, startTimeout, p.lastLines())
	case <-ctx.Done():
		p.stop()
		return nil, context.Cause(ctx)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, " | ")
}

// stop sends SIGTERM, and SIGKILL when the process has not exited after
// stopGrace; it returns once the process exited.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// listening recognises the testapps' "listening on ADDR" line.
func listening(line string) (string, bool) {
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	return strings.TrimSpace(addr), ok
}

// freePort returns a port of 127.0.0.1 that was free a moment ago, below the
// kernel's ephemeral range (32768 and up on Linux), where the clients' own
// source ports come from.
func freePort() (int, error) {
	for range 50 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		if err := l.Close(); err == nil {
			return port, nil
		}
	}
	return 0, errors.New("no free port in [20000, 32000)")
}

// startRedis starts redis-server on a free port of 127.0.0.1, without
// persistence.
func startRedis(ctx context.Context, bin string) (*proc, error) {
	var lastErr error
	for range 3 { // the port may be taken between freePort and the bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ready := func(line string) (string, bool) {
			return addr, strings.Contains(line, "Ready to accept connections")
		}
		p, err := startProc(ctx, "redis-server", ready, bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// cluster is one implementation's nodes, all on the same Redis and key.
type cluster struct {
	impl  string
	nodes []*proc
}

// startCluster starts n nodes of command (the program and its first
// arguments) on redisURL with the channel prefix key, at once.
func startCluster(ctx context.Context, impl string, command []string, redisURL, key string, n int) (*cluster, error) {
	c := &cluster{impl: impl, nodes: make([]*proc, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			args := append(command[1:len(command):len(command)],
				"-addr", "127.0.0.1:0", "-redis", redisURL, "-key", key, "-node", fmt.Sprintf("%s-%d", impl, i+1))
			c.nodes[i], errs[i] = startProc(ctx, fmt.Sprintf("%s node %d", impl, i+1), listening, command[0], args...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// stop stops every node, at once.
func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, p := range c.nodes {
		if p != nil {
			wg.Go(p.stop)
		}
	}
	wg.Wait()
}

// integrationDir finds the integration module's directory: the working
// directory or one above it, or its integration/ subdirectory.
func integrationDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		for _, d := range []string{dir, filepath.Join(dir, "integration")} {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
				strings.Contains(string(b), "module github.com/ioswarm/ioswarm/integration\n") {
				return d, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ioswarm repository: give -testapp and -node-app")
		}
		dir = parent
	}
}

// buildTestapp builds the Go testapp into dir.
func buildTestapp(ctx context.Context, integration, dir string) (string, error) {
	bin := filepath.Join(dir, "testapp")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./testapp")
	cmd.Dir = integration
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./testapp (in %s): %v\n%s", integration, err, out)
	}
	return bin, nil
}
