package testkit

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// skipRecorder records the message of a Skipf before skipping.
type skipRecorder struct {
	testing.TB
	msg string
}

func (r *skipRecorder) Skipf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	r.TB.SkipNow()
}

// startRedisIn runs StartRedisOr in the subtest name and reports what it returned, whether the
// subtest was skipped and with which message, and how often fallback ran.
func startRedisIn(t *testing.T, name string, fallback func(testing.TB) string) (u string, skipped bool, msg string, fallbacks int) {
	t.Helper()
	var fb func(testing.TB) string
	if fallback != nil {
		fb = func(tb testing.TB) string { fallbacks++; return fallback(tb) }
	}
	t.Run(name, func(t *testing.T) {
		rec := &skipRecorder{TB: t}
		defer func() { skipped, msg = t.Skipped(), rec.msg }()
		u = StartRedisOr(rec, fb)
	})
	return u, skipped, msg, fallbacks
}

func TestStartRedisAddr(t *testing.T) {
	t.Setenv("REDIS_ADDR", " redis.example:6390 ")
	u, skipped, _, fallbacks := startRedisIn(t, "fallback", func(testing.TB) string { return "redis://fallback:1/0" })
	True(t, !skipped, "skipped")
	Equal(t, u, "redis://redis.example:6390/0")
	Equal(t, fallbacks, 0)
}

// Without REDIS_ADDR and redis-server (PATH hidden), StartRedis skips, saying what to
// install; StartRedisOr hands over to its fallback.
func TestStartRedisWithoutRedis(t *testing.T) {
	t.Setenv("REDIS_ADDR", "")
	t.Setenv("PATH", t.TempDir())

	_, skipped, msg, _ := startRedisIn(t, "no fallback", nil)
	True(t, skipped, "StartRedis without REDIS_ADDR and redis-server did not skip")
	for _, want := range []string{"REDIS_ADDR", "redis-server is not installed", "apt-get install redis-server"} {
		True(t, strings.Contains(msg, want), "skip message %q lacks %q", msg, want)
	}

	u, skipped, _, fallbacks := startRedisIn(t, "fallback", func(testing.TB) string { return "redis://fallback:1/0" })
	True(t, !skipped, "skipped")
	Equal(t, u, "redis://fallback:1/0")
	Equal(t, fallbacks, 1)
}

// With redis-server installed, StartRedisOr starts one on a free loopback port and does not
// run the fallback.
func TestStartRedisServerFirst(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("redis-server is not installed: %v", err)
	}
	t.Setenv("REDIS_ADDR", "")
	u := StartRedisOr(t, func(testing.TB) string {
		t.Error("the fallback ran although redis-server is installed")
		return ""
	})
	pu, err := url.Parse(u)
	NoError(t, err)
	host, _, err := net.SplitHostPort(pu.Host)
	NoError(t, err)
	Equal(t, host, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", pu.Host)
	NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Write([]byte("PING\r\n"))
	NoError(t, err)
	buf := make([]byte, 7)
	_, err = io.ReadFull(c, buf)
	NoError(t, err)
	Equal(t, string(buf), "+PONG\r\n")
}
