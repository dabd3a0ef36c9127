package engineio

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkEchoWebSocket measures the read path: N clients each send a
// message and wait for its echo, all at once; one op is one round trip of
// every client. allocs/op counts both sides (the clients are gorilla's).
func BenchmarkEchoWebSocket(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchmarkEcho(b, n) })
	}
}

func benchmarkEcho(b *testing.B, n int) {
	url := startBenchServer(b, func(c *Conn) Handler { return echoHandler{c} })
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		clients[i] = dialBench(b, url)
	}
	msg := []byte(`42["echo",{"headline":"Engine.IO echo","id":12345}]`)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	var wg sync.WaitGroup
	for _, ws := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < b.N; i++ {
				if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
					b.Error(err)
					return
				}
				if _, _, err := ws.ReadMessage(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cpu.report(b, n, "cpu-ns/echo")
}

type echoHandler struct{ c *Conn }

func (h echoHandler) OnMessage(data []byte, binary bool) { _ = h.c.Send(NewMessage(data, binary)) }
func (echoHandler) OnClose(string, error)                {}
