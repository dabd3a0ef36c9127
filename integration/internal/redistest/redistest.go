// Package redistest gives the integration tests a Redis: REDIS_ADDR, else a throw-away
// redis-server (both through testkit.StartRedisOr), else, on machines with neither but
// with a Docker engine, a throw-away Redis container through testcontainers-go.
//
// It lives in the integration module so that the library's module does not depend on
// testcontainers-go (and the Docker client it brings); the library's own tests use
// testkit.StartRedis, which skips when neither REDIS_ADDR nor redis-server is there.
package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Image is the Redis image Container runs.
const Image = "redis:7-alpine"

// StartRedis returns the URL of a real Redis for the test, "redis://HOST:PORT/0": the one
// at REDIS_ADDR when that is set, otherwise a throw-away redis-server on a free loopback
// port, otherwise a Container. It skips the test, saying why, when none of these is
// available (.ci/run installs redis-server, so CI never skips).
func StartRedis(t testing.TB) string {
	t.Helper()
	return testkit.StartRedisOr(t, Container)
}

// Container starts a throw-away Redis (no persistence) in Docker through
// testcontainers-go, terminated at cleanup, and returns its URL. It skips the test when
// no Docker engine answers.
func Container(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        Image,
			Cmd:          []string{"redis-server", "--save", "", "--appendonly", "no"},
			ExposedPorts: []string{"6379/tcp"},
			WaitingFor:   wait.ForListeningPort("6379/tcp").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
	if err != nil {
		t.Skipf("redistest: no Redis for this test: REDIS_ADDR is unset, redis-server is not installed, and Docker is not available (%v)", err)
	}
	t.Cleanup(func() { _ = testcontainers.TerminateContainer(c) })
	host, err := c.Host(ctx)
	if err != nil {
		t.Fatalf("redistest: redis container host: %v", err)
	}
	port, err := c.MappedPort(ctx, "6379/tcp")
	if err != nil {
		t.Fatalf("redistest: redis container port: %v", err)
	}
	return fmt.Sprintf("redis://%s:%s/0", host, port.Port())
}
