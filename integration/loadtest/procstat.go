package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSample is what /proc tells about one process at one moment.
type procSample struct {
	cpuTicks uint64 // utime + stime, in clock ticks
	rssKB    int64  // VmRSS
	hwmKB    int64  // VmHWM: peak RSS since the process started
	err      error
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) procSample {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{err: err}
	}
	// The command name (field 2) is in parentheses and may hold spaces: count
	// fields from the last ')'. Field 3 (state) is then index 0, utime (14) index
	// 11 and stime (15) index 12.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procSample{err: fmt.Errorf("/proc/%d/stat: no command name", pid)}
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return procSample{err: fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))}
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procSample{err: fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)}
	}
	s := procSample{cpuTicks: utime + stime}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{err: err}
	}
	for line := range strings.Lines(string(status)) {
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			s.rssKB = kB(line)
		case strings.HasPrefix(line, "VmHWM:"):
			s.hwmKB = kB(line)
		}
	}
	return s
}

// kB parses "VmRSS:\t  1234 kB".
func kB(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n
}

// clockTicks is the number of clock ticks per second of /proc/<pid>/stat
// times: getconf CLK_TCK, or 100 (the Linux value) when that fails.
func clockTicks() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100
}

// procSet is the processes whose CPU and memory are measured: the server
// nodes (pids[i] serves targets[i]) and others (Redis, …).
type procSet struct {
	pids  []int
	nodes int // the first nodes pids are server nodes
	tck   float64
	self  int
	aux   []int // measured apart from the servers (-compare: the shared Redis)
}

// sample reads every process of the set, then the load tool itself, then the
// aux processes.
func (p *procSet) sample() []procSample {
	out := make([]procSample, 0, len(p.pids)+1+len(p.aux))
	for _, pid := range p.pids {
		out = append(out, readProc(pid))
	}
	out = append(out, readProc(p.self))
	for _, pid := range p.aux {
		out = append(out, readProc(pid))
	}
	return out
}

// auxSeconds is the CPU the aux processes used between two samples.
func (p *procSet) auxSeconds(before, after []procSample) float64 {
	var s float64
	for i := len(p.pids) + 1; i < len(after) && i < len(before); i++ {
		if before[i].err == nil && after[i].err == nil && after[i].cpuTicks >= before[i].cpuTicks {
			s += float64(after[i].cpuTicks-before[i].cpuTicks) / p.tck
		}
	}
	return s
}

// cpuSeconds is the CPU the processes used between two samples: the servers'
// sum and the load tool's own.
func (p *procSet) cpuSeconds(before, after []procSample) (servers, self float64) {
	for i := range p.pids {
		if before[i].err == nil && after[i].err == nil && after[i].cpuTicks >= before[i].cpuTicks {
			servers += float64(after[i].cpuTicks-before[i].cpuTicks) / p.tck
		}
	}
	n := len(p.pids)
	if after[n].cpuTicks >= before[n].cpuTicks {
		self = float64(after[n].cpuTicks-before[n].cpuTicks) / p.tck
	}
	return servers, self
}

// raiseNoFile raises RLIMIT_NOFILE to want descriptors, the hard limit too
// where the process may (CAP_SYS_RESOURCE, up to fs.nr_open), else the soft
// one as far as the hard one allows, and returns the resulting soft limit.
// Both sides of a comparison then keep their clients connected, and their
// phases alternate instead of running one side after the other.
func raiseNoFile(want uint64) (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return want, nil
		}
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
	}
	return r.Cur, nil
}
