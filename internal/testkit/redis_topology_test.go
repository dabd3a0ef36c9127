package testkit

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestStartRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := StartRedisCluster(t, 3)
	if len(addrs) != 3 {
		t.Fatalf("addrs: %v", addrs)
	}
	_, cli := redisBinaries(t)
	out, err := redisCommand(cli, addrs[0], "CLUSTER", "INFO")
	if err != nil || !strings.Contains(out, "cluster_known_nodes:3") || !strings.Contains(out, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO: %v\n%s", err, out)
	}
}

func TestStartRedisSentinel(t *testing.T) {
	t.Parallel()
	name, addrs := StartRedisSentinel(t)
	if name != "mymaster" || len(addrs) != 1 {
		t.Fatalf("%q %v", name, addrs)
	}
	_, cli := redisBinaries(t)
	out, err := redisCommand(cli, addrs[0], "SENTINEL", "MASTERS")
	if err != nil || !strings.Contains(out, name) {
		t.Fatalf("SENTINEL MASTERS: %v\n%s", err, out)
	}
}

func TestParseClusterNodes(t *testing.T) {
	t.Parallel()
	out := "07c3 127.0.0.1:30004@31004,host slave e7d1 0 1426238317239 4 connected\n" +
		"e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 6000 [5461->-abcd]\n" +
		"67ed 127.0.0.1:30002@31002 master,fail - 0 1426238316232 2 disconnected 5461-10922\n"
	nodes, err := parseClusterNodes(out)
	Equal(t, err, nil)
	Equal(t, len(nodes), 3)
	Equal(t, nodes[0].Addr, "127.0.0.1:30004")
	Equal(t, nodes[0].Master, "e7d1")
	True(t, nodes[0].HasFlag("slave") && nodes[0].Healthy, "replica: %+v", nodes[0])
	Equal(t, nodes[1].Slots, [][2]int{{0, 5460}, {6000, 6000}})
	True(t, nodes[1].Serves(6000) && !nodes[1].Serves(5461), "slots: %+v", nodes[1])
	True(t, !nodes[2].Healthy, "failed master: %+v", nodes[2])
}

func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	c := StartRedisClusterWithReplicas(t, 3, 1)
	Equal(t, len(c.Addrs), 6)
	masters := c.Masters(t)
	Equal(t, len(masters), 3)
	for addr, replicas := range masters {
		Equal(t, replicas, 1, "replicas of %s", addr)
	}
	slot := c.KeySlot(t, "socket.io#/#")
	Equal(t, c.KeySlot(t, "a{b}c"), c.KeySlot(t, "b"))

	old := c.MasterOf(t, slot)
	c.Kill(t, old)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	c.WaitHealthy(t, ctx)
	t.Logf("failover took %v", time.Since(start))
	promoted := c.MasterOf(t, slot)
	True(t, promoted != old, "slot %d still on %s", slot, old)
	Equal(t, c.Masters(t)[promoted], 0)
}
