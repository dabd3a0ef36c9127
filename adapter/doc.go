// Package adapter defines the contract between a Socket.IO namespace and the
// component that knows which sockets are in which rooms and how to reach
// sockets on other nodes.
//
// # Overview
//
// Every namespace of a server owns one Adapter, created by the server's
// Factory when the namespace is created. The single-node implementation is
// [github.com/ioswarm/ioswarm/adapter/memory]; the cluster implementation,
// [github.com/ioswarm/ioswarm/adapter/redis], embeds it and adds the requests
// that travel between nodes.
//
// The server hands the adapter its local sockets as values implementing
// [Socket]; the adapter never sees the server's types, so the dependency
// arrow points one way: server → adapter ← memory, redis.
//
// # Broadcasting
//
// A broadcast is a [Packet]: the EVENT's JSON array (with binary
// placeholders) and its attachments. A Packet encodes itself at most once,
// into Engine.IO messages that every recipient's connection writes as the
// same bytes, so the cost of a broadcast does not grow with the work of
// encoding it per socket.
//
// # Concurrency
//
// Adapters are safe for concurrent use. They never call into a Socket while
// holding one of their own locks, because Socket methods may run user code
// (outgoing listeners) or take the socket's locks.
package adapter
