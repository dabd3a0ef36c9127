package engineio

import "testing"

func TestQueuePool(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 0, 8: 0, 9: 1, 16: 1, 17: 2, 1024: 7, 1025: 8} {
		if got := queueClass(n); got != want {
			t.Errorf("queueClass(%d) = %d, want %d", n, got, want)
		}
	}
	m := make([]*Message, 3000)
	for i := range m {
		m[i] = NewMessage([]byte{byte(i)}, false)
	}
	// Growing through the pools keeps every message, in order.
	var q []*Message
	for i := 0; i < len(m); i += 7 {
		q = appendQueue(q, m[i:min(i+7, len(m))])
	}
	if len(q) != len(m) {
		t.Fatalf("len %d, want %d", len(q), len(m))
	}
	for i := range q {
		if q[i] != m[i] {
			t.Fatalf("message %d out of place", i)
		}
	}
	// An array given back is cleared, and comes back empty with its
	// capacity.
	q = getQueue(20)
	if cap(q) != 32 || len(q) != 0 {
		t.Fatalf("getQueue(20): len %d cap %d", len(q), cap(q))
	}
	q = append(q, m[:20]...)
	putQueue(q)
	for range 100 {
		r := getQueue(17)
		if cap(r) != 32 {
			t.Fatalf("cap %d", cap(r))
		}
		for _, x := range r[:cap(r)] {
			if x != nil {
				t.Fatal("a pooled array kept a message")
			}
		}
		putQueue(r)
	}
	// Allocations: a queue that is taken and refilled reuses its arrays.
	if raceOn {
		return // sync.Pool drops some of what it is given under the race detector
	}
	allocs := testing.AllocsPerRun(100, func() {
		q := appendQueue(nil, m[:100])
		putQueue(q)
	})
	if allocs > 0 {
		t.Errorf("%v allocations per fill, want 0", allocs)
	}
}
