// Package integration holds the cross-language tests of ioswarm: the scenarios of the test
// application contract (docs/testapp-contract.md), driven by the official
// socket.io-client through internal/testkit.NodeClientDriver, plus bad-input tests at the
// HTTP and WebSocket level.
//
// # Targets
//
// Every scenario runs against a "target", a server implementing the contract:
//
//   - js: integration/node/testapp.js, the Node.js reference (socket.io 4.8.4);
//   - go: integration/testapp, built once per test binary (skipped while it does not exist).
//
// IOSWARM_TARGET selects them: "go" (the default), "js" or "all". Each scenario runs in three
// transport modes: WebSocket only, polling only, and the client default (polling, then the
// upgrade to WebSocket, which the harness checks happened).
//
//	cd integration && IOSWARM_TARGET=js go test -race ./...
//
// # Clusters
//
// TestCluster runs the contract rows that involve other clients or nodes on three nodes
// (n1, n2, n3) sharing one Redis (REDIS_ADDR, else a throw-away redis-server, else a
// testcontainers container where Docker runs — internal/redistest): Go only, and — in the default run too,
// when Node.js and the npm packages are there — mixed clusters with a Node.js reference node
// (js,go,go and go,js,go), so that requests go both ways between Go and Node.js.
// TestClusterFaults restarts Redis under traffic, hangs a node (SIGSTOP) and kills one
// (SIGKILL) during requests. Both need redis-server (skipped without it; .ci/run installs it).
// Both run on each Redis adapter (testapp -adapter on both sides): classic Pub/Sub with every
// layout in every mode, and the sharded Pub/Sub and Redis Streams adapters (Redis >= 7;
// @socket.io/redis-adapter's sharded mode and @socket.io/redis-streams-adapter on the Node.js
// side) on the Go-only cluster and the js,go,go one, in one mode; IOSWARM_ADAPTER (a
// comma-separated list: redis, redis-sharded, redis-streams) selects the adapters instead. On
// the last two, what differs by design is expected: all-rooms is local (Node's cluster adapter
// has no allRooms request), fetchSockets times out with the cluster adapter's text, and a
// Node.js node's requests wait a fixed 5 s instead of -requests-timeout.
//
// # Connection state recovery
//
// recovery_test.go checks recovery on one node (both targets) and across a mixed cluster (Go
// nodes with -recovery and a Node.js node; a Go node killed and started again).
// TestRollingRestart (rolling_test.go) restarts the three nodes of a cluster in turn (SIGTERM,
// SIGKILL, SIGTERM) under a numbered broadcast every 20 ms, with 30 WebSocket clients behind a
// TCP proxy and 30 polling clients behind nginx (sticky), and checks that every client keeps
// its session and gets every acknowledged broadcast once, in order; ROLLING_REPORT=file writes
// its figures as JSON, ROLLING_MODE=none|blip checks the harness itself.
//
// # Other programs
//
// The deployment tests (deploy_*_test.go) check docker-compose.yml and run deploy/cluster.sh
// (redis-server, three clusterdemo nodes, nginx) and headless Chromium; the load tool's smoke
// test runs integration/loadtest, and TestLoadtestCompare runs its -compare mode (Redis and a
// 2-node cluster of each implementation, 50 clients, 1 s phases). Set IOSWARM_DRIVER_TRACE=1 to log every line exchanged with
// the Node.js client driver.
//
// The package has no non-test code. integration/ is a Go module of its own
// (github.com/ioswarm/ioswarm/integration, with a replace of the library), so that what
// only these tests need (testcontainers, chromedp, yaml) stays out of the library's go.mod;
// integration/node has its own go.mod so that Go tooling ignores node_modules.
package integration
