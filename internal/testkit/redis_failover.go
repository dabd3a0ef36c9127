package testkit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// RedisCluster is a Redis Cluster started by StartRedisClusterWithReplicas, whose nodes a
// test may kill to force a failover. Its methods are safe for concurrent use.
type RedisCluster struct {
	// Addrs are the addresses of every node ("127.0.0.1:PORT"), masters and replicas, in
	// the order given to redis-cli --cluster create.
	Addrs []string

	cli    string
	procs  map[string]*Process // by address; not modified after start
	mu     sync.Mutex
	killed map[string]bool
}

// StartRedisClusterWithReplicas starts a Redis Cluster of masters masters with replicas
// replicas each (redis-cli --cluster create --cluster-replicas), as StartRedisCluster does,
// and waits until every replica is in sync with its master. The nodes have a
// cluster-node-timeout of 1 s and promote a replica whatever its data's age, so that a
// killed master is replaced within a few seconds (replicas > 0), or the cluster reports
// cluster_state:fail within as long (replicas == 0). The nodes are stopped at cleanup. It
// skips the test when redis-server or redis-cli is not installed.
func StartRedisClusterWithReplicas(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	return startRedisCluster(t, masters, replicas, 1000)
}

// Kill kills the node at addr (SIGKILL, as a crash would), and waits until it is gone.
// The node is not restarted.
func (c *RedisCluster) Kill(t testing.TB, addr string) {
	t.Helper()
	c.takeDown(t, addr).Kill()
}

// Hang stops the node at addr (SIGSTOP): it keeps its connections open and answers
// nothing, as a hung server does, until the test ends (it is continued, then stopped, at
// cleanup). For the cluster it is gone, as a killed node is: a replica takes over.
func (c *RedisCluster) Hang(t testing.TB, addr string) {
	t.Helper()
	p := c.takeDown(t, addr)
	if err := syscall.Kill(p.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatalf("testkit: stop %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(p.Pid(), syscall.SIGCONT) })
}

// takeDown returns the process of the node at addr, counted from now on as gone (not
// live).
func (c *RedisCluster) takeDown(t testing.TB, addr string) *Process {
	t.Helper()
	p := c.procs[addr]
	if p == nil {
		t.Fatalf("testkit: no Redis Cluster node at %s", addr)
	}
	c.mu.Lock()
	c.killed[addr] = true
	c.mu.Unlock()
	return p
}

// live returns the nodes not killed.
func (c *RedisCluster) live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.Addrs {
		if !c.killed[a] {
			out = append(out, a)
		}
	}
	return out
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	Addr    string   // "127.0.0.1:PORT"
	Flags   []string // myself, master, slave, fail, fail?…
	Master  string   // the master's node id, of a replica
	ID      string
	Slots   [][2]int // ranges of a master, inclusive
	Healthy bool     // neither fail nor fail?
}

// HasFlag reports whether the node has flag.
func (n ClusterNode) HasFlag(flag string) bool {
	for _, f := range n.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Serves reports whether the node is a master of slot.
func (n ClusterNode) Serves(slot int) bool {
	for _, r := range n.Slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// Nodes returns the cluster as seen by the first live node that answers CLUSTER NODES.
func (c *RedisCluster) Nodes() ([]ClusterNode, error) {
	var lastErr error
	for _, addr := range c.live() {
		out, err := redisCommand(c.cli, addr, "CLUSTER", "NODES")
		if err != nil {
			lastErr = fmt.Errorf("%s: %w: %s", addr, err, out)
			continue
		}
		return parseClusterNodes(out)
	}
	return nil, fmt.Errorf("testkit: no Redis Cluster node answers CLUSTER NODES: %w", lastErr)
}

// parseClusterNodes parses the reply of CLUSTER NODES:
// "<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>…".
func parseClusterNodes(out string) ([]ClusterNode, error) {
	var nodes []ClusterNode
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("testkit: CLUSTER NODES line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := ClusterNode{ID: f[0], Addr: addr, Flags: strings.Split(f[2], ","), Master: f[3]}
		n.Healthy = !n.HasFlag("fail") && !n.HasFlag("fail?")
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				continue // a slot being migrated
			}
			lo, hi, isRange := strings.Cut(s, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("testkit: CLUSTER NODES slots %q", s)
			}
			n.Slots = append(n.Slots, [2]int{l, h})
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// MasterOf returns the address of the master of slot, as a live node sees it now.
func (c *RedisCluster) MasterOf(t testing.TB, slot int) string {
	t.Helper()
	nodes, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.HasFlag("master") && n.Serves(slot) {
			return n.Addr
		}
	}
	t.Fatalf("testkit: no master serves slot %d", slot)
	return ""
}

// Masters returns the addresses of the masters that serve slots, as a live node sees them
// now, with the number of their healthy replicas.
func (c *RedisCluster) Masters(t testing.TB) map[string]int {
	t.Helper()
	nodes, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	ids := map[string]string{}
	for _, n := range nodes {
		if n.HasFlag("master") && len(n.Slots) > 0 {
			out[n.Addr] = 0
			ids[n.ID] = n.Addr
		}
	}
	for _, n := range nodes {
		if n.HasFlag("slave") && n.Healthy {
			if addr, ok := ids[n.Master]; ok {
				out[addr]++
			}
		}
	}
	return out
}

// WaitHealthy waits until every live node reports cluster_state:ok and sees, for every
// slot, a healthy master that is not a killed node: after Kill, until a replica took over.
// It fails the test when ctx ends first.
func (c *RedisCluster) WaitHealthy(t testing.TB, ctx context.Context) {
	t.Helper()
	for _, addr := range c.live() {
		waitFor(t, ctx, "a healthy cluster seen from "+addr, func() bool {
			info, err := redisCommand(c.cli, addr, "CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			out, err := redisCommand(c.cli, addr, "CLUSTER", "NODES")
			if err != nil {
				return false
			}
			nodes, err := parseClusterNodes(out)
			if err != nil {
				return false
			}
			covered := 0
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, n := range nodes {
				if n.HasFlag("master") && n.Healthy && !c.killed[n.Addr] {
					for _, r := range n.Slots {
						covered += r[1] - r[0] + 1
					}
				}
			}
			return covered == 16384
		})
	}
}

// KeySlot asks a live node for the hash slot of a key (or channel): CLUSTER KEYSLOT, so
// that a test checks its own computation against Redis's.
func (c *RedisCluster) KeySlot(t testing.TB, key string) int {
	t.Helper()
	for _, addr := range c.live() {
		out, err := redisCommand(c.cli, addr, "CLUSTER", "KEYSLOT", key)
		if err != nil {
			continue
		}
		slot, err := strconv.Atoi(strings.TrimSpace(out))
		if err == nil {
			return slot
		}
	}
	t.Fatalf("testkit: no live Redis Cluster node answered CLUSTER KEYSLOT %q", key)
	return 0
}

// WaitState waits until every live node reports cluster_state:<state> ("ok" or "fail"),
// failing the test when ctx ends first. Without replicas, a killed master makes every node
// report fail within about twice cluster-node-timeout.
func (c *RedisCluster) WaitState(t testing.TB, ctx context.Context, state string) {
	t.Helper()
	for _, addr := range c.live() {
		waitFor(t, ctx, "cluster_state:"+state+" on "+addr, func() bool {
			info, err := redisCommand(c.cli, addr, "CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:"+state)
		})
	}
}
