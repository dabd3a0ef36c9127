package testkit

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
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

// StackPerGoroutine runs f in n goroutines that stay blocked after f
// returns, and reports the stack memory they hold, per goroutine, beyond
// what they held before. The collector is off meanwhile, as it would shrink
// the stacks of the blocked goroutines and hide what f needed.
func StackPerGoroutine(t testing.TB, n int, f func(i int)) uint64 {
	t.Helper()
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			f(i)
			ready.Done()
			<-release
		}()
	}
	ready.Wait()
	runtime.ReadMemStats(&after)
	close(release)
	done.Wait()
	if after.StackInuse < before.StackInuse {
		return 0
	}
	return (after.StackInuse - before.StackInuse) / uint64(n)
}
