package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// TestRollingRestart restarts every node of a three-node cluster in turn under live traffic
// and checks that connection state recovery hides it from the clients:
//
//   - three Go testapp nodes (-recovery 30s) on a redis-server of the test's own;
//   - rollingClients official clients in one room: half WebSocket only, through a TCP proxy
//     of the test that spreads connections round robin over the live nodes; half polling
//     only, through nginx hashing a per-client query value over the nodes (sticky sessions,
//     as deploy/nginx.conf), failing over when a node is down;
//   - a publisher (WebSocket, through the proxy) that broadcasts the numbers 1, 2, 3, … to the
//     room (`bcast`, one every rollingPeriod), each with an ack; a number whose ack fails or
//     times out is not acknowledged and never sent again;
//   - n1 is stopped with SIGTERM, n2 with SIGKILL, n3 with SIGTERM, each started again on its
//     port at once, rollingPause apart.
//
// At the end every client must be connected with its first socket id (every reconnection
// recovered the session), and must have received every acknowledged number exactly once, in
// increasing order; numbers not acknowledged may be missing, never duplicated or out of
// order. The figures (losses, duplicates, sessions, time to reconnect) are logged, and
// written as JSON to the file named by ROLLING_REPORT when it is set.
//
// ROLLING_MODE checks the harness itself on the tree as it is:
//
//   - "none": the same traffic without restarting anything; it must show no loss at all.
//   - "blip": no restart either, but the proxy sends every WebSocket client to n1 and, once,
//     drops all their connections: they come back to the node that holds their session, so
//     they must all recover it (on one node, recovery needs nothing from the cluster), and
//     still miss nothing.
//
// Unset (or "restart"), the test does the rolling restart.
//
// Not parallel: the timings it reports (and the ack timeout) mean something only on a
// machine that is not also running the other cluster tests.

const (
	rollingClients   = 60 // subscribers, half WebSocket, half polling
	rollingRoom      = "rolling"
	rollingRecovery  = 30 * time.Second      // the nodes' -recovery window
	rollingPeriod    = 20 * time.Millisecond // one broadcast per period
	rollingAckWait   = 2 * time.Second       // a broadcast not acked by then is not acknowledged
	rollingWarmup    = 2 * time.Second       // traffic before the first restart
	rollingPause     = 1500 * time.Millisecond
	rollingCooldown  = 3 * time.Second // traffic after the last restart
	rollingSettleMax = 5 * time.Second // waiting for the last deliveries
	// Reconnection: small randomized delays, so that a restart's clients do not come back in
	// one burst; the connect timeout bounds a handshake stuck on a dying node.
	rollingReconnectDelay    = 100 * time.Millisecond
	rollingReconnectDelayMax = 300 * time.Millisecond
	rollingConnectTimeout    = 3 * time.Second
)

// rollingStep is one restart: which node, and how it is stopped.
type rollingStep struct {
	node int
	sig  syscall.Signal
}

var rollingSteps = []rollingStep{{0, syscall.SIGTERM}, {1, syscall.SIGKILL}, {2, syscall.SIGTERM}}

func TestRollingRestart(t *testing.T) {
	nginxBin := requireNginx(t)
	mode := os.Getenv("ROLLING_MODE")
	switch mode {
	case "":
		mode = "restart"
	case "restart", "none", "blip":
	default:
		t.Fatalf("ROLLING_MODE=%q: want restart, none or blip", mode)
	}
	testkit.BuildTestapp(t) // once per test binary: not part of the time below
	started := time.Now()

	rs := testkit.StartRedisServer(t)
	nodes := startRollingNodes(t, rs.URL())
	wsNodes := nodes.addrs()
	if mode == "blip" {
		wsNodes = wsNodes[:1]
	}
	proxy := startTCPProxy(t, wsNodes)
	lb := startRollingNginx(t, nginxBin, nodes.addrs())
	drv := testkit.NewNodeClientDriver(t)

	subs := connectSubscribers(t, drv, proxy.url(), lb)
	defer closeClients(subs) // before the nodes stop at cleanup, so they see their clients leave
	pubClient := connectRolling(t, drv, "pub", "websocket", proxy.url(), nil)
	defer closeClients([]*rollingClient{pubClient})
	t.Logf("%d subscribers and the publisher connected and joined in %v", len(subs), time.Since(started).Round(time.Millisecond))

	pub := startRollingPublisher(t, pubClient.c)
	traffic := time.Now()
	time.Sleep(rollingWarmup)
	var steps []restartRecord
	switch mode {
	case "restart":
		for i, st := range rollingSteps {
			if i > 0 {
				time.Sleep(rollingPause)
			}
			steps = append(steps, nodes.restart(t, st))
		}
	default:
		if mode == "blip" {
			t.Logf("blip: the proxy dropped %d connections", proxy.dropAll())
		}
		// About as much traffic as with the restarts (each takes 0.3–1.3 s).
		time.Sleep(time.Duration(len(rollingSteps)-1)*rollingPause + time.Duration(len(rollingSteps))*500*time.Millisecond)
	}
	time.Sleep(rollingCooldown)
	pub.halt()
	trafficTime := time.Since(traffic)
	settleDeliveries(t, subs)

	all := append(slices.Clone(subs), pubClient)
	infos := clientInfos(t, all)
	rep := analyseRolling(all, infos, pub.results(), steps)
	rep.Mode = mode
	rep.TrafficMs = trafficTime.Milliseconds()
	rep.ProxyConns = proxy.accepted.Load()
	rep.ProxyDialFailures = proxy.dialFailures.Load()
	rep.log(t)
	if path := os.Getenv("ROLLING_REPORT"); path != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		testkit.NoError(t, err)
		testkit.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644), "ROLLING_REPORT")
	}
	rep.check(t)
	t.Logf("rolling restart test took %v", time.Since(started).Round(time.Millisecond))
}

// ---------------------------------------------------------------- nodes

// rollingNodes are the three testapp nodes, each on a fixed port so that it can be started
// again where the proxy and nginx expect it.
type rollingNodes struct {
	bin   string
	args  [clusterSize][]string
	ports [clusterSize]int
	procs [clusterSize]*testkit.Process
}

func startRollingNodes(t *testing.T, redisURL string) *rollingNodes {
	t.Helper()
	n := &rollingNodes{bin: testkit.BuildTestapp(t)}
	key := fmt.Sprintf("ioswarm-rolling-%d", os.Getpid())
	for i := range n.procs {
		n.ports[i] = testkit.FreePort(t)
		n.args[i] = []string{"-addr", fmt.Sprintf("127.0.0.1:%d", n.ports[i]), "-redis", redisURL,
			"-node", nodeName(i), "-key", key, "-recovery", rollingRecovery.String()}
		n.procs[i] = n.start(t, i)
	}
	return n
}

func (n *rollingNodes) start(t *testing.T, i int) *testkit.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return testkit.StartProcess(t, ctx, n.bin, n.args[i]...)
}

func (n *rollingNodes) addrs() []string {
	out := make([]string, len(n.ports))
	for i, p := range n.ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out
}

// restartRecord is when one restart happened.
type restartRecord struct {
	Node   string    `json:"node"`
	Signal string    `json:"signal"`
	At     time.Time `json:"at"`
	DownMs int64     `json:"downMs"` // signal to exit
	BackMs int64     `json:"backMs"` // signal to listening again
}

// restart stops node st.node with st.sig, waits for it to exit and starts it again.
func (n *rollingNodes) restart(t *testing.T, st rollingStep) restartRecord {
	t.Helper()
	p := n.procs[st.node]
	rec := restartRecord{Node: nodeName(st.node), Signal: map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[st.sig], At: time.Now()}
	switch st.sig {
	case syscall.SIGKILL:
		p.Kill()
	default:
		// Stop waits up to 5 s for a clean exit (status 0), as a deployment's stop would.
		if err := p.Stop(); err != nil {
			t.Errorf("restart %s: %v", rec.Node, err)
		}
	}
	rec.DownMs = time.Since(rec.At).Milliseconds()
	n.procs[st.node] = n.start(t, st.node)
	rec.BackMs = time.Since(rec.At).Milliseconds()
	t.Logf("restart %s (%s): exited after %d ms, listening again after %d ms", rec.Node, rec.Signal, rec.DownMs, rec.BackMs)
	return rec
}

// ---------------------------------------------------------------- TCP proxy

// tcpProxy forwards each accepted connection to a live backend: round robin, skipping the
// backends that refuse the connection. It stands for a layer-4 load balancer in front of
// WebSocket clients, which need no stickiness.
type tcpProxy struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	slots    chan struct{} // bounds the connections served at once

	quit   chan struct{} // closed by close
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup

	accepted     atomic.Int64
	dialFailures atomic.Int64
}

// tcpProxyMaxConns bounds the proxy's connections (two goroutines each); the test needs
// about rollingClients/2 + 1 at a time, plus those of clients still reconnecting.
const tcpProxyMaxConns = 256

func startTCPProxy(t *testing.T, backends []string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testkit.NoError(t, err, "proxy listen")
	p := &tcpProxy{ln: ln, backends: backends, slots: make(chan struct{}, tcpProxyMaxConns), quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		select {
		case p.slots <- struct{}{}:
		case <-p.quit:
			return
		}
		c, err := p.ln.Accept()
		if err != nil {
			<-p.slots
			return // closed
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.slots }()
			p.forward(c)
		}()
	}
}

// forward connects c to the next backend that accepts a connection and copies both ways
// until either side closes; then it closes both, as a node that dies closes its clients'
// connections.
func (p *tcpProxy) forward(c net.Conn) {
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	b := p.dial()
	if b == nil {
		return
	}
	if !p.track(b) {
		return
	}
	defer p.untrack(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(b, c)
		_ = b.Close()
		_ = c.Close()
	}()
	_, _ = io.Copy(c, b)
	_ = b.Close()
	_ = c.Close()
	<-done
}

// dial tries each backend once, starting with the next in turn.
func (p *tcpProxy) dial() net.Conn {
	start := p.next.Add(1)
	for i := range uint64(len(p.backends)) {
		addr := p.backends[(start+i)%uint64(len(p.backends))]
		b, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return b
		}
		p.dialFailures.Add(1)
	}
	return nil
}

// track registers a connection to close at the end; false (and the connection closed) once
// the proxy is closed.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// dropAll closes every connection, as a network failure would, and returns how many there
// were (clients and nodes).
func (p *tcpProxy) dropAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	return len(p.conns)
}

// close stops accepting, closes every connection and waits for every goroutine.
func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closed = true
	close(p.quit)
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// ---------------------------------------------------------------- nginx

// rollingNginxConf is deploy/nginx.conf's proxying for polling clients, on loopback ports:
// the upstream hashes the "sticky" query parameter (each client sends its own) with
// consistent hashing, and a node that refuses connections, times out or answers 502/503
// (draining) is skipped. fail_timeout is short so that a restarted node gets its clients
// back within the pause that follows its restart: those clients move twice, and both moves
// are measured.
const rollingNginxConf = `# Written by TestRollingRestart (integration/rolling_test.go).
worker_processes 1;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {{DIR}}/tmp/body;
    proxy_temp_path {{DIR}}/tmp/proxy;
    fastcgi_temp_path {{DIR}}/tmp/fastcgi;
    uwsgi_temp_path {{DIR}}/tmp/uwsgi;
    scgi_temp_path {{DIR}}/tmp/scgi;

    upstream ioswarm {
        hash $arg_sticky consistent;
{{SERVERS}}        keepalive 32;
    }

    server {
        listen 127.0.0.1:{{PORT}};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Connection "";  # polling only: keep-alive to the nodes
        proxy_connect_timeout 2s;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_tries 3;
        proxy_buffering off;
        proxy_request_buffering off;
        location / {
            proxy_pass http://ioswarm;
        }
    }
}
`

// startRollingNginx starts nginx (master and one worker, in a process group of their own) on
// a free port in front of backends and returns its URL; it is stopped at cleanup.
func startRollingNginx(t *testing.T, bin string, backends []string) string {
	t.Helper()
	dir := t.TempDir()
	testkit.NoError(t, os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	port := testkit.FreePort(t)
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "        server %s max_fails=1 fail_timeout=1s;\n", b)
	}
	conf := strings.NewReplacer("{{DIR}}", dir, "{{PORT}}", strconv.Itoa(port), "{{SERVERS}}", servers.String()).Replace(rollingNginxConf)
	confPath := filepath.Join(dir, "nginx.conf")
	testkit.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))

	cmd := exec.Command(bin, "-p", dir+"/", "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	// nginx inherits listening sockets named in $NGINX: never pass one on.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NGINX=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the worker goes with the master
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &lockedWriter{w: &stderr}
	testkit.NoError(t, cmd.Start(), "start nginx")
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // fast shutdown
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("nginx did not exit within 5 s of SIGTERM; killing it")
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil && len(b) > 0 {
				t.Logf("nginx error.log (last lines):\n%s", lastLines(string(b), 12))
			}
		}
	})

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return "http://" + addr
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at start: %s\n%s", stderr.String(), lastLines(string(b), 40))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept connections on %s after 10 s", addr)
		}
	}
}

// lockedWriter serialises writes (exec copies stderr from a goroutine of its own).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// lastLines returns the last n lines of s, each cut to 240 bytes (nginx repeats the request URL
// three times per line).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 240 {
			lines[i] = l[:240] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------- clients

// rollingClient is one socket of the test.
type rollingClient struct {
	c         *testkit.Client
	transport string // "websocket" or "polling"
	sticky    string // nginx hash key (polling)
	firstID   string
}

// connectSubscribers connects the subscribers, half through the proxy over WebSocket, half
// through nginx over polling, waits for each to connect and makes it join the room.
func connectSubscribers(t *testing.T, drv *testkit.NodeClientDriver, proxyURL, lbURL string) []*rollingClient {
	t.Helper()
	out := make([]*rollingClient, 0, rollingClients)
	for i := range rollingClients {
		if i%2 == 0 {
			out = append(out, dialRolling(t, drv, fmt.Sprintf("ws%02d", i/2), "websocket", proxyURL, nil))
		} else {
			key := fmt.Sprintf("rolling-%02d", i/2)
			rc := dialRolling(t, drv, fmt.Sprintf("pl%02d", i/2), "polling", lbURL, map[string]string{"sticky": key})
			rc.sticky = key
			out = append(out, rc)
		}
	}
	for _, rc := range out {
		rc.waitJoined(t)
	}
	return out
}

// connectRolling connects one client and waits for it (the publisher joins no room).
func connectRolling(t *testing.T, drv *testkit.NodeClientDriver, handle, transport, url string, query map[string]string) *rollingClient {
	t.Helper()
	rc := dialRolling(t, drv, handle, transport, url, query)
	rc.waitConnected(t)
	return rc
}

// dialRolling creates a reconnecting client without waiting for it.
func dialRolling(t *testing.T, drv *testkit.NodeClientDriver, handle, transport, url string, query map[string]string) *rollingClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := drv.Connect(ctx, testkit.ConnectOptions{
		URL: url, Handle: handle, Transports: []string{transport}, Query: query,
		Reconnection: true, Timeout: rollingConnectTimeout,
		Extra: map[string]any{
			"reconnectionDelay":    rollingReconnectDelay.Milliseconds(),
			"reconnectionDelayMax": rollingReconnectDelayMax.Milliseconds(),
			"randomizationFactor":  0.5,
		},
	})
	testkit.NoError(t, err, "connect %s", handle)
	return &rollingClient{c: c, transport: transport}
}

func (rc *rollingClient) waitConnected(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// The first connect report (WaitConnect takes it: analyse reads the ones after it).
	id, err := rc.c.WaitConnect(ctx)
	testkit.NoError(t, err, "%s: connect", rc.c.Handle())
	rc.firstID = id
}

func (rc *rollingClient) waitJoined(t *testing.T) {
	t.Helper()
	rc.waitConnected(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := rc.c.EmitWithAck(ctx, "join", rollingRoom)
	testkit.NoError(t, err, "%s: join", rc.c.Handle())
	testkit.Equal(t, show(res), show(list{sorted(rc.firstID, rollingRoom)}), "%s: rooms after join", rc.c.Handle())
}

// closeClients closes the clients (best effort: the driver's cleanup closes whatever is left).
func closeClients(cs []*rollingClient) {
	for _, rc := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = rc.c.Close(ctx)
		cancel()
	}
}

// settleDeliveries waits until the subscribers stop receiving: no new report for 1 s (5 s at
// most).
func settleDeliveries(t *testing.T, subs []*rollingClient) {
	t.Helper()
	start := time.Now()
	last, quietSince := -1, time.Now()
	for time.Since(start) < rollingSettleMax {
		n := 0
		for _, rc := range subs {
			n += len(rc.c.Buffered())
		}
		if n != last {
			last, quietSince = n, time.Now()
		} else if time.Since(quietSince) >= time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("deliveries settled after %v", time.Since(start).Round(time.Millisecond))
}

// clientInfos asks the driver for each client's state at the end. A client caught between a
// disconnect and its reconnection is asked again, for up to 3 s: the test checks where the
// clients end up, not the moment they are looked at.
func clientInfos(t *testing.T, cs []*rollingClient) []testkit.ClientInfo {
	t.Helper()
	out := make([]testkit.ClientInfo, len(cs))
	deadline := time.Now().Add(3 * time.Second)
	for i, rc := range cs {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			info, err := rc.c.Info(ctx)
			cancel()
			testkit.NoError(t, err, "%s: info", rc.c.Handle())
			out[i] = info
			if info.Connected || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out
}

// ---------------------------------------------------------------- publisher

// published is the fate of one broadcast number.
type published struct {
	n     int
	at    time.Time     // when it was emitted
	took  time.Duration // emit to ack (or failure)
	acked bool
	err   string // why it is not acknowledged
}

// rollingPublisher broadcasts 1, 2, 3, … to the room, one per rollingPeriod, each waiting for
// its ack (or rollingAckWait) before the next: numbers reach the server in order (concurrent
// emits could reach the driver in another order). When acks are slow, the rate drops.
type rollingPublisher struct {
	c *testkit.Client

	mu   sync.Mutex
	sent []published

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func startRollingPublisher(t *testing.T, c *testkit.Client) *rollingPublisher {
	p := &rollingPublisher{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	t.Cleanup(p.halt)
	return p
}

func (p *rollingPublisher) run() {
	defer close(p.done)
	tick := time.NewTicker(rollingPeriod) // drops ticks while an ack is awaited
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		rec := published{n: n, at: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), rollingAckWait+time.Second)
		res, err := p.c.EmitWithAckTimeout(ctx, rollingAckWait, "bcast", rollingRoom, n)
		cancel()
		rec.took = time.Since(rec.at)
		switch {
		case err != nil:
			rec.err = err.Error()
		case len(res) != 1 || res[0] != true:
			rec.err = "ack " + show(res)
		default:
			rec.acked = true
		}
		p.mu.Lock()
		p.sent = append(p.sent, rec)
		p.mu.Unlock()
	}
}

// halt stops the publisher and waits for its last broadcast.
func (p *rollingPublisher) halt() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

func (p *rollingPublisher) results() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// ---------------------------------------------------------------- analysis

// rollingReconnect is one disconnection of a client and what followed.
type rollingReconnect struct {
	down, up  time.Time // up is zero while not reconnected
	reason    string
	sid       string
	recovered bool   // the former session came back (same socket id)
	node      string // the node that welcomed it back
	attempts  int    // failed attempts in between (connect errors, broken attempts)
}

// clientLog is what one client saw, from its reports.
type clientLog struct {
	rc         *rollingClient
	info       testkit.ClientInfo
	nodes      []string // the node of each welcome
	got        []int    // the broadcast numbers, in arrival order
	reconnects []rollingReconnect
	bad        []string // reports that make no sense (a msg that is not a number, …)
	trail      []string // every report, short, for the failure message
}

// readLog turns a client's buffered reports into its log.
func readLog(rc *rollingClient, info testkit.ClientInfo) *clientLog {
	l := &clientLog{rc: rc, info: info}
	var open *rollingReconnect
	for _, e := range rc.c.Buffered() {
		l.trail = append(l.trail, trailEntry(e))
		switch e.Kind {
		case testkit.KindDisconnect:
			if open != nil {
				// The client reports a disconnect also when a reconnection attempt breaks
				// before its CONNECT is answered: the same outage goes on.
				open.attempts++
				continue
			}
			l.reconnects = append(l.reconnects, rollingReconnect{down: e.At, reason: e.Reason})
			open = &l.reconnects[len(l.reconnects)-1]
		case testkit.KindConnectError:
			if open != nil {
				open.attempts++
			}
		case testkit.KindConnect:
			if open == nil {
				l.bad = append(l.bad, "connect "+e.SocketID+" without a disconnect before it")
				continue
			}
			open.up, open.sid = e.At, e.SocketID
			open.recovered = e.SocketID == rc.firstID
			open = nil
		case testkit.KindEvent:
			switch e.Name {
			case "welcome":
				var w struct{ Node string }
				if len(e.Raw) > 0 && json.Unmarshal(e.Raw[0], &w) == nil {
					l.nodes = append(l.nodes, w.Node)
					if k := len(l.reconnects); k > 0 && l.reconnects[k-1].node == "" && !l.reconnects[k-1].up.IsZero() {
						l.reconnects[k-1].node = w.Node
					}
				}
			case "msg":
				var n int
				if len(e.Raw) == 0 || json.Unmarshal(e.Raw[0], &n) != nil {
					l.bad = append(l.bad, "msg "+e.String())
					continue
				}
				l.got = append(l.got, n)
			}
		}
	}
	return l
}

// deliveries compares what a subscriber got with what was published.
type deliveries struct {
	lost       []int // acknowledged, never received
	duplicated []int // received more than once (each extra copy listed)
	outOfOrder []string
}

func (l *clientLog) check(pub []published) deliveries {
	var d deliveries
	count := map[int]int{}
	maxSeen := 0
	for i, n := range l.got {
		count[n]++
		if count[n] > 1 {
			d.duplicated = append(d.duplicated, n)
		} else if n < maxSeen {
			d.outOfOrder = append(d.outOfOrder, fmt.Sprintf("%d after %d (delivery %d)", n, maxSeen, i+1))
		}
		maxSeen = max(maxSeen, n)
	}
	for _, p := range pub {
		if p.acked && count[p.n] == 0 {
			d.lost = append(d.lost, p.n)
		}
	}
	return d
}

// rollingReport holds the figures of a run; it is what ROLLING_REPORT receives.
type rollingReport struct {
	Mode              string `json:"mode"`    // ROLLING_MODE
	Clients           int    `json:"clients"` // subscribers
	WebSocket         int    `json:"websocketClients"`
	Polling           int    `json:"pollingClients"`
	TrafficMs         int64  `json:"trafficMs"`
	Sent              int    `json:"broadcastsSent"`
	Acked             int    `json:"broadcastsAcked"`
	AckP50Ms          int64  `json:"ackP50Ms"` // emit to ack, acknowledged broadcasts
	AckMaxMs          int64  `json:"ackMaxMs"`
	Lost              int    `json:"lost"`       // acknowledged broadcasts not received, all clients
	Duplicated        int    `json:"duplicated"` // deliveries beyond the first, all clients
	OutOfOrder        int    `json:"outOfOrder"`
	ClientsWithLoss   int    `json:"clientsWithLoss"`
	ClientsRecovered  int    `json:"clientsRecovered"`  // reconnected, every time into their session
	ClientsNewSession int    `json:"clientsNewSession"` // got a new session at least once
	ClientsUntouched  int    `json:"clientsUntouched"`  // never disconnected
	ClientsConnected  int    `json:"clientsConnected"`  // connected at the end
	Reconnects        int    `json:"reconnects"`
	Recovered         int    `json:"reconnectsRecovered"`
	NewSessions       int    `json:"reconnectsNewSession"`
	NotBack           int    `json:"reconnectsNotBack"` // disconnected at the end
	ProxyConns        int64  `json:"proxyConnections"`
	ProxyDialFailures int64  `json:"proxyDialFailures"`
	timeFigures
	PerRestart []restartFigures `json:"perRestart"`

	logs   []*clientLog
	checks []deliveries
	pub    []published
}

// timeFigures are the times from a disconnect to the next connect.
type timeFigures struct {
	MaxMs float64 `json:"reconnectMaxMs"`
	P50Ms float64 `json:"reconnectP50Ms"`
	P95Ms float64 `json:"reconnectP95Ms"`
}

func newTimeFigures(ds []time.Duration) timeFigures {
	if len(ds) == 0 {
		return timeFigures{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pick := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return timeFigures{MaxMs: ms(ds[len(ds)-1]), P50Ms: ms(pick(0.5)), P95Ms: ms(pick(0.95))}
}

func (f timeFigures) String() string {
	return fmt.Sprintf("max %.0f ms, p50 %.0f ms, p95 %.0f ms", f.MaxMs, f.P50Ms, f.P95Ms)
}

// restartFigures are the figures of one restart: the reconnections that began after it and
// before the next, and the broadcasts emitted in that time.
type restartFigures struct {
	restartRecord
	Reconnects  int `json:"reconnects"`
	Recovered   int `json:"reconnectsRecovered"`
	NewSessions int `json:"reconnectsNewSession"`
	Sent        int `json:"broadcastsSent"`
	Acked       int `json:"broadcastsAcked"`
	Lost        int `json:"lost"`
	timeFigures
}

// analyseRolling computes the figures. The last client is the publisher: its session counts, it
// receives nothing.
func analyseRolling(cs []*rollingClient, infos []testkit.ClientInfo, pub []published, steps []restartRecord) *rollingReport {
	r := &rollingReport{pub: pub, Sent: len(pub)}
	var acks []time.Duration
	for _, p := range pub {
		if p.acked {
			r.Acked++
			acks = append(acks, p.took)
		}
	}
	if len(acks) > 0 {
		slices.Sort(acks)
		r.AckP50Ms, r.AckMaxMs = acks[len(acks)/2].Milliseconds(), acks[len(acks)-1].Milliseconds()
	}
	// phase returns the restart a moment belongs to (-1: before the first).
	phase := func(at time.Time) int {
		i := -1
		for k, s := range steps {
			if !at.Before(s.At) {
				i = k
			}
		}
		return i
	}
	r.PerRestart = make([]restartFigures, len(steps))
	perTimes := make([][]time.Duration, len(steps))
	for i, s := range steps {
		r.PerRestart[i].restartRecord = s
	}
	for _, p := range pub {
		if i := phase(p.at); i >= 0 {
			r.PerRestart[i].Sent++
			if p.acked {
				r.PerRestart[i].Acked++
			}
		}
	}
	pubAt := map[int]time.Time{}
	for _, p := range pub {
		pubAt[p.n] = p.at
	}

	var times []time.Duration
	for ci, rc := range cs {
		l := readLog(rc, infos[ci])
		r.logs = append(r.logs, l)
		if infos[ci].Connected {
			r.ClientsConnected++
		}
		newSession := false
		for _, rec := range l.reconnects {
			r.Reconnects++
			i := phase(rec.down)
			if i >= 0 {
				r.PerRestart[i].Reconnects++
			}
			switch {
			case rec.up.IsZero():
				r.NotBack++
				continue
			case rec.recovered:
				r.Recovered++
				if i >= 0 {
					r.PerRestart[i].Recovered++
				}
			default:
				r.NewSessions++
				newSession = true
				if i >= 0 {
					r.PerRestart[i].NewSessions++
				}
			}
			d := rec.up.Sub(rec.down)
			times = append(times, d)
			if i >= 0 {
				perTimes[i] = append(perTimes[i], d)
			}
		}
		switch {
		case len(l.reconnects) == 0:
			r.ClientsUntouched++
		case newSession:
			r.ClientsNewSession++
		default:
			r.ClientsRecovered++
		}
		if ci == len(cs)-1 {
			continue // the publisher
		}
		r.Clients++
		if rc.transport == "websocket" {
			r.WebSocket++
		} else {
			r.Polling++
		}
		d := l.check(pub)
		r.checks = append(r.checks, d)
		r.Lost += len(d.lost)
		r.Duplicated += len(d.duplicated)
		r.OutOfOrder += len(d.outOfOrder)
		if len(d.lost) > 0 {
			r.ClientsWithLoss++
		}
		for _, n := range d.lost {
			if i := phase(pubAt[n]); i >= 0 {
				r.PerRestart[i].Lost++
			}
		}
	}
	r.timeFigures = newTimeFigures(times)
	for i := range steps {
		r.PerRestart[i].timeFigures = newTimeFigures(perTimes[i])
	}
	return r
}

// log writes the summary line, then a line per restart.
func (r *rollingReport) log(t *testing.T) {
	t.Helper()
	mode := fmt.Sprintf("%d restarts", len(r.PerRestart))
	if r.Mode != "restart" {
		mode = "ROLLING_MODE=" + r.Mode + ", no restart"
	}
	t.Logf("ROLLING SUMMARY (%s): clients %d (%d websocket via proxy, %d polling via nginx); broadcasts sent %d, acked %d in %d ms (ack p50 %d ms, max %d ms); "+
		"lost %d (%d clients), duplicated %d, out of order %d; clients recovered %d, new session %d, never disconnected %d, connected at end %d/%d (publisher included); "+
		"reconnects %d: recovered %d, new sessions %d, not back %d; time to reconnect %s",
		mode, r.Clients, r.WebSocket, r.Polling, r.Sent, r.Acked, r.TrafficMs, r.AckP50Ms, r.AckMaxMs,
		r.Lost, r.ClientsWithLoss, r.Duplicated, r.OutOfOrder, r.ClientsRecovered, r.ClientsNewSession, r.ClientsUntouched,
		r.ClientsConnected, r.Clients+1, r.Reconnects, r.Recovered, r.NewSessions, r.NotBack, r.timeFigures)
	for i, s := range r.PerRestart {
		t.Logf("ROLLING RESTART %d/%d %s (%s): exited after %d ms, back after %d ms; reconnects %d (recovered %d, new sessions %d), time to reconnect %s; broadcasts in the window sent %d, acked %d; lost deliveries of them %d",
			i+1, len(r.PerRestart), s.Node, s.Signal, s.DownMs, s.BackMs, s.Reconnects, s.Recovered, s.NewSessions, s.timeFigures, s.Sent, s.Acked, s.Lost)
	}
	t.Logf("proxy: %d connections, %d dials refused", r.ProxyConns, r.ProxyDialFailures)
	// Where the clients went: the nodes that welcomed each one, as a histogram of paths.
	paths := map[string]int{}
	for i, l := range r.logs {
		who := l.rc.transport
		if i == len(r.logs)-1 {
			who = "publisher"
		}
		paths[who+" "+strings.Join(l.nodes, ">")]++
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %3d × %s", paths[k], k)
	}
	t.Logf("nodes that welcomed each client, in turn:%s", b.String())
}

// check fails the test for every client that is not connected in its first session, or
// whose deliveries are wrong, naming the clients and the numbers.
func (r *rollingReport) check(t *testing.T) {
	t.Helper()
	if r.Acked == 0 {
		t.Errorf("no broadcast was acknowledged (%d sent): %s", r.Sent, r.firstErrors())
	}
	var sessionFails, deliveryFails []string
	for ci, l := range r.logs {
		h := l.rc.c.Handle()
		var why []string
		if !l.info.Connected {
			why = append(why, "not connected at the end")
		}
		if l.info.Connected && l.info.ID != l.rc.firstID {
			why = append(why, fmt.Sprintf("socket id %s at the end, first was %s", l.info.ID, l.rc.firstID))
		}
		if len(l.reconnects) > 0 && l.info.Connected && !l.info.Recovered {
			why = append(why, "socket.recovered false at the end")
		}
		for k, rec := range l.reconnects {
			if rec.up.IsZero() {
				why = append(why, fmt.Sprintf("reconnect %d (disconnect %q at +%v): not connected again, %d connect errors", k+1, rec.reason,
					rec.down.Sub(r.startOf()).Round(time.Millisecond), rec.attempts))
			}
			if !rec.up.IsZero() && !rec.recovered {
				why = append(why, fmt.Sprintf("reconnect %d (disconnect %q at +%v) got new session %s on %s", k+1, rec.reason,
					rec.down.Sub(r.startOf()).Round(time.Millisecond), rec.sid, orDash(rec.node)))
			}
		}
		why = append(why, l.bad...)
		if len(why) > 0 {
			sessionFails = append(sessionFails, fmt.Sprintf("%s (%s%s, nodes %s): %s", h, l.rc.transport, stickyNote(l.rc), strings.Join(l.nodes, ">"), strings.Join(why, "; ")))
		}
		if ci >= len(r.checks) {
			continue // the publisher
		}
		d := r.checks[ci]
		if len(d.lost)+len(d.duplicated)+len(d.outOfOrder) == 0 {
			continue
		}
		var parts []string
		if len(d.lost) > 0 {
			parts = append(parts, fmt.Sprintf("lost %d of %d acked: %s", len(d.lost), r.Acked, ranges(d.lost, 12)))
		}
		if len(d.duplicated) > 0 {
			parts = append(parts, fmt.Sprintf("duplicated %d: %s", len(d.duplicated), repeats(d.duplicated, 12)))
		}
		if len(d.outOfOrder) > 0 {
			parts = append(parts, fmt.Sprintf("out of order %d: %s", len(d.outOfOrder), strings.Join(firstN(d.outOfOrder, 5), ", ")))
		}
		deliveryFails = append(deliveryFails, fmt.Sprintf("%s (%s, received %d): %s\n    around it: %s", h, l.rc.transport, len(l.got), strings.Join(parts, "; "), l.around(d)))
	}
	if len(sessionFails) > 0 {
		t.Errorf("%d of %d clients (publisher included) did not keep their session:\n  %s", len(sessionFails), len(r.logs), strings.Join(firstN(sessionFails, 20), "\n  "))
	}
	if len(deliveryFails) > 0 {
		t.Errorf("%d of %d subscribers did not receive every acknowledged broadcast exactly once, in order:\n  %s", len(deliveryFails), r.Clients, strings.Join(firstN(deliveryFails, 20), "\n  "))
	}
}

// startOf is when the traffic started (the first broadcast), for relative times.
func (r *rollingReport) startOf() time.Time {
	if len(r.pub) > 0 {
		return r.pub[0].at
	}
	return time.Time{}
}

// firstErrors names the first reasons broadcasts were not acknowledged.
func (r *rollingReport) firstErrors() string {
	var out []string
	for _, p := range r.pub {
		if !p.acked {
			out = append(out, fmt.Sprintf("%d: %s", p.n, p.err))
		}
	}
	return strings.Join(firstN(out, 3), "; ")
}

func stickyNote(rc *rollingClient) string {
	if rc.sticky == "" {
		return ""
	}
	return " sticky=" + rc.sticky
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firstN returns the first n items, and a count of the others.
func firstN(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(slices.Clone(items[:n]), fmt.Sprintf("… %d more", len(items)-n))
}

// ranges writes distinct numbers, sorted, as runs ("3-7, 10"), at most n runs.
func ranges(ns []int, n int) string {
	ns = slices.Clone(ns)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	var runs []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i == j {
			runs = append(runs, strconv.Itoa(ns[i]))
		} else {
			runs = append(runs, fmt.Sprintf("%d-%d", ns[i], ns[j]))
		}
		i = j + 1
	}
	return strings.Join(firstN(runs, n), ", ")
}

// repeats writes the extra copies of numbers as "n×copies" ("12×2, 40×3"), at most n of them.
func repeats(extra []int, n int) string {
	count := map[int]int{}
	for _, x := range extra {
		count[x]++
	}
	keys := slices.Sorted(maps.Keys(count))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%d×%d", k, count[k]+1))
	}
	return strings.Join(firstN(out, n), ", ")
}

// trailEntry is a report in a few words: a number with its offset, a
// connection event.
func trailEntry(e *testkit.Event) string {
	switch e.Kind {
	case testkit.KindDisconnect:
		return "disconnect(" + e.Reason + ")"
	case testkit.KindConnect:
		return "connect(" + e.SocketID + ")"
	case testkit.KindConnectError:
		return "connect_error"
	}
	if len(e.Raw) > 0 {
		return e.Name + string(e.Raw[0]) + "@" + string(e.Raw[len(e.Raw)-1])
	}
	return e.Name
}

// around shows the reports near the first duplicated or out-of-order
// delivery.
func (l *clientLog) around(d deliveries) string {
	var n int
	switch {
	case len(d.duplicated) > 0:
		n = d.duplicated[0]
	default:
		return ""
	}
	want := fmt.Sprintf("msg%d@", n)
	var idx []int
	for i, t := range l.trail {
		if strings.HasPrefix(t, want) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return ""
	}
	from, to := max(idx[0]-3, 0), min(idx[len(idx)-1]+3, len(l.trail)-1)
	return strings.Join(l.trail[from:to+1], " ")
}
