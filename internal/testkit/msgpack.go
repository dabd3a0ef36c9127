package testkit

import (
	"encoding/hex"
	"strings"
	"testing"
)

// Msgpack builds msgpack bytes from hex with spaces and "quoted" ASCII strings
// (written as given, without a header), the notation of the protocol notes.
func Msgpack(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \n\t")
		if s == "" {
			break
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("testkit: Msgpack: unterminated string in %q", s)
			}
			out = append(out, s[1:1+end]...)
			s = s[2+end:]
			continue
		}
		b, err := hex.DecodeString(s[:2])
		if err != nil {
			t.Fatalf("testkit: Msgpack: %v in %q", err, s)
		}
		out = append(out, b...)
		s = s[2:]
	}
	return out
}

// DeepMsgpack is msgpack nested depth deep around inner: arrays (0x91),
// maps {"a": …} (0x81 a1 61), or both alternately.
func DeepMsgpack(depth int, kind string, inner []byte) []byte {
	var b []byte
	for i := range depth {
		if kind == "array" || kind == "mixed" && i%2 == 0 {
			b = append(b, 0x91)
		} else {
			b = append(b, 0x81, 0xa1, 'a')
		}
	}
	return append(b, inner...)
}

// DeepMsgpackSeeds are msgpack values nested at and around maxDepth (the
// transcoder's limit),
// including maps whose keys are deep arrays, and truncated ones.
func DeepMsgpackSeeds(maxDepth int) [][]byte {
	var out [][]byte
	for _, kind := range []string{"array", "map", "mixed"} {
		out = append(out,
			DeepMsgpack(maxDepth, kind, []byte{0x01}),
			DeepMsgpack(maxDepth+1, kind, []byte{0x01}),
			DeepMsgpack(maxDepth-1, kind, []byte{0xc4, 0x01, 0x07}),
			DeepMsgpack(maxDepth, kind, nil), // truncated
		)
	}
	// {[[[…1…]]]: true}: a non-string key, String()'d.
	out = append(out, append(append([]byte{0x81}, DeepMsgpack(maxDepth, "array", []byte{0x01})...), 0xc3))
	out = append(out, append(append([]byte{0x81}, DeepMsgpack(maxDepth+1, "array", []byte{0xc0})...), 0xc3))
	out = append(out, append(append([]byte{0x81, 0x92, 0xd4, 0x00, 0x00}, DeepMsgpack(maxDepth-1, "mixed", []byte{0x01})...), 0xc3))
	return out
}
