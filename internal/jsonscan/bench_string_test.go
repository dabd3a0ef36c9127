package jsonscan

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkScanString scans strings of a few lengths: short ones are
// scanned a byte at a time, long ones eight bytes at a time.
func BenchmarkScanString(b *testing.B) {
	for _, n := range []int{5, 25, 64, 1000} {
		d := []byte(`"` + strings.Repeat("x", n) + `",`)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(d)))
			for b.Loop() {
				if _, _, err := ScanString(d, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
