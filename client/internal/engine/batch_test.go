package engine

import (
	"bytes"
	"testing"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// A polling batch decodes to the packets it was made of, and respects
// maxPayload unless a single packet is larger.
func FuzzAppendBatch(f *testing.F) {
	f.Add([]byte("hello"), []byte{0, 1, 2}, "wörld", 10)
	f.Add([]byte(""), []byte{}, "", 1)
	f.Fuzz(func(t *testing.T, a, bin []byte, s string, maxPayload int) {
		if bytes.IndexByte(a, eio.RecordSeparator) >= 0 || bytes.IndexByte([]byte(s), eio.RecordSeparator) >= 0 {
			t.Skip() // text cannot carry the separator (nor can the JS client's)
		}
		queue := []packet{
			{typ: eio.Message, data: a},
			{typ: eio.Message, data: bin, binary: true},
			{typ: eio.Pong},
			{typ: eio.Message, data: []byte(s)},
		}
		for len(queue) > 0 {
			body, n := appendBatch(nil, queue, maxPayload)
			if n == 0 {
				t.Fatal("empty batch")
			}
			if n > 1 && len(body) > maxPayload {
				t.Fatalf("batch of %d packets is %d bytes, over %d", n, len(body), maxPayload)
			}
			pkts, err := eio.DecodePayload(body, nil)
			if err != nil || len(pkts) != n {
				t.Fatalf("decoded %d packets (%v), want %d", len(pkts), err, n)
			}
			for i, p := range pkts {
				q := queue[i]
				if p.Type != q.typ || p.Binary != q.binary || !bytes.Equal(p.Data, q.data) {
					t.Fatalf("packet %d: %+v, want %+v", i, p, q)
				}
			}
			queue = queue[n:]
		}
	})
}
