package testkit

import (
	"runtime"
	"runtime/metrics"
)

// LiveHeap returns the bytes of heap still reachable after a full
// collection: what the process holds, not what it has yet to free. Tests of
// memory bounds compare it before and during an attack.
func LiveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// PeakHeap samples LiveHeap every time sample is called and keeps the
// largest value: a bound is asserted on the peak while an attack runs.
type PeakHeap struct{ Max uint64 }

// Sample measures the live heap and records it if it is the largest so far.
func (p *PeakHeap) Sample() uint64 {
	v := LiveHeap()
	if v > p.Max {
		p.Max = v
	}
	return v
}
