package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gopkg.in/yaml.v3"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The deployment of the cluster demo (clusterdemo/, docker-compose.yml, deploy/):
//
//   - TestCompose*: docker-compose.yml, clusterdemo/Dockerfile and deploy/nginx.conf are
//     checked against each other and against the code, without a Docker engine.
//   - TestDeployProcessCluster: deploy/cluster.sh starts the same topology as processes
//     (redis-server, three nodes, nginx with the same configuration) on free ports; the
//     official client checks it through nginx, then the script stops it.
//   - TestBrowserDemo: headless Chromium opens the demo page through nginx in two browser
//     contexts pinned to different nodes.
//
// nginx, redis-server and chromium come from the OS packages (.ci/run installs them); the
// tests that need one are skipped, saying so, when it is missing.

// ---------------------------------------------------------------- compose

// composeFile is the part of the Compose specification the demo uses; decoding is strict,
// so a misspelt key fails the test.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Expose      []string          `yaml:"expose"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	StopGracePeriod string `yaml:"stop_grace_period"`
	Restart         string `yaml:"restart"`
}

// loadCompose parses docker-compose.yml: anchors, aliases and merge keys resolved, top-level
// keys limited to services and x-* extensions, services decoded strictly.
func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "docker-compose.yml"))
	testkit.NoError(t, err)
	var top map[string]any
	testkit.NoError(t, yaml.Unmarshal(b, &top), "docker-compose.yml")
	for k := range top {
		testkit.True(t, k == "services" || strings.HasPrefix(k, "x-"), "docker-compose.yml: unexpected top-level key %q", k)
	}
	resolved, err := yaml.Marshal(map[string]any{"services": top["services"]})
	testkit.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(resolved))
	dec.KnownFields(true)
	var cf composeFile
	testkit.NoError(t, dec.Decode(&cf), "docker-compose.yml services")
	return cf
}

// nginxNodes returns the nodes named by the "server nodeN:3000" lines of deploy/nginx.conf
// (comments aside), in order, as deploy/cluster.sh reads them.
func nginxNodes(conf string) []string {
	var nodes []string
	seen := map[string]bool{}
	re := regexp.MustCompile(`server\s+(node[0-9]+):3000`)
	for _, line := range strings.Split(conf, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				nodes = append(nodes, m[1])
			}
		}
	}
	return nodes
}

func TestComposeFile(t *testing.T) {
	root := testkit.RepoRoot(t)
	cf := loadCompose(t)
	confBytes, err := os.ReadFile(filepath.Join(root, "deploy", "nginx.conf"))
	testkit.NoError(t, err)
	conf := string(confBytes)

	redis, ok := cf.Services["redis"]
	testkit.True(t, ok, "no redis service")
	testkit.True(t, strings.HasPrefix(redis.Image, "redis:"), "redis image %q", redis.Image)
	testkit.True(t, redis.Healthcheck != nil && len(redis.Healthcheck.Test) > 0, "redis has no health check (the nodes wait for it)")

	var nodes []string
	for name, s := range cf.Services {
		if s.Build == nil {
			continue
		}
		nodes = append(nodes, name)
		t.Run(name, func(t *testing.T) {
			testkit.Equal(t, s.Build.Context, ".", "build context: the repository root")
			_, err := os.Stat(filepath.Join(root, s.Build.Dockerfile))
			testkit.NoError(t, err, "dockerfile %q", s.Build.Dockerfile)
			testkit.Equal(t, s.Build.Dockerfile, "clusterdemo/Dockerfile")
			testkit.Equal(t, s.Environment["NODE_NAME"], name, "NODE_NAME is the service name (nginx's ?node= pin uses it)")
			testkit.Equal(t, s.Environment["REDIS_URL"], "redis://redis:6379/0")
			testkit.Equal(t, s.Environment["ADDR"], ":3000", "nginx.conf sends to nodeN:3000")
			testkit.Equal(t, s.Expose, []string{"3000"})
			testkit.Equal(t, s.DependsOn["redis"].Condition, "service_healthy")
			testkit.True(t, s.Healthcheck != nil, "no health check")
			testkit.Equal(t, s.Healthcheck.Test, []string{"CMD", "/clusterdemo", "-healthcheck"})
			d, err := time.ParseDuration(s.StopGracePeriod)
			testkit.NoError(t, err, "stop_grace_period")
			testkit.True(t, d > 10*time.Second, "stop_grace_period %v leaves no time for the node's 10 s graceful shutdown", d)
		})
	}
	sort.Strings(nodes)
	testkit.Equal(t, nodes, []string{"node1", "node2", "node3"}, "node services")
	testkit.Equal(t, nginxNodes(conf), nodes, "nginx.conf's upstream lists the node services")
	for _, n := range nodes {
		testkit.True(t, regexp.MustCompile(`(?m)^\s*`+n+`\s+`+n+`;`).MatchString(conf), "nginx.conf: no %q line in the ?node= map", n)
		testkit.True(t, regexp.MustCompile(`(?m)^upstream `+n+` \{ server `+n+`:3000; \}`).MatchString(conf), "nginx.conf: no upstream %s", n)
	}

	lb, ok := cf.Services["lb"]
	testkit.True(t, ok, "no lb service")
	testkit.True(t, strings.HasPrefix(lb.Image, "nginx:"), "lb image %q", lb.Image)
	testkit.Equal(t, lb.Ports, []string{"8080:80"}, "http://localhost:8080, nginx listens on 80")
	testkit.Equal(t, lb.Volumes, []string{"./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro"})
	for _, n := range nodes {
		testkit.Equal(t, lb.DependsOn[n].Condition, "service_healthy", "lb waits for %s (nginx resolves it at start)", n)
	}
	for _, s := range cf.Services {
		for dep := range s.DependsOn {
			_, ok := cf.Services[dep]
			testkit.True(t, ok, "depends_on names an unknown service %q", dep)
		}
	}

	// The parts of nginx.conf Socket.IO needs, and the lines deploy/cluster.sh rewrites.
	for _, want := range []string{
		"listen 80;",
		"hash $ioswarm_sticky consistent;",
		"proxy_http_version 1.1;",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;",
		"proxy_read_timeout 1h;",
		"proxy_pass http://$ioswarm_upstream;",
		"location = /healthz",
	} {
		testkit.True(t, strings.Contains(conf, want), "nginx.conf lacks %q", want)
	}
}

// The image builds from what the Dockerfile copies: every package ./clusterdemo needs, with a
// Go at least as new as go.mod's.
func TestComposeDockerfile(t *testing.T) {
	root := testkit.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "clusterdemo", "Dockerfile"))
	testkit.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	var copied []string
	var goImage, entrypoint string
	for _, l := range lines {
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			if strings.HasPrefix(f[1], "golang:") {
				goImage = f[1]
			}
		case "COPY":
			if strings.HasPrefix(f[1], "--from") {
				continue
			}
			copied = append(copied, f[1:len(f)-1]...)
		case "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		}
	}
	testkit.Equal(t, entrypoint, `["/clusterdemo"]`, "the compose health check runs /clusterdemo")

	// golang:1.26-alpine runs go.mod's "go 1.26.0".
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	testkit.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(mod))
	testkit.True(t, goLine != nil, "go.mod has no go line")
	img := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(goImage)
	testkit.True(t, img != nil, "no golang:X.Y build stage (FROM %q)", goImage)
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	testkit.True(t, num(img[1]) > num(goLine[1]) || num(img[1]) == num(goLine[1]) && num(img[2]) >= num(goLine[2]),
		"build stage %s is older than go.mod's go %s.%s", goImage, goLine[1], goLine[2])

	covered := func(rel string) bool {
		for _, c := range copied {
			c = strings.TrimSuffix(strings.TrimPrefix(c, "./"), "/")
			if c == "." || rel == c || strings.HasPrefix(rel, c+"/") {
				return true
			}
		}
		return false
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		testkit.True(t, covered(f), "the Dockerfile does not copy %s", f)
	}
	list := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if eq .Module.Path "`+testkit.ModulePath+`"}}{{.Dir}}{{end}}{{end}}`, "./clusterdemo")
	list.Dir = root
	out, err := list.Output()
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("the go command is not available")
	}
	testkit.NoError(t, err, "go list -deps ./clusterdemo")
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		testkit.NoError(t, err)
		testkit.True(t, covered(filepath.ToSlash(rel)), "the Dockerfile does not copy %s, which ./clusterdemo needs", rel)
	}
}

// docker compose config, when a Compose CLI that works without an engine is installed (the
// plugin, or docker-compose); skipped otherwise, the Go checks above stand alone.
func TestComposeConfigCLI(t *testing.T) {
	var cmd []string
	if exec.Command("docker", "compose", "version").Run() == nil {
		cmd = []string{"docker", "compose"}
	} else if _, err := exec.LookPath("docker-compose"); err == nil {
		cmd = []string{"docker-compose"}
	} else {
		t.Skip("no Compose CLI (docker compose plugin or docker-compose); docker-compose.yml is checked by TestComposeFile")
	}
	c := exec.Command(cmd[0], append(cmd[1:], "-f", "docker-compose.yml", "config", "-q")...)
	c.Dir = testkit.RepoRoot(t)
	out, err := c.CombinedOutput()
	testkit.NoError(t, err, "%s config -q: %s", strings.Join(cmd, " "), out)
}

// ---------------------------------------------------------------- process topology

// deployTopology is deploy/cluster.sh's topology, started on free loopback ports.
type deployTopology struct {
	lb     string   // "http://127.0.0.1:PORT", nginx
	nodes  []string // node1, node2, node3
	run    string   // run directory
	script string
	env    []string

	downOnce sync.Once
}

// requireNginx returns the nginx executable, skipping the test when there is none.
func requireNginx(t *testing.T) string {
	t.Helper()
	for _, c := range []string{"nginx", "/usr/sbin/nginx"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Skip("nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)")
	return ""
}

// buildClusterdemo builds ./clusterdemo for the test. Not with -race: the processes are what
// users run; the node's logic runs under -race in clusterdemo's own tests.
func buildClusterdemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "clusterdemo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./clusterdemo")
	cmd.Dir = testkit.RepoRoot(t)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./clusterdemo: %v\n%s", err, out)
	}
	t.Logf("built ./clusterdemo in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// startDeployTopology runs `deploy/cluster.sh up` on free ports and registers `down` (and a
// check that nothing is left running) at cleanup.
func startDeployTopology(t *testing.T) *deployTopology {
	t.Helper()
	nginx := requireNginx(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("redis-server is not installed: %v", err)
	}
	root := testkit.RepoRoot(t)
	bin := buildClusterdemo(t)
	tp := &deployTopology{
		nodes:  []string{"node1", "node2", "node3"},
		run:    t.TempDir(),
		script: filepath.Join(root, "deploy", "cluster.sh"),
	}
	lbPort := testkit.FreePort(t)
	var ports []string
	for range tp.nodes {
		ports = append(ports, strconv.Itoa(testkit.FreePort(t)))
	}
	tp.lb = fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	tp.env = append(os.Environ(),
		"IOSWARM_RUN_DIR="+tp.run,
		"LB_PORT="+strconv.Itoa(lbPort),
		"NODE_PORTS="+strings.Join(ports, " "),
		"REDIS_PORT="+strconv.Itoa(testkit.FreePort(t)),
		"REDIS_KEY=ioswarm-deploy",
		"CLUSTERDEMO_BIN="+bin,
		"NGINX_BIN="+nginx,
	)
	t.Cleanup(func() {
		if t.Failed() {
			tp.dumpLogs(t)
		}
		tp.down(t)
	})
	start := time.Now()
	out, err := tp.sh("up")
	t.Logf("cluster.sh up (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	testkit.NoError(t, err, "cluster.sh up")
	return tp
}

// sh runs deploy/cluster.sh with the topology's environment.
func (tp *deployTopology) sh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{tp.script}, args...)...)
	cmd.Env = tp.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pids returns the pid of every process the script recorded, by name.
func (tp *deployTopology) pids(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(tp.run, "pids", "*.pid"))
	testkit.NoError(t, err)
	out := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		testkit.NoError(t, err)
		fields := strings.Fields(string(b))
		testkit.True(t, len(fields) == 2, "%s: %q", f, b)
		pid, err := strconv.Atoi(fields[0])
		testkit.NoError(t, err, f)
		out[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	return out
}

// down stops the topology once and checks that no process it started is left.
func (tp *deployTopology) down(t *testing.T) {
	t.Helper()
	tp.downOnce.Do(func() {
		pids := tp.pids(t)
		out, err := tp.sh("down")
		if err != nil {
			t.Errorf("cluster.sh down: %v\n%s", err, out)
		}
		for name, pid := range pids {
			if processAlive(pid) {
				t.Errorf("%s (pid %d) still runs after cluster.sh down; killing it", name, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		left, _ := filepath.Glob(filepath.Join(tp.run, "pids", "*.pid"))
		if len(left) > 0 {
			t.Errorf("cluster.sh down left pid files: %v", left)
		}
	})
}

func (tp *deployTopology) dumpLogs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(tp.run, "logs", "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("--- %s (last lines)\n%s", filepath.Base(f), strings.Join(lines, "\n"))
	}
}

// processAlive reports whether pid runs; a zombie (exited, not yet reaped by its parent)
// does not.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if _, perr := os.Stat("/proc/self"); perr == nil {
			return false // Linux: no such process
		}
		return syscall.Kill(pid, 0) == nil
	}
	_, rest, _ := bytes.Cut(b, []byte(") "))
	return !bytes.HasPrefix(rest, []byte("Z")) && !bytes.HasPrefix(rest, []byte("X"))
}

// deployMember is a client of the topology and the node that welcomed it.
type deployMember struct {
	c    *testkit.Client
	node string
	key  string // its sticky key, if any
}

type deployWelcome struct {
	Node string `json:"node"`
	ID   string `json:"id"`
	Name string `json:"name"`
	Room string `json:"room"`
}

type deployPanel struct {
	Node  string `json:"node"`
	Nodes []struct {
		Node    string `json:"node"`
		Clients int    `json:"clients"`
		Up      bool   `json:"up"`
	} `json:"nodes"`
}

// states returns "node:up" or "node:down" for each row of the panel.
func (p deployPanel) states() []string {
	var out []string
	for _, n := range p.Nodes {
		s := n.Node + ":down"
		if n.Up {
			s = n.Node + ":up"
		}
		out = append(out, s)
	}
	return out
}

func deployCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// deployConnect connects a client through nginx with the given query (node= pins it,
// sticky= is its hash key) and returns it with its welcome; it is closed at cleanup.
func deployConnect(t *testing.T, drv *testkit.NodeClientDriver, tp *deployTopology, m mode, query map[string]string, room string) (*testkit.Client, deployWelcome) {
	t.Helper()
	ctx := deployCtx(t)
	c, err := drv.Connect(ctx, testkit.ConnectOptions{URL: tp.lb, Transports: m.transports, Query: query,
		Auth: map[string]string{"room": room}})
	testkit.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	_, err = c.WaitConnect(ctx)
	testkit.NoError(t, err, "connect through nginx with %v", query)
	var w deployWelcome
	deployNext(t, c, "welcome", &w)
	return c, w
}

func deployNext(t *testing.T, c *testkit.Client, event string, v any) {
	t.Helper()
	e, err := c.NextEvent(deployCtx(t), event)
	testkit.NoError(t, err)
	testkit.True(t, len(e.Raw) > 0, "%s without arguments", event)
	testkit.NoError(t, json.Unmarshal(e.Raw[0], v), "%s: %s", event, e.Raw[0])
}

func deployAsk(t *testing.T, c *testkit.Client, v any, event string, args ...any) {
	t.Helper()
	raw, err := c.EmitWithAckRaw(deployCtx(t), event, args...)
	testkit.NoError(t, err, "%s", event)
	testkit.True(t, len(raw) > 0, "ack of %s without arguments", event)
	testkit.NoError(t, json.Unmarshal(raw[0], v), "ack of %s: %s", event, raw[0])
}

func TestDeployProcessCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	tp := startDeployTopology(t)
	drv := testkit.NewNodeClientDriver(t)

	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { deployCrossNodes(t, tp, drv, m) })
	}
	if t.Failed() {
		return
	}
	t.Run("hang", func(t *testing.T) { deployHang(t, tp, drv) })
	t.Run("kill", func(t *testing.T) { deployKill(t, tp, drv) })
	t.Run("down", func(t *testing.T) {
		pids := tp.pids(t)
		testkit.Equal(t, len(pids), 5, "pid files: %v", pids) // redis, node1..3, nginx
		testkit.True(t, !processAlive(pids["node3"]), "node3 runs")
		tp.down(t)
		for name, pid := range pids {
			testkit.True(t, !processAlive(pid), "%s (pid %d) survived cluster.sh down", name, pid)
		}
		out, err := tp.sh("status")
		testkit.True(t, err != nil, "cluster.sh status after down: exit 0\n%s", out)
		testkit.True(t, !strings.Contains(out, "running"), "cluster.sh status after down:\n%s", out)
	})
	t.Logf("deploy topology test took %v", time.Since(start).Round(time.Millisecond))
}

// deployCrossNodes: pinned and hashed clients of one transport mode, all in one room; a
// message sent through node1 reaches all of them, on every node; the panel lists the three
// nodes.
func deployCrossNodes(t *testing.T, tp *deployTopology, drv *testkit.NodeClientDriver, m mode) {
	room := "deploy-" + m.name
	var members []deployMember
	for _, n := range tp.nodes {
		c, w := deployConnect(t, drv, tp, m, map[string]string{"node": n}, room)
		testkit.Equal(t, w.Node, n, "?node=%s pins the client", n)
		members = append(members, deployMember{c: c, node: w.Node})
	}
	// Clients without a pin spread over the nodes by their sticky key (12 keys all on one of
	// three nodes: p = 3^-11); one with no key at all is hashed on its address.
	hashed := map[string]int{}
	for i := range 12 {
		key := fmt.Sprintf("%s-%d", m.name, i)
		c, w := deployConnect(t, drv, tp, m, map[string]string{"sticky": key}, room)
		hashed[w.Node]++
		members = append(members, deployMember{c: c, node: w.Node, key: key})
	}
	c, w := deployConnect(t, drv, tp, m, nil, room)
	members = append(members, deployMember{c: c, node: w.Node})
	testkit.True(t, len(hashed) >= 2, "12 sticky keys all hashed to one node: %v", hashed)
	t.Logf("%s: hashed clients per node: %v", m.name, hashed)

	// The sessions stick: every later request of a client reaches the node that welcomed it
	// (over polling each is a new HTTP request through nginx).
	for _, mb := range members {
		var again deployWelcome
		deployAsk(t, mb.c, &again, "join", map[string]string{"room": room})
		testkit.Equal(t, again.Node, mb.node, "client %s (key %q) moved", mb.c.Handle(), mb.key)
	}

	// A message sent through node1 reaches every member, on every node.
	text := "hello from node1 over " + m.name
	var ack map[string]string
	deployAsk(t, members[0].c, &ack, "chat", map[string]string{"text": text})
	testkit.True(t, ack["id"] != "", "chat ack %v", ack)
	delivered := map[string]int{}
	for _, mb := range members {
		var msg struct{ ID, Text, Node, Room string }
		deployNext(t, mb.c, "chat", &msg)
		testkit.Equal(t, msg.ID, ack["id"])
		testkit.Equal(t, msg.Text, text)
		testkit.Equal(t, msg.Node, "node1", "the node the sender is connected to")
		delivered[mb.node]++
	}
	testkit.Equal(t, len(delivered), 3, "delivered by %v", delivered)

	// The panel lists the three nodes, up, with this mode's clients (a node reuses the
	// others' answers for a second: counts may lag that much).
	perNode := map[string]int{}
	for _, mb := range members {
		perNode[mb.node]++
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var p deployPanel
		deployAsk(t, members[1].c, &p, "cluster")
		testkit.Equal(t, p.Node, "node2")
		testkit.Equal(t, p.states(), []string{"node1:up", "node2:up", "node3:up"})
		counted := true
		for _, n := range p.Nodes {
			counted = counted && n.Clients >= perNode[n.Node]
		}
		if counted {
			break
		}
		testkit.True(t, time.Now().Before(deadline), "panel client counts %+v, this test has %v", p.Nodes, perNode)
		time.Sleep(200 * time.Millisecond)
	}
}

// deployHang: node2 stops answering (SIGSTOP: still subscribed, so still counted by the
// others) and shows as down once the 1.5 s wait for its answer is over; it is up again when it
// resumes.
func deployHang(t *testing.T, tp *deployTopology, drv *testkit.NodeClientDriver) {
	watcher, _ := deployConnect(t, drv, tp, modes[0], map[string]string{"node": "node1"}, "hang")
	// A node shows on a panel the nodes it has seen answer.
	deployPanelUntil(t, watcher, "three nodes up", []string{"node1:up", "node2:up", "node3:up"})
	pid := tp.pids(t)["node2"]
	testkit.NoError(t, syscall.Kill(pid, syscall.SIGSTOP), "stop node2 (pid %d)", pid)
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			testkit.NoError(t, syscall.Kill(pid, syscall.SIGCONT), "resume node2 (pid %d)", pid)
		}
	}
	t.Cleanup(resume)
	deployPanelUntil(t, watcher, "node2 down while it hangs", []string{"node1:up", "node2:down", "node3:up"})
	resume()
	deployPanelUntil(t, watcher, "node2 up once it resumes", []string{"node1:up", "node2:up", "node3:up"})
}

// deployPanelUntil asks the panel until it shows want (10 s at most).
func deployPanelUntil(t *testing.T, c *testkit.Client, what string, want []string) {
	t.Helper()
	start := time.Now()
	var p deployPanel
	for {
		deployAsk(t, c, &p, "cluster")
		if s := p.states(); strings.Join(s, " ") == strings.Join(want, " ") {
			t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		testkit.True(t, time.Since(start) < 10*time.Second, "%s: panel %v after 10 s", what, p.states())
		time.Sleep(200 * time.Millisecond)
	}
}

// deployKill: node3 is killed (SIGKILL, as a crash); its clients are disconnected, the panel
// shows it down, nginx sends its hashed clients elsewhere, and cluster.sh status reports it.
func deployKill(t *testing.T, tp *deployTopology, drv *testkit.NodeClientDriver) {
	polling := mode{name: "polling", transports: []string{"polling"}}
	watcher, _ := deployConnect(t, drv, tp, modes[0], map[string]string{"node": "node1"}, "kill")
	victim, _ := deployConnect(t, drv, tp, polling, map[string]string{"node": "node3"}, "kill")

	// A sticky key nginx hashes to node3.
	key := ""
	for i := 0; key == "" && i < 40; i++ {
		k := fmt.Sprintf("kill-%d", i)
		c, w := deployConnect(t, drv, tp, polling, map[string]string{"sticky": k}, "kill")
		if w.Node == "node3" {
			key = k
		}
		_ = c.Close(deployCtx(t))
	}
	testkit.True(t, key != "", "no sticky key out of 40 hashed to node3")

	var p deployPanel
	deployAsk(t, watcher, &p, "cluster")
	testkit.Equal(t, p.states(), []string{"node1:up", "node2:up", "node3:up"})

	pid := tp.pids(t)["node3"]
	testkit.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "kill node3 (pid %d)", pid)
	killed := time.Now()
	_, err := victim.WaitDisconnect(deployCtx(t))
	testkit.NoError(t, err, "node3's client was not disconnected")

	deadline := time.Now().Add(10 * time.Second)
	for {
		deployAsk(t, watcher, &p, "cluster")
		s := p.states()
		if len(s) >= 2 && s[0] == "node1:up" && s[1] == "node2:up" && (len(s) == 2 || len(s) == 3 && s[2] == "node3:down") {
			t.Logf("panel after the kill (%v): %v", time.Since(killed).Round(time.Millisecond), s)
			break
		}
		testkit.True(t, time.Now().Before(deadline), "panel 10 s after node3 was killed: %v", s)
		time.Sleep(200 * time.Millisecond)
	}

	// nginx fails over: the key of node3 now lands on another node.
	_, w := deployConnect(t, drv, tp, polling, map[string]string{"sticky": key}, "kill")
	testkit.True(t, w.Node == "node1" || w.Node == "node2", "sticky key %q after node3 died: welcomed by %q", key, w.Node)

	out, err := tp.sh("status")
	testkit.True(t, err != nil, "cluster.sh status with node3 dead: exit 0\n%s", out)
	testkit.True(t, regexp.MustCompile(`(?m)^node3\s+-\s+stopped`).MatchString(out), "cluster.sh status:\n%s", out)
	testkit.True(t, regexp.MustCompile(`(?m)^node1\s+\d+\s+running`).MatchString(out), "cluster.sh status:\n%s", out)
}

// ---------------------------------------------------------------- browser

// requireChromium returns the Chromium executable ($IOSWARM_CHROMIUM, else Debian's
// chromium), skipping the test when there is none.
func requireChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IOSWARM_CHROMIUM"); p != "" {
		return p
	}
	for _, c := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
	return ""
}

// browserLog logs to t until the test ends; Chromium's own output (noisy: D-Bus, GPU, …) is
// kept, the last lines of it, and logged only when the test fails.
type browserLog struct {
	mu     sync.Mutex
	t      *testing.T
	done   bool
	output []string
}

func (l *browserLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf(format, args...)
	}
}

// Write takes Chromium's output.
func (l *browserLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		l.output = append(l.output, sc.Text())
	}
	if n := len(l.output); n > 200 {
		l.output = append(l.output[:0:0], l.output[n-200:]...)
	}
	return len(p), nil
}

// stop ends the logging; after a failure it logs Chromium's output first.
func (l *browserLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t.Failed() && len(l.output) > 0 {
		l.t.Logf("chromium output (last lines):\n%s", strings.Join(l.output, "\n"))
	}
	l.done = true
}

// TestBrowserDemo opens the demo page through nginx in two browser contexts (separate
// cookies and storage, like two users), pinned to node1 and node2 by the page's ?node= hint,
// which the page passes on every Socket.IO request and nginx routes on. A message typed in
// one page appears in the other, labelled node1 → node2.
func TestBrowserDemo(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	tp := startDeployTopology(t)
	start := time.Now()

	log := &browserLog{t: t}
	t.Cleanup(log.stop)
	userData := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(userData),
		chromedp.CombinedOutput(log),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithErrorf(log.logf))
	defer cancelBrowser()
	testkit.NoError(t, chromedp.Do(browser), "start chromium")
	defer func() {
		// Close the browser gracefully (within ctx's deadline), then make sure no process
		// of it is left.
		if err := chromedp.Cancel(browser); err != nil && !errors.Is(err, context.Canceled) {
			log.logf("close chromium: %v", err)
		}
		cancelAlloc()
		for _, pid := range processesWith(userData) {
			t.Errorf("chromium process %d left running; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()

	type page struct {
		name, node string
		ctx        context.Context
	}
	var pages []*page
	for _, p := range []struct{ name, node string }{{"alice", "node1"}, {"bob", "node2"}} {
		pctx, pcancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer pcancel()
		testkit.NoError(t, chromedp.Do(pctx), "%s: new browser context", p.name)
		go func() {
			for m, err := range chromedp.Console(pctx) {
				if err != nil {
					return
				}
				log.logf("%s console: %s", p.name, m)
			}
		}()
		pages = append(pages, &page{name: p.name, node: p.node, ctx: pctx})
	}
	show := func(pg *page) string {
		s, _ := chromedp.Run(pg.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		return s
	}
	poll := func(pg *page, what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(pg.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: %s: %v\npage text:\n%s", pg.name, what, err, show(pg))
		}
	}

	for _, pg := range pages {
		url := fmt.Sprintf("%s/?node=%s&name=%s&room=browser", tp.lb, pg.node, pg.name)
		testkit.NoError(t, chromedp.Do(pg.ctx, chromedp.Navigate(url)), "%s: open %s", pg.name, url)
	}
	for _, pg := range pages {
		poll(pg, "connected to "+pg.node, fmt.Sprintf(`document.body.dataset.node === %q`, pg.node))
		// Polling first, then the upgrade to WebSocket through nginx.
		poll(pg, "upgraded to websocket", `document.getElementById("transport").textContent === "websocket"`)
		poll(pg, "three nodes up on the panel", `document.querySelectorAll("#nodes tr.up").length === 3`)
	}
	t.Logf("both pages connected and upgraded after %v", time.Since(start).Round(time.Millisecond))

	alice, bob := pages[0], pages[1]
	const text = "hello bob, from node1"
	testkit.NoError(t, chromedp.Do(alice.ctx,
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send")),
	), "alice sends")
	find := fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].find(li => li.dataset.text === %q)`, text)
	poll(bob, "alice's message", find+` !== undefined`)
	got, err := chromedp.Run(bob.ctx, chromedp.Evaluate[map[string]string](`(() => { const li = `+find+`;
		return {from: li.dataset.from, via: li.dataset.via, who: li.querySelector(".who").textContent,
			route: li.querySelector(".route").textContent}; })()`))
	testkit.NoError(t, err)
	testkit.Equal(t, got, map[string]string{"from": "node1", "via": "node2", "who": "alice", "route": "node1 → node2"})
	// And alice sees her own message, delivered by her node.
	poll(alice, "her own message", find+`?.dataset.via === "node1"`)
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// processesWith returns the pids of the live processes whose command line contains s.
func processesWith(s string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) && processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
