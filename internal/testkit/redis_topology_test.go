package testkit

import (
	"strings"
	"testing"
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
