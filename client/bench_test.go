package client_test

import (
	"context"
	"testing"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/server"
)

// BenchmarkReceive measures the events per second one Go client takes from
// an ioswarm server in the same process (both sides' costs included), over
// WebSocket.
func BenchmarkReceive(b *testing.B) {
	for _, bc := range []struct {
		name string
		arg  any
	}{
		{"text", map[string]any{"user": "ann", "text": "hello, world"}},
		{"binary", []byte("0123456789abcdef0123456789abcdef")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sockets := make(chan *server.Socket, 1)
			srv := server.New(server.Config{})
			srv.OnConnection(func(s *server.Socket) { sockets <- s })
			ts := startBenchServer(b, srv)
			c, err := client.Dial(context.Background(), ts, client.Options{Transports: []string{"websocket"}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			done := make(chan struct{})
			n := 0
			c.On("e", func(ev *client.Event) {
				n++
				if n == b.N {
					close(done)
				}
			})
			s := <-sockets
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Emit("e", bc.arg); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
