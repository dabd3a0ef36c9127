// Package memory is the single-node adapter, the default of every
// ioswarm server: it keeps the rooms of a namespace in memory and delivers
// broadcasts to the local sockets.
//
// # Overview
//
// Rooms live in a map sharded by room name and sockets in a map sharded by
// socket id, so joins, leaves and broadcasts from many connections rarely
// meet on one lock. A broadcast selects its recipients under read locks
// into a pooled slice, releases every lock, then hands the packet to each
// socket; the packet is encoded once, by the first recipient, and shared by
// all, so a broadcast allocates the same whether it reaches ten sockets or
// ten thousand.
//
// The cluster adapter ([github.com/ioswarm/ioswarm/adapter/redis]) embeds
// this one for everything local.
//
// # Locking
//
// Lock order: member.mu, then a room shard's mu. A socket shard's mu is
// never held with another lock. No lock is held while calling a Socket.
package memory
