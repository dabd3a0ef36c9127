package engineio

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadMessageBytes(t *testing.T) {
	// Messages around the pooled buffer's size and the limit: the bytes, or
	// errTooLarge exactly when there are more than max.
	for _, size := range []int{0, 1, smallMessage - 1, smallMessage, smallMessage + 1, 3 * smallMessage} {
		for _, max := range []int64{int64(size) - 1, int64(size), int64(size) + 1, smallMessage, 1 << 20} {
			if max < 0 {
				continue
			}
			msg := []byte(strings.Repeat("x", size))
			// One byte per Read: the slowest reader there is.
			got, err := readMessageBytes(iotest.OneByteReader(bytes.NewReader(msg)), max)
			if int64(size) > max {
				if !errors.Is(err, errTooLarge) {
					t.Errorf("size %d, max %d: %v, want errTooLarge", size, max, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("size %d, max %d: %d bytes, %v", size, max, len(got), err)
			}
		}
	}
}
