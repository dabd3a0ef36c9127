package cluster

import "strconv"

// Offsets of connection state recovery are Redis stream entry ids,
// "<ms>-<seq>": the classic adapter's log and the streams adapter's stream.

// ValidOffset reports whether s is a stream id as the log writes them,
// "<ms>-<seq>".
func ValidOffset(s string) bool {
	dash := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-' && dash < 0 && i > 0:
			dash = i
		case c < '0' || c > '9':
			return false
		}
	}
	return dash > 0 && dash < len(s)-1 && dash <= 20 && len(s)-dash-1 <= 20
}

// OffsetSeq maps an offset to adapter.Packet.Seq, in the same order: the
// milliseconds, then the sequence within them (Redis gives far fewer than
// 2^20 entries a millisecond).
func OffsetSeq(off string) uint64 {
	for i := 0; i < len(off); i++ {
		if off[i] == '-' {
			ms, err1 := strconv.ParseUint(off[:i], 10, 44)
			seq, err2 := strconv.ParseUint(off[i+1:], 10, 64)
			if err1 != nil || err2 != nil {
				return 0
			}
			return ms<<20 | min(seq, 1<<20-1)
		}
	}
	return 0
}

// NextOffset returns the id just after off, for an XRANGE that excludes
// off on Redis before 6.2 (as Node's streams adapter does); off is valid.
func NextOffset(off string) string {
	for i := 0; i < len(off); i++ {
		if off[i] == '-' {
			seq, _ := strconv.ParseUint(off[i+1:], 10, 64)
			return off[:i+1] + strconv.FormatUint(seq+1, 10)
		}
	}
	return off
}
