package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/server"
)

// BenchmarkEchoAck measures an event with an ack, answered by a handler
// that echoes its arguments (the load tool's echo), with C clients each
// keeping one request in flight. The clients write a prepared frame and
// count the reply's bytes, allocating nothing: allocs/op are the server's
// per round trip.
func BenchmarkEchoAck(b *testing.B) {
	for _, c := range []int{1, 64} {
		b.Run(fmt.Sprintf("inflight=%d", c), func(b *testing.B) {
			srv := server.New(server.Config{PingInterval: time.Hour})
			srv.Of("/").On("echo", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(ev.Args.Any()...) })
			ts := httptest.NewServer(srv)
			defer ts.Close()
			defer srv.Close(context.Background())

			body := `{"pad":"` + strings.Repeat("x", 64) + `"}`
			req := clientFrame([]byte(`421["echo",` + body + `]`))
			reply := 2 + len(`431[`+body+`]`)
			conns := make([]net.Conn, c)
			for i := range conns {
				conns[i] = dialEcho(b, ts.URL)
			}
			per := make([]int, c)
			for i := range per {
				per[i] = b.N / c
				if i < b.N%c {
					per[i]++
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, nc := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 4096)
					for range per[i] {
						if _, err := nc.Write(req); err != nil {
							b.Error(err)
							return
						}
						for got := 0; got < reply; {
							n, err := nc.Read(buf)
							if err != nil {
								b.Error(err)
								return
							}
							got += n
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			for _, nc := range conns {
				nc.Close()
			}
		})
	}
}

// dialEcho connects a WebSocket client to "/" and returns its socket, past
// the CONNECT reply.
func dialEcho(b *testing.B, url string) net.Conn { return dialConnected(b, url).NetConn() }

// clientFrame frames payload as a client's text frame, masked with a zero
// key (so the payload reads as is).
func clientFrame(payload []byte) []byte {
	f := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}
