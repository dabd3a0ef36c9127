package testkit

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// StartRedis starts a throw-away redis-server on a free loopback port (no persistence) for
// the test and returns its URL, "redis://127.0.0.1:PORT/0". It skips the test when
// redis-server is not installed. The server is stopped at cleanup.
func StartRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("testkit: redis-server is not installed: %v", err)
	}
	port := strconv.Itoa(FreePort(t))
	p := startProcess(t, context.Background(), func(line string) (string, bool) {
		return "127.0.0.1:" + port, strings.Contains(line, "Ready to accept connections")
	}, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	return "redis://" + p.Addr + "/0"
}
