package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// topologyTimeout bounds the wait for a Redis Cluster or a Sentinel to be ready.
const topologyTimeout = 30 * time.Second

// StartRedisCluster starts a Redis Cluster of masters master-only nodes (no replicas) on
// free loopback ports, with their node files in a temp dir and no persistence, joins them
// with redis-cli --cluster create, and waits until every node reports cluster_state:ok. It
// returns the nodes' addresses ("127.0.0.1:PORT"); the nodes are stopped at cleanup. It
// skips the test when redis-server or redis-cli is not installed. Redis Cluster needs at
// least 3 masters.
func StartRedisCluster(t testing.TB, masters int) []string {
	t.Helper()
	return startRedisCluster(t, masters, 0, 2000).Addrs
}

// startRedisCluster starts masters masters with replicas replicas each, with
// cluster-node-timeout nodeTimeout (ms), and waits until the cluster is ok and every
// replica is in sync with its master.
func startRedisCluster(t testing.TB, masters, replicas, nodeTimeout int) *RedisCluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("testkit: a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	server, cli := redisBinaries(t)
	dir := t.TempDir()
	c := &RedisCluster{cli: cli, procs: map[string]*Process{}, killed: map[string]bool{}}
	c.Addrs = make([]string, masters*(1+replicas))
	for i := range c.Addrs {
		port := strconv.Itoa(FreePort(t))
		// The bus port defaults to port+10000, which may be taken or out of range.
		busPort := strconv.Itoa(FreePort(t))
		addr := "127.0.0.1:" + port
		c.Addrs[i] = addr
		c.procs[addr] = startProcess(t, context.Background(), func(line string) (string, bool) {
			return addr, strings.Contains(line, "Ready to accept connections")
		}, server,
			"--port", port, "--bind", "127.0.0.1", "--cluster-port", busPort,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"),
			"--cluster-node-timeout", strconv.Itoa(nodeTimeout),
			// A replica may take over however long ago it last heard from its
			// master: a test kills masters whose replicas synced a moment ago.
			"--cluster-replica-validity-factor", "0",
			// Replicas sync at once, not after the default 5 s wait for others.
			"--repl-diskless-sync-delay", "0",
			"--dir", dir, "--save", "", "--appendonly", "no")
	}

	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testkit: redis-cli --cluster create: %v\n%s", err, out)
	}
	known := "cluster_known_nodes:" + strconv.Itoa(len(c.Addrs))
	for _, addr := range c.Addrs {
		waitFor(t, ctx, "cluster_state:ok on "+addr, func() bool {
			info, err := redisCommand(cli, addr, "CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, known)
		})
		// A replica that never synced cannot be promoted.
		waitFor(t, ctx, "replication on "+addr, func() bool {
			info, err := redisCommand(cli, addr, "INFO", "replication")
			return err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up"))
		})
		// Every node's view has every replica in place (gossip lags behind
		// the replication link: Masters read a view missing one).
		waitFor(t, ctx, "replicas in the view of "+addr, func() bool {
			out, err := redisCommand(cli, addr, "CLUSTER", "NODES")
			if err != nil {
				return false
			}
			nodes, err := parseClusterNodes(out)
			if err != nil {
				return false
			}
			healthyReplicas := 0
			for _, n := range nodes {
				if n.HasFlag("slave") && n.Healthy && n.Master != "-" {
					healthyReplicas++
				}
			}
			return healthyReplicas == masters*replicas
		})
	}
	return c
}

// StartRedisSentinel starts a Redis master and one Sentinel monitoring it (quorum 1) on
// free loopback ports, in a temp dir, without persistence, and waits until the Sentinel
// reports the master. It returns the master's name ("mymaster") and the Sentinel's
// addresses; both servers are stopped at cleanup. It skips the test when redis-server or
// redis-cli is not installed.
func StartRedisSentinel(t testing.TB) (masterName string, sentinelAddrs []string) {
	t.Helper()
	server, cli := redisBinaries(t)
	masterName = "mymaster"
	master := StartRedisServer(t)
	_, masterPort, _ := net.SplitHostPort(master.Addr)

	dir := t.TempDir()
	port := strconv.Itoa(FreePort(t))
	conf := filepath.Join(dir, "sentinel-"+port+".conf")
	config := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\n"+
		"sentinel monitor %s 127.0.0.1 %s 1\n"+
		"sentinel down-after-milliseconds %s 1000\n"+
		"sentinel failover-timeout %s 5000\n",
		port, dir, masterName, masterPort, masterName, masterName)
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		t.Fatalf("testkit: sentinel config: %v", err)
	}
	addr := "127.0.0.1:" + port
	startProcess(t, context.Background(), func(line string) (string, bool) {
		return addr, strings.Contains(line, "+monitor master")
	}, server, conf, "--sentinel")

	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	waitFor(t, ctx, "sentinel "+addr+" reporting "+masterName, func() bool {
		got, err := redisCommand(cli, addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
		return err == nil && strings.Contains(got, masterPort)
	})
	return masterName, []string{addr}
}

// redisBinaries returns the paths of redis-server and redis-cli, or skips the test.
func redisBinaries(t testing.TB) (server, cli string) {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("testkit: redis-server is not installed: %v", err)
	}
	cli, err = exec.LookPath("redis-cli")
	if err != nil {
		t.Skipf("testkit: redis-cli is not installed: %v", err)
	}
	return server, cli
}

// waitFor polls cond every 50 ms until it holds, failing the test when ctx ends first.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("testkit: waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redisCommand runs one command on addr with redis-cli (at cli) and returns its output.
func redisCommand(cli, addr string, args ...string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return string(out), err
}
