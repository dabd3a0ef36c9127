package testkit

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// StartRedis returns the URL of a real Redis for the test, "redis://HOST:PORT/0": the one
// at REDIS_ADDR (host:port) when that is set (tests sharing it must use their own channel
// keys); otherwise a throw-away redis-server on a free loopback port (no persistence),
// stopped at cleanup. It skips the test, saying why, when neither is available (.ci/run
// installs redis-server, so CI never skips). The library's module does not depend on
// Docker: the integration module's tests use StartRedisOr with a testcontainers-go Redis
// as the fallback.
func StartRedis(t testing.TB) string {
	t.Helper()
	return StartRedisOr(t, nil)
}

// StartRedisOr is StartRedis with a last resort: when REDIS_ADDR is unset and redis-server
// is not installed it returns fallback(t) (which may skip the test itself), or skips the
// test when fallback is nil.
func StartRedisOr(t testing.TB, fallback func(testing.TB) string) string {
	t.Helper()
	if addr := strings.TrimSpace(os.Getenv("REDIS_ADDR")); addr != "" {
		return "redis://" + addr + "/0"
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if fallback != nil {
			return fallback(t)
		}
		t.Skipf("testkit: no Redis for this test: REDIS_ADDR is unset and redis-server is not installed (%v); "+
			"install it (Debian: apt-get install redis-server) or set REDIS_ADDR=host:port", err)
	}
	return StartRedisServer(t).URL()
}

// RedisServer is a throw-away redis-server that a test may stop and start again on the
// same port, to simulate an outage. Its methods are safe for concurrent use.
type RedisServer struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	t    testing.TB
	bin  string
	port string
	mu   sync.Mutex
	proc *Process
}

// StartRedisServer starts a redis-server on a free loopback port (no persistence),
// stopped at cleanup; it ignores REDIS_ADDR. It skips the test when redis-server is not
// installed.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("testkit: redis-server is not installed: %v", err)
	}
	port := strconv.Itoa(FreePort(t))
	r := &RedisServer{Addr: "127.0.0.1:" + port, t: t, bin: bin, port: port}
	r.Start()
	return r
}

// URL is "redis://" + Addr + "/0".
func (r *RedisServer) URL() string { return "redis://" + r.Addr + "/0" }

// Start starts the server again after Stop (it does nothing while it runs).
func (r *RedisServer) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return
	}
	r.proc = startProcess(r.t, context.Background(), func(line string) (string, bool) {
		return r.Addr, strings.Contains(line, "Ready to accept connections")
	}, r.bin, "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
}

// Stop stops the server (SIGTERM) and waits for it to exit; clients see their
// connections close.
func (r *RedisServer) Stop() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	if err := r.proc.Stop(); err != nil {
		r.t.Errorf("testkit: %v", err)
	}
	r.proc = nil
}

// Freeze stops the server process (SIGSTOP) without closing its connections:
// clients see a Redis that accepts bytes and never answers. Thaw resumes it;
// the test's cleanup thaws it too, so that it can be stopped.
func (r *RedisServer) Freeze() {
	r.t.Helper()
	r.signal(syscall.SIGSTOP)
	r.t.Cleanup(r.Thaw)
}

// Thaw resumes a frozen server (SIGCONT).
func (r *RedisServer) Thaw() { r.signal(syscall.SIGCONT) }

func (r *RedisServer) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		_ = syscall.Kill(r.proc.Pid(), sig)
	}
}
