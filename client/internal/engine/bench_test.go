package engine

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/engineio"
)

// BenchmarkReceive measures messages per second received from the server,
// 100-byte text messages sent as fast as the server's queue allows.
func BenchmarkReceive(b *testing.B) {
	for _, m := range modes[:2] {
		b.Run(m.name, func(b *testing.B) {
			var got atomic.Int64
			all := make(chan struct{})
			e := newBenchEnv(b)
			c, err := Dial(b.Context(), e.ts.URL, Options{Transports: m.transports, OnMessage: func([]byte, bool) {
				if got.Add(1) == int64(b.N) {
					close(all)
				}
			}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s := <-e.conns
			payload := make([]byte, 100)
			for i := range payload {
				payload[i] = 'a'
			}
			msg := engineio.NewMessage(payload, false)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				drained, err := s.conn.SendPaced(msg)
				if err != nil {
					b.Fatal(err)
				}
				if drained != nil {
					<-drained
				}
			}
			<-all
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

func newBenchEnv(b *testing.B) *env {
	e := &env{conns: make(chan *serverSide, 1)}
	e.srv = engineio.NewServer(quiet(), func(c *engineio.Conn) engineio.Handler {
		s := &serverSide{conn: c, closed: make(chan struct{})}
		e.conns <- s
		return s
	})
	e.ts = newHTTPServer(e.srv)
	b.Cleanup(func() {
		e.srv.Close()
		e.ts.Close()
	})
	return e
}
