package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

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
	// ./clusterdemo is a package of the library's module, not of this one (integration/ is a
	// module of its own): go list runs in the repository root, where the image builds it.
	list := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if eq .Module.Path "`+testkit.ModulePath+`"}}{{.Dir}}{{end}}{{end}}`, "./clusterdemo")
	list.Dir = root
	out, err := list.Output()
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("the go command is not available")
	}
	var stderr []byte
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		stderr = exit.Stderr
	}
	testkit.NoError(t, err, "go list -deps ./clusterdemo in %s: %s", root, stderr)
	dirs := strings.Fields(string(out))
	testkit.True(t, len(dirs) > 1, "go list -deps ./clusterdemo in %s lists no package of %s: %q", root, testkit.ModulePath, out)
	for _, dir := range dirs {
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
