package jsonscan

import (
	"strings"
	"testing"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

const ph = `{"_placeholder":true,"num":0}`

// deep is a value nested depth deep around 1 (or ph): arrays when kind is
// 0, objects {"a":…} when 1, both alternately when 2.
func deep(depth, kind int) string {
	return deepAround(depth, kind, "1")
}

func deepAround(depth, kind int, inner string) string {
	var open, close strings.Builder
	for i := range depth {
		if kind == 0 || kind == 2 && i%2 == 0 {
			open.WriteString("[")
		} else {
			open.WriteString(`{"a":`)
		}
	}
	for i := depth - 1; i >= 0; i-- {
		if kind == 0 || kind == 2 && i%2 == 0 {
			close.WriteString("]")
		} else {
			close.WriteString("}")
		}
	}
	return open.String() + inner + close.String()
}

// deepSeeds are values nested at and around MaxDepth, some with
// placeholders and some malformed at the bottom.
func deepSeeds() []string {
	return []string{
		deep(MaxDepth, 0), deep(MaxDepth+1, 0), deepAround(MaxDepth-1, 1, ph), deep(MaxDepth, 1), deep(MaxDepth+1, 1),
		deepAround(MaxDepth-1, 2, ph), deep(MaxDepth, 2),
		deepAround(MaxDepth-2, 2, `{"num":0,"_placeholder":true,"x":[`+ph+`]}`),
		deep(MaxDepth-1, 0)[1:],                             // unbalanced
		strings.Repeat("[", MaxDepth-1) + "1,]",             // bad at the bottom
		deepAround(400, 2, `{"_placeholder":true,"num":7}`), // placeholders where recursion ends
		deepAround(recursionLimit-1, 1, ph), deepAround(recursionLimit, 1, ph), deepAround(recursionLimit+1, 2, ph),
	}
}

// TestDeepStack: scanning a value nested as deep as allowed costs stack in
// proportion to nothing, whatever the scanner is asked to find.
func TestDeepStack(t *testing.T) {
	for _, kind := range []int{0, 1, 2} {
		in := []byte(deepAround(MaxDepth-1, kind, ph))
		for _, mode := range []struct {
			name             string
			find, containers bool
		}{{"validate", false, false}, {"placeholders", true, false}, {"containers", false, true}, {"both", true, true}} {
			t.Run(mode.name+"/"+[]string{"array", "object", "mixed"}[kind], func(t *testing.T) {
				errs := make([]error, 50)
				nph := make([]int, len(errs))
				per := testkit.StackPerGoroutine(t, len(errs), func(i int) {
					s := Scanner{FindPlaceholders: mode.find, RecordContainers: mode.containers}
					_, _, errs[i] = s.Whole(in)
					nph[i] = len(s.Placeholders)
				})
				for i, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
					if want := map[bool]int{false: 0, true: 1}[mode.find]; nph[i] != want {
						t.Fatalf("%d placeholders, want %d", nph[i], want)
					}
				}
				t.Logf("%d bytes of stack per goroutine", per)
				if per > maxDeepStack {
					t.Errorf("%d bytes of stack per goroutine, want at most %d", per, maxDeepStack)
				}
			})
		}
	}
	in := []byte("[" + deep(MaxDepth-1, 2) + "]")
	errs := make([]error, 100)
	per := testkit.StackPerGoroutine(t, len(errs), func(i int) { _, errs[i] = AppendElements[[]byte](nil, in) })
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("AppendElements: %d bytes of stack per goroutine", per)
	if per > maxDeepStack {
		t.Errorf("AppendElements: %d bytes of stack per goroutine, want at most %d", per, maxDeepStack)
	}
}
