package main

import (
	"math"
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear: exact below subCount µs, then subCount/2
// buckets per power of two (about 1.5 % resolution) up to maxValue µs.
const (
	subBits   = 7
	subCount  = 1 << subBits
	subHalf   = subCount / 2
	maxShift  = 30
	nBuckets  = subCount + maxShift*subHalf
	maxValue  = int64(subCount)<<maxShift - 1 // about 38 hours in µs
	numShards = 32
)

// histogram counts microsecond values. record is safe for concurrent use and
// cheap (one or two atomic adds); the writers are spread over shards by client
// index so that the two cores do not fight over one cache line.
type histogram struct {
	shards [numShards]histShard
}

type histShard struct {
	counts [nBuckets]atomic.Uint64
	max    atomic.Int64
	_      [56]byte // keep the next shard's hot words off this cache line
}

func newHistogram() *histogram { return new(histogram) }

// bucketOf maps a value (µs) to its bucket.
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits
	m := int(v >> shift) // in [subHalf, subCount)
	return subCount + (shift-1)*subHalf + (m - subHalf)
}

// valueOf is the middle of bucket b (µs).
func valueOf(b int) float64 {
	if b < subCount {
		return float64(b)
	}
	k := b - subCount
	shift := k/subHalf + 1
	m := int64(k%subHalf + subHalf)
	lo := m << shift
	hi := (m+1)<<shift - 1
	return float64(lo+hi) / 2
}

// record adds one value (µs) on behalf of client idx.
func (h *histogram) record(idx int, v int64) {
	s := &h.shards[idx%numShards]
	s.counts[bucketOf(v)].Add(1)
	for {
		m := s.max.Load()
		if v <= m || s.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Quantiles are latencies in milliseconds.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// summary merges the shards: the number of values and their quantiles (ms),
// or nil when there is none.
func (h *histogram) summary() (uint64, *Quantiles) {
	var counts [nBuckets]uint64
	var total uint64
	var maxV int64
	for i := range h.shards {
		s := &h.shards[i]
		for b := range counts {
			n := s.counts[b].Load()
			counts[b] += n
			total += n
		}
		maxV = max(maxV, s.max.Load())
	}
	if total == 0 {
		return 0, nil
	}
	at := func(q float64) float64 {
		rank := uint64(math.Ceil(q * float64(total)))
		rank = max(rank, 1)
		var seen uint64
		for b, n := range counts {
			seen += n
			if seen >= rank {
				return math.Min(valueOf(b), float64(maxV))
			}
		}
		return float64(maxV)
	}
	return total, &Quantiles{P50: at(0.50) / 1000, P99: at(0.99) / 1000, Max: float64(maxV) / 1000}
}

// quantilesOf summarises a few samples (ms) exactly, or nil when there is none.
func quantilesOf(samples []float64) *Quantiles {
	if len(samples) == 0 {
		return nil
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(i, 0)]
	}
	return &Quantiles{P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

// recorder collects what the clients see during one scenario.
type recorder struct {
	since    int64 // Unix µs: "msg" frames stamped earlier are stale
	hist     *histogram
	stale    atomic.Int64 // messages of an earlier publication
	disorder atomic.Int64 // messages whose seq did not increase at that client
	badFrame atomic.Int64 // "msg" frames without a "t" field
}

func newRecorder() *recorder {
	return &recorder{since: time.Now().UnixMicro(), hist: newHistogram()}
}
