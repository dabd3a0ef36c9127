// Package redisstreams is a cluster adapter over Redis Streams,
// wire-compatible with Node's @socket.io/redis-streams-adapter 0.3: Go and
// Node servers with the same options form one cluster.
//
// # Overview
//
// Every namespace writes to one stream (Options.StreamName, "socket.io";
// Options.StreamCount spreads namespaces over several) with
//
//	XADD <stream> MAXLEN ~ <MaxLen> * uid <uid> nsp <nsp> type <n> data <data>
//
// where type is the decimal ClusterAdapter message type and data the JSON
// of the message's data, or base64 of its msgpack when it holds binary.
// Each node reads each stream on a connection of its own with XREAD BLOCK
// COUNT, from where the stream ended when the node started. What every
// node must apply in order goes through the stream: broadcasts without
// acks, socketsJoin, socketsLeave, disconnectSockets. What only matters
// now goes over pub/sub, whole messages in msgpack: broadcasts with acks,
// serverSideEmit and fetchSockets on <prefix>#<nsp>#, every answer on the
// requester's <prefix>#<nsp>#<uid>#; the nodes are counted with PUBSUB
// NUMSUB of the first (SHARDNUMSUB with Options.UseShardedPubSub). The
// protocol notes are docs/protocol/redis-adapter.md, Part C.
//
// # Clustering
//
// A node reads the stream from the id of the last entry it handed on, so
// after Redis restarts, fails over or is unreachable for a while, it gets
// every entry that reached the stream meanwhile (MaxLen permitting);
// messages that could not be written while Redis was away are dropped
// and logged, as are the pub/sub ones (requests then time out).
//
// # Concurrency
//
// A Factory and its adapters are safe for concurrent use. Every queue a
// remote node can grow is bounded: the publish queue in count and bytes
// (ErrQueueFull), each message in bytes (ErrMessageTooLarge), the
// serverSideEmit listeners waiting to run in count. Close ends every
// goroutine, a blocked XREAD at once (CLIENT UNBLOCK on its connection).
//
// Every wait is bounded when Redis does not answer, provided the client
// has ContextTimeoutEnabled (go-redis otherwise ignores the deadlines of
// the contexts and applies its own: ReadTimeout, BlockTime + 10 s for an
// XREAD): requests and commands by RequestsTimeout, an XREAD by BlockTime
// + 1 s. Close gives Redis RequestsTimeout at most to take what is queued,
// and none once a write timed out; it returns within RequestsTimeout, or
// BlockTime + 1 s when longer, of its start, or at its ctx's end (the
// goroutines then end by themselves once Redis answers or the client is
// closed).
//
// # Connection state recovery
//
// With recovery on (server.Config.ConnectionStateRecovery) the adapter is
// an adapter.Recoverer, as Node's: a logged broadcast waits for its entry
// id, the offset its clients get; the session of a socket that left for a
// reason that allows recovery is kept under <SessionKeyPrefix><pid>
// (base64 msgpack, PX the window), and any node — Go or Node — restores
// it: GET and DEL in one MULTI, XRANGE checks that the client's offset is
// still in the stream, then reads what came after it. As on Node, the
// sessions of a node that was killed, not stopped, are lost.
//
// # Compatibility
//
// Not supported: Node's onlyPlaintext option. allRooms answers with the
// local rooms, as on Node's ClusterAdapter.
package redisstreams
