// Package cluster is what the Redis adapters share, below them and above
// the in-memory adapter:
//
//   - the wire codecs: msgpack read and written as notepack.io and
//     @msgpack/msgpack do (mpreader.go, mpwriter.go), JSON written as
//     JavaScript writes it (jsjson.go, wire.go);
//   - the bookkeeping of requests that wait for other nodes' answers and of
//     broadcasts with acks (pending.go, requests.go), the runner of
//     serverSideEmit listeners (events.go), and the bounded publish queue
//     (queue.go);
//   - socket.io-adapter's ClusterAdapter (adapter.go, receive.go,
//     messages.go, json.go): the adapter of one namespace, whose messages
//     a Transport carries — shard channels for the sharded adapter
//     (adapter/redis), a stream and pub/sub for adapter/redisstreams.
//
// Its exported names serve those packages only; the internal path keeps
// them off the module's API. Locks: LOCKING.md, "adapter/internal/cluster".
package cluster
