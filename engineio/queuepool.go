package engineio

import (
	"math/bits"
	"sync"
	"unsafe"
)

// Queue arrays come from pools shared by all connections, one per capacity
// (8 to 1024 messages, powers of two), and go back once written: an idle
// connection holds none, and a connection whose queue is taken while more
// is pushed (a writer in flight) finds an array of the size it needed last
// instead of growing a new one from nothing. A connection's own spare array
// made every broadcast allocate at thousands of connections: it held one,
// a write in flight needed a second, and whichever was left over was
// dropped and grown again (BenchmarkBroadcast: 220 allocations per
// broadcast at 5,000 clients, 29 at 1,000).
//
// The pools hold the arrays' first elements as unsafe.Pointer (an interface
// holds a pointer without allocating); the capacity is the pool's.
const (
	minQueueCap   = 8
	queuePoolsLen = 8 // capacities 8 << 0 to 8 << 7 (1024)
)

var queuePools [queuePoolsLen]sync.Pool

// queueClass returns the pool of the smallest capacity that holds n
// messages, or queuePoolsLen when none does.
func queueClass(n int) int {
	if n <= minQueueCap {
		return 0
	}
	return bits.Len(uint(n-1)) - 3 // 8 << class >= n
}

// getQueue returns an empty array for at least n messages.
func getQueue(n int) []*Message {
	c := queueClass(n)
	if c >= queuePoolsLen {
		return make([]*Message, 0, n)
	}
	if p, ok := queuePools[c].Get().(unsafe.Pointer); ok {
		return unsafe.Slice((**Message)(p), minQueueCap<<c)[:0]
	}
	return make([]*Message, 0, minQueueCap<<c)
}

// putQueue gives q's array back for reuse; nothing may use it afterwards.
// Its elements are cleared (up to its length: those past it are nil, as
// getQueue's callers only append).
func putQueue(q []*Message) {
	clear(q)
	n := cap(q)
	c := queueClass(n)
	if c >= queuePoolsLen || minQueueCap<<c != n {
		return // not one of the pools' arrays
	}
	queuePools[c].Put(unsafe.Pointer(unsafe.SliceData(q[:1])))
}

// appendQueue appends msgs to q, moving to a larger pooled array (and
// giving the old one back) when q is full.
func appendQueue(q []*Message, msgs []*Message) []*Message {
	if need := len(q) + len(msgs); need > cap(q) {
		grown := getQueue(max(need, 2*cap(q)))
		grown = append(grown, q...)
		if q != nil {
			putQueue(q)
		}
		q = grown
	}
	return append(q, msgs...)
}
