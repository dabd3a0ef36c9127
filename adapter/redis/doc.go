// Package redis is the cluster adapter of ioswarm: servers sharing one Redis
// reach each other's clients, and interoperate with Node.js servers running
// @socket.io/redis-adapter 8.x (the classic adapter, createAdapter) on the
// same Redis and channel prefix — or, with [NewSharded], its sharded Pub/Sub
// adapter (createShardedAdapter) on Redis 7 and later.
//
// # Overview
//
// A [Factory] is the adapter.Factory of one server (one node); the server
// closes it. The caller owns the go-redis client, which may be a
// *goredis.Client, a failover client or a *goredis.ClusterClient:
//
//	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
//	f := redis.New(client, redis.Options{})
//	srv := server.New(server.Config{Adapter: f})
//	…
//	srv.Close(ctx) // closes the adapters, then f: bounded by ctx, even with Redis frozen
//	client.Close()
//
// Every namespace gets an [Adapter]: the in-memory adapter for its local
// sockets ([github.com/ioswarm/ioswarm/adapter/memory]), plus the messages
// that reach the same namespace on the other nodes. Broadcasts are delivered
// locally at once and published for the others; FetchSockets, AllRooms and
// ServerSideEmit with acks ask every other node and wait for their answers,
// at most Options.RequestsTimeout; SocketsJoin, SocketsLeave and
// DisconnectSockets apply locally at once and are published for the others.
// ServerCount is the number of subscribers of the namespace's request
// channel.
//
// # Wire compatibility
//
// The channels, message encodings and request types are those of
// @socket.io/redis-adapter 8.3 (checked byte for byte against captures of
// the Node adapter, and in mixed Go + Node clusters). With K the key and N
// the namespace, each adapter SUBSCRIBEs K-request#N#, K-response#N# and
// K-response#N#<uid>#, where uid is 6 random characters per adapter.
// Broadcasts travel as msgpack [uid, {type, data, nsp}, {rooms,
// except, flags}] on K#N#<room># when they target exactly one room, on K#N#
// otherwise; broadcasts with acks and the acks themselves are msgpack, every
// other request and response is JSON. Servers are counted with PUBSUB
// NUMSUB on the request channel, summed over the masters of a Redis
// Cluster.
//
// The msgpack codec is notepack.io's (3.0.1): smallest integer encodings,
// float64 for other numbers, str for strings, bin for binary, timestamp
// extension −1 for dates. It transcodes directly between msgpack and
// Socket.IO JSON, without building Go values: a broadcast from Redis is
// transcoded once into one packet (JSON with binary placeholders, and the
// binary parts as attachments) that every local socket writes as the same
// bytes, and a local broadcast is transcoded once into the message
// published. Object key order is kept. What JavaScript would see differently
// follows Node: dates become their ISO text (JSON.stringify), undefined is
// null in arrays and drops object members, integers beyond 2^53 lose
// precision as JavaScript numbers do (and integers of 2^64 or more wrap, as
// notepack.io encodes them), other extension types become [type, binary].
// Object keys that JavaScript would reorder (integer-like keys) keep their
// wire order; clients reading the JSON see the same object.
//
// The JSON paths carry what Node carries: serverSideEmit arguments and the
// data of remote sockets are JSON, so binary values arrive as Node's Buffer
// JSON ({"type":"Buffer","data":[…]}); binary survives only in broadcasts
// and broadcast acks.
//
// Differences from the Node adapter, all invisible on the wire:
//   - A node PSUBSCRIBEs one pattern, K#*, for the broadcasts of all its
//     namespaces, where a Node node PSUBSCRIBEs K#N#* per namespace: Redis
//     matches every PUBLISH against every pattern, so patterns per
//     namespace would make PUBLISH slower cluster-wide with every namespace
//     a node serves. Broadcasts of namespaces the node does not serve are
//     dropped without being decoded. Glob characters in the key are
//     escaped in the pattern; '#' in a namespace or room name is handled
//     as Node does (each namespace whose K#N# starts the channel looks at
//     the message).
//   - Answers that would exceed Options.MaxMessageBytes are replaced by
//     an empty answer carrying an "error" member, which Node ignores.
//   - SocketsJoin, SocketsLeave and DisconnectSockets apply to local sockets
//     at once (Node applies them when its own message comes back from Redis);
//     the echo is then ignored. Messages without a uid (the Redis emitter)
//     or with another node's uid are applied, as on Node.
//   - A broadcast with acks received from another node is delivered with an
//     ack id from a range of its own (from 2^52), since the adapter cannot
//     draw from the namespace's counter.
//   - ServerCount is at least 1, even while this node's own subscription is
//     not in place (after a Redis restart, before go-redis re-subscribed).
//   - Broadcasts whose event name clients would refuse (a reserved name, or
//     no name) are dropped instead of being delivered.
//
// # Connection state recovery
//
// With the server's ConnectionStateRecovery on, the adapter keeps what
// recovery needs in Redis, so that a client whose node stopped or was
// killed is recovered by any node (Node's classic adapter recovers
// nothing): the session of every connected socket (written at connect and
// on each change of its rooms or data, before the call returns; renewed by
// its node while it lives; kept for the window once it left), and a log of
// the broadcasts, a stream whose entry ids are the offsets. A logged
// broadcast is one script that stores it and publishes it with its offset;
// every node, the sender's too, delivers it from its subscription, in log
// order, and the sender's Broadcast returns once it is stored and
// delivered here. Node.js nodes on the key see the usual message (two
// trailing elements they ignore). Bounds (MaxPackets, MaxPacketBytes,
// MaxSessions, MaxSessionBytes, the window) are kept by the scripts.
// recovery.go explains the order that makes each missed packet reach a
// restored socket exactly once.
//
// # Robustness
//
// Redis is needed only to reach the other nodes: local delivery never waits
// for it. Publishing goes through a queue bounded in messages and bytes
// (Options.MaxPendingPublishes, MaxPendingPublishBytes) drained by one
// goroutine, which pipelines whatever accumulated while the previous batch
// was on its way. A broadcast emitted on this node that finds the queue past
// half of a bound waits (at most the server's WriteTimeout) for the
// publisher to catch up, so a burst reaches the other nodes whole; when the
// queue is full, operations return ErrQueueFull (after their local part) and
// the message is dropped, as pub/sub messages are while Redis is down.
//
// All namespaces of a node share one subscription connection. go-redis
// reconnects it and re-subscribes every channel by itself when it breaks; the
// adapter paces the attempts, pings Redis after 15 s of silence to detect a
// dead connection, and logs (slog) when the connection is lost and when it
// is back. Messages published while a node is disconnected are lost for it.
// A new namespace is subscribed before Factory.Adapter returns (Redis
// confirms the subscriptions), so a namespace's first CONNECT reply follows
// its subscriptions; when Redis does not answer within RequestsTimeout the
// namespace is created anyway, the failure is logged, and go-redis subscribes
// once Redis is back.
//
// Namespaces may come and go (the server closes the adapter of a dynamic
// namespace when its last socket leaves): Adapter.Close returns at once, and
// the node's subscription goroutine unsubscribes the namespace's channels
// unless another adapter of the same name is open, coalescing bursts into a
// few commands. Whatever the number of namespaces, a node holds one pattern
// subscription, so that the cost of every PUBLISH in the cluster does not
// grow with them.
//
// Every message published is at most Options.MaxMessageBytes (4 MiB by
// default), so that no message can fill the output buffer Redis keeps for a
// subscriber (which Redis would then disconnect, dropping every namespace of
// that node): a broadcast or request over it fails with ErrMessageTooLarge,
// and an answer over it (FetchSockets with large handshakes, say) is
// replaced by a small answer that makes the asker fail at once with an
// error naming the answering node and matching ErrMessageTooLarge. A
// client's acknowledgement too large to forward is counted as null by the
// asker (logged), as it has no way to carry an error.
//
// Requests end at RequestsTimeout with the answers that came: FetchSockets
// and AllRooms fail with Node's texts ("timeout reached while waiting for
// fetchSockets response"), ServerSideEmit returns the partial answers with
// "timeout reached: only X responses received out of Y"; both errors are
// *adapter.TimeoutError, matching adapter.ErrTimeout. A node that dies, or
// never answers, costs the others that timeout, never more. Requests fail (within
// RequestsTimeout) when the number of servers cannot be read from Redis. Closing an
// adapter ends its requests in flight with adapter.ErrClosed. Malformed
// messages are ignored (logged at debug level), and a panic in code run for a
// message (a socket's outgoing listener, a server-side listener) is logged,
// not fatal.
//
// go-redis logs its own connection errors through its global logger
// (goredis.SetLogger).
//
// On a Redis Cluster every PUBLISH goes to the master that owns its
// channel's slot, so one node's messages on different channels (a room's
// channel and the namespace's) may reach the others in either order; on one
// channel, and on a single Redis or behind Sentinel, they keep their order.
// Subscriptions on replicas (ClusterOptions.ReadOnly) are not counted by
// NUMSUB on the masters: keep the subscriber on masters (the adapter opens
// its subscription connection with a SUBSCRIBE, which a ClusterClient sends
// to a master).
//
// When a master of a Redis Cluster dies, the subscription connections on
// it break and commands for its slots fail: what is published meanwhile is
// lost, Emit does not block (the publish queue drops what Redis refuses),
// and local clients are served. After each such failure the adapter asks
// the ClusterClient to reload the cluster's slots: go-redis would wait for
// a MOVED redirection, which a dead master never sends, or for
// ClusterStateReloadInterval (60 s by default). So once a replica has taken
// over (cluster-node-timeout and a little more), both adapters renew their
// subscriptions on the new master and cross-node traffic resumes within
// seconds, without a restart. A master that hangs instead of dying is found
// out by the subscription's health ping, after about 8 s of silence, and by
// a publish or a count of the nodes at their first timeout. Set the
// ClusterClient's ContextTimeoutEnabled for that case: without it go-redis
// ends a read to the hung master only at its ReadTimeout, and checks the
// deadline of the adapter's command only between its retries (in the
// tests, broadcasts came back 0.1–10.3 s after the replica took over with
// it, 0.1–15.4 s without, and meanwhile a broadcast may wait seconds behind
// a publish to the hung master). With connection state recovery, the scripts of
// logged broadcasts get no deadline without it (one that timed out may
// have run): go-redis's retries against the hung master, tens of seconds,
// then hold up the publish queue, and Emit waits as for a slow Redis.
// Without a replica the master's slots (and, with
// cluster-require-full-coverage, the whole cluster) stay down until it is
// back: FetchSockets and ServerSideEmit fail within their ctx or
// RequestsTimeout with an error wrapping Redis's ("connection refused",
// CLUSTERDOWN), and Close stays bounded.
//
// # Sharded Pub/Sub
//
// A [ShardedFactory] (NewSharded) is the adapter.Factory of a node that
// talks to Node's createShardedAdapter (@socket.io/redis-adapter 8.3): the
// messages travel with SPUBLISH and SSUBSCRIBE, which a Redis Cluster sends
// to the master of the channel's slot only, so pub/sub traffic spreads over
// the masters instead of reaching every one of them. The wire is
// socket.io-adapter's ClusterAdapter (docs/protocol/redis-adapter.md, Part
// B): one message {type, data, uid, nsp}, JSON, or notepack msgpack when
// its data holds binary; requests on the namespace's channel K#N#, answers
// on the requester's own K#N#<uid>#; ServerCount is PUBSUB SHARDNUMSUB of
// K#N#, summed over the masters. Every node of a cluster uses the same
// [SubscriptionMode]:
//
//   - static: every broadcast goes to K#N#;
//   - dynamic (the default): a node also subscribes to K#N#<room># while
//     it has a local room that is not one of its socket ids, and a
//     broadcast without acks to exactly one room goes to that channel —
//     unless the room's name has 20 (UTF-16) characters, which Node takes
//     for a socket id;
//   - dynamic-private: as dynamic, for socket-id rooms too.
//
// For a Redis Cluster:
//
//	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
//	f := redis.NewSharded(client, redis.ShardedOptions{})
//	srv := server.New(server.Config{Adapter: f})
//
// What differs from the classic adapter, as on Node:
//
//   - AllRooms returns this node's rooms only: the cluster adapter has no
//     request for it (a Node node would never answer).
//   - FetchSockets waits for the operation's own timeout
//     (server.BroadcastOperator.Timeout, Node's io.timeout(ms)) or
//     RequestsTimeout; ServerSideEmit with acks for RequestsTimeout (Node:
//     a fixed 5 s). Both fail with Node's text, "timeout reached: only X
//     responses received out of Y". A request's flags.timeout from a Node
//     node is accepted (bounded to 24 h).
//   - serverSideEmit arguments that hold binary travel as bytes (the
//     message is msgpack); a listener of a Go node receives each as Node's
//     Buffer JSON, {"type":"Buffer","data":[…]}.
//   - No connection state recovery: a ShardedAdapter is not an
//     adapter.Recoverer.
//
// A shard channel has one slot, and one SSUBSCRIBE may only name channels
// of one slot: on a Redis Cluster the node holds one subscription
// connection per slot it uses (two per namespace, plus one per room in the
// dynamic modes, at most one per slot), which follows the slot to its new
// master after a failover; on a single Redis, one connection. A dynamic
// room's subscription is made asynchronously: a broadcast to a room that
// another node joined a moment ago may miss it, as on Node. The bounds of
// the classic adapter apply (MaxMessageBytes, MaxPendingPublishes and
// MaxPendingPublishBytes; an answer over MaxMessageBytes is replaced by an
// empty one with an error). Classic and sharded adapters may share a Redis
// (shard channels are a space of their own), but the nodes of one cluster
// must all use the same kind.
//
// # Concurrency
//
// Factory and Adapter are safe for concurrent use. A Factory runs four
// goroutines from its first Adapter call to Close: the receiver, which reads
// the subscription connection and handles every message (decoding, local
// delivery, answers to requests); the publisher, which drains the publish
// queue; the subscriber, which sends the SUBSCRIBE and UNSUBSCRIBE commands
// decided by Adapter and Adapter.Close; and the event runner, which calls
// server-side listeners of serverSideEmit events in arrival order, so that a
// listener waiting for a cluster request of its own does not stop the
// receiver. Callbacks of broadcasts with acks (the server's ack collector)
// run on the receiver and must not block. Close ends all of them and waits
// for them.
//
// Closing is bounded when Redis does not answer: Adapter.Close never waits
// for Redis; Factory.Close returns when its ctx ends at the latest, and
// otherwise waits for the goroutines, which takes as long as the Redis
// command in flight: RequestsTimeout when the go-redis client has
// ContextTimeoutEnabled, otherwise the client's ReadTimeout (3 s by
// default). Subscription commands and pings always end by RequestsTimeout.
// No command runs past RequestsTimeout after Close started; once a write
// timed out, Close drops what is queued instead of giving Redis
// RequestsTimeout again, and it closes the subscription connections while
// the queue drains, not after.
//
// Locks are held only to update state (queueing a message for the publisher
// is a non-blocking send; a logged broadcast is queued under its adapter's
// recovery lock, so that its scripts reach Redis in nonce order), never
// during I/O, while calling a socket or
// running a callback; LOCKING.md at the repository root lists them and their order.
//
// A ShardedFactory runs the publisher, the event runner, the subscription
// goroutine and one receiver per subscription connection, with the same
// rules (LOCKING.md, section adapter/redis, sharded mode).
package redis
