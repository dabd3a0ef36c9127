package engineio

import (
	"testing"
	"time"
)

// cpuMark is the process's CPU time (user and system) at the start of a
// measurement. On a machine whose cores are shared, CPU time per operation
// is what a change to the hot path moves; elapsed time also moves with
// whatever else runs.
type cpuMark time.Duration

func startCPU() cpuMark { return cpuMark(processCPU()) }

// report adds the CPU time per op and per each of n items as metric unit.
// It counts the whole process: the in-process clients too.
func (m cpuMark) report(b *testing.B, n int, unit string) {
	d := processCPU() - time.Duration(m)
	b.ReportMetric(float64(d.Nanoseconds())/float64(b.N)/float64(n), unit)
}
