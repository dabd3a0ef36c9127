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
// # Connection state recovery
//
// When its namespace has recovery on ([adapter.RecoveryNamespace]), the
// adapter is an [adapter.Recoverer], like Node's SessionAwareAdapter: it
// keeps the sessions of sockets that lost their transport and a log of the
// broadcasts without ack that are not volatile, each given an offset
// appended to its data. Both are bounded by the window, in count and in
// bytes (oldest first), and swept by one timer per adapter that Close
// stops (recovery.go).
//
// # Locking
//
// Lock order: recovery.gate, then member.mu, then a room shard's mu. A
// socket shard's mu is never held with another lock; recovery.mu is a
// leaf. No lock is held while calling a Socket (see LOCKING.md for the
// one callback, RestoreSession's attach).
package memory
