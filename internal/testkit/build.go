package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Go implementation of the test application contract is the package TestappPackage
// of the integration module, which lives in the directory IntegrationDir of the
// repository (a module of its own, github.com/ioswarm/ioswarm/integration, so that the
// library's go.mod does not list what only the cross-process tests need).
const (
	IntegrationDir = "integration"
	TestappPackage = "./testapp"
)

var (
	buildMu   sync.Mutex
	buildDone bool
	buildBin  string
	buildSkip string
	buildFail string
	buildDirs []string
)

// TestappExists reports whether integration/testapp holds Go files.
func TestappExists(t testing.TB) bool {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(RepoRoot(t), IntegrationDir, "testapp", "*.go"))
	for _, m := range matches {
		if !strings.HasSuffix(m, "_test.go") {
			return true
		}
	}
	return false
}

// BuildTestapp builds integration/testapp once per test binary (go build ./testapp in the
// integration module's directory), into a temporary directory, and returns the path of the binary. When the test binary runs with -race the
// testapp is built with -race too. It skips the test when the package does not exist yet and
// fails it when the build fails. Call Main from TestMain to remove the binary at the end.
func BuildTestapp(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if !buildDone {
		buildDone = true
		buildBin, buildSkip, buildFail = buildTestapp(t)
	}
	if buildSkip != "" {
		t.Skip(buildSkip)
	}
	if buildFail != "" {
		t.Fatal(buildFail)
	}
	return buildBin
}

func buildTestapp(t testing.TB) (bin, skip, fail string) {
	dir := filepath.Join(RepoRoot(t), IntegrationDir)
	if !TestappExists(t) {
		return "", "testkit: integration/testapp does not exist yet", ""
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "testkit: the go command is not available to build integration/testapp", ""
	}
	tmp, err := os.MkdirTemp("", "ioswarm-testapp-")
	if err != nil {
		return "", "", "testkit: " + err.Error()
	}
	buildDirs = append(buildDirs, tmp)
	bin = filepath.Join(tmp, "testapp")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, TestappPackage)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", "testkit: go " + strings.Join(args, " ") + " (in " + dir + "): " + err.Error() + "\n" + string(out)
	}
	t.Logf("testkit: built integration/testapp in %v", time.Since(start).Round(time.Millisecond))
	return bin, "", ""
}

// Main runs the tests and then removes what BuildTestapp built. Use it as
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	buildMu.Lock()
	for _, d := range buildDirs {
		_ = os.RemoveAll(d)
	}
	buildMu.Unlock()
	os.Exit(code)
}
