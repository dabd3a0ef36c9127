package smallmap

import (
	"fmt"
	"maps"
	"testing"
)

func TestMapAgainstGoMap(t *testing.T) {
	// Every operation, through the switch to a Go map and back to empty,
	// agrees with a plain map.
	var m Map[string, int]
	ref := map[string]int{}
	check := func(step string) {
		t.Helper()
		if m.Len() != len(ref) {
			t.Fatalf("%s: Len %d, want %d", step, m.Len(), len(ref))
		}
		got := map[string]int{}
		m.All(func(k string, v int) bool { got[k] = v; return true })
		if !maps.Equal(got, ref) {
			t.Fatalf("%s: All %v, want %v", step, got, ref)
		}
		for k, v := range ref {
			if g, ok := m.Get(k); !ok || g != v {
				t.Fatalf("%s: Get(%q) = %d, %v; want %d", step, k, g, ok, v)
			}
		}
		if m.Has("absent") {
			t.Fatalf("%s: Has(absent)", step)
		}
	}
	for i := range 20 {
		k := fmt.Sprint("k", i)
		m.Set(k, i)
		ref[k] = i
		check("set " + k)
	}
	m.Set("k3", 33) // replace, in the Go map
	ref["k3"] = 33
	check("replace")
	for i := range 20 {
		k := fmt.Sprint("k", i)
		m.Delete(k)
		delete(ref, k)
		check("delete " + k)
	}
	if m.many != nil || m.few != nil {
		t.Fatal("an emptied Map still holds memory")
	}
	for i := range 3 {
		m.Set(fmt.Sprint("s", i), i)
	}
	m.Set("s1", 11) // replace, in the slice
	m.Delete("s0")  // delete from the middle of the slice
	ref = map[string]int{"s1": 11, "s2": 2}
	check("slice")
}

func TestMapAllStops(t *testing.T) {
	for _, n := range []int{3, 30} {
		var m Map[int, struct{}]
		for i := range n {
			m.Set(i, struct{}{})
		}
		calls := 0
		m.All(func(int, struct{}) bool { calls++; return false })
		if calls != 1 {
			t.Fatalf("n=%d: yield called %d times after it returned false", n, calls)
		}
	}
}

func BenchmarkGetFew(b *testing.B) {
	var m Map[string, *int]
	for _, k := range []string{"/", "/admin", "/chat"} {
		m.Set(k, new(int))
	}
	for b.Loop() {
		if _, ok := m.Get("/chat"); !ok {
			b.Fatal("missing")
		}
	}
}
