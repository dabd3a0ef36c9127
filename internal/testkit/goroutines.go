package testkit

import (
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// CheckGoroutines records the goroutines running now and registers a cleanup that, after
// letting them settle for up to about 2 s, fails the test listing the stacks of goroutines
// that were not there before (runtime and testing goroutines are ignored). Call it first in
// the test so that it runs after the test's other cleanups. Goroutines of tests running in
// parallel cannot be told apart: use it in tests that do not run in parallel.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := map[string]bool{}
	for id := range goroutines() {
		before[id] = true
	}
	t.Cleanup(func() {
		var leaked map[string]string
		deadline := time.Now().Add(2 * time.Second)
		for {
			leaked = map[string]string{}
			for id, stack := range goroutines() {
				if !before[id] && !ignoredGoroutine(stack) {
					leaked[id] = stack
				}
			}
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(leaked) == 0 {
			return
		}
		stacks := make([]string, 0, len(leaked))
		for _, s := range leaked {
			stacks = append(stacks, s)
		}
		sort.Strings(stacks)
		t.Errorf("testkit: %d goroutine(s) leaked:\n\n%s", len(stacks), strings.Join(stacks, "\n\n"))
	})
}

// goroutines returns the stack of every goroutine but the caller's, by goroutine id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // the calling goroutine
		}
		header, _, _ := strings.Cut(g, "\n")
		fields := strings.Fields(header) // "goroutine 12 [chan receive]:"
		if len(fields) < 2 || fields[0] != "goroutine" {
			continue
		}
		out[fields[1]] = g
	}
	return out
}

// ignoredGoroutine reports whether a goroutine belongs to the runtime or the test framework:
// its first frame outside package runtime is in testing or os/signal, or there is none.
func ignoredGoroutine(stack string) bool {
	for _, l := range strings.Split(stack, "\n")[1:] {
		if strings.HasPrefix(l, "\t") || l == "" {
			continue // file:line
		}
		if strings.HasPrefix(l, "runtime.") || strings.HasPrefix(l, "created by runtime") {
			continue
		}
		return strings.HasPrefix(l, "testing.") || strings.HasPrefix(l, "os/signal.") ||
			strings.HasPrefix(l, "created by testing.") || strings.HasPrefix(l, "created by os/signal.")
	}
	return true
}
