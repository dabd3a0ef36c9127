package redistest

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"
)

// TestStartRedisFallsBackToContainer hides redis-server: StartRedis must then use
// testcontainers-go, or skip saying why when no Docker engine answers — never fail.
func TestStartRedisFallsBackToContainer(t *testing.T) {
	t.Setenv("REDIS_ADDR", "")
	t.Setenv("PATH", t.TempDir())
	u, err := url.Parse(StartRedis(t)) // skips here when Docker is not available
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		t.Fatalf("container Redis at %s: %v", u.Host, err)
	}
	conn.Close()
}
