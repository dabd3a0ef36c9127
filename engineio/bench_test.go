package engineio

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkBroadcastWebSocket sends one Message to N in-process WebSocket
// connections per iteration and waits until every client has received it.
// Clients read raw bytes with a reused buffer, so allocs/op counts the
// server side only: they must not grow with N (the frame is prepared once
// per Message, and queue slots and write buffers are recycled).
func BenchmarkBroadcastWebSocket(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchmarkBroadcast(b, n) })
	}
}

func benchmarkBroadcast(b *testing.B, n int) {
	var mu sync.Mutex
	var conns []*Conn
	url := startBenchServer(b, func(c *Conn) Handler {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return nil
	})
	var received atomic.Int64
	for range n {
		raw := dialBench(b, url).NetConn() // nothing else is buffered: the server is quiet
		go func() {
			buf := make([]byte, 32<<10)
			for {
				k, err := raw.Read(buf)
				if err != nil {
					return
				}
				received.Add(int64(k))
			}
		}()
	}
	payload := []byte(`2["news",{"headline":"Engine.IO broadcast","id":12345}]`)
	frame := int64(2 + 1 + len(payload)) // header, '4', payload
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		m := NewMessage(payload, false)
		for _, c := range conns {
			if err := c.Enqueue(m); err != nil {
				b.Fatal(err)
			}
		}
		for target := int64(i+1) * int64(n) * frame; received.Load() < target; {
			runtime.Gosched()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/conn")
	cpu.report(b, n, "cpu-ns/conn")
}

// startBenchServer serves an Engine.IO server with a quiet heartbeat until
// the benchmark ends, and returns its WebSocket URL.
func startBenchServer(b *testing.B, accept func(*Conn) Handler) string {
	srv := NewServer(Config{PingInterval: time.Hour, PingTimeout: time.Hour}, accept)
	ts := httptest.NewServer(srv)
	b.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/?EIO=4&transport=websocket"
}

// dialBench opens a WebSocket session and reads its open packet.
func dialBench(b *testing.B, url string) *websocket.Conn {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	if _, _, err := ws.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	return ws
}

// BenchmarkSend measures Conn.Send into a queue (count and byte accounting,
// no writer): it must not allocate.
func BenchmarkSend(b *testing.B) {
	srv := NewServer(Config{PingInterval: time.Hour, PingTimeout: time.Hour}, nil)
	defer srv.Close()
	c := srv.newConn(httptest.NewRequest("GET", "/?EIO=4&transport=polling", nil))
	c.handler = nopHandler{}
	m := NewMessage([]byte(`2["news",{"headline":"Engine.IO broadcast","id":12345}]`), false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Send(m); err != nil {
			b.Fatal(err)
		}
		if i%1024 == 1023 {
			c.mu.Lock()
			c.recycleLocked(c.takeLocked())
			c.mu.Unlock()
		}
	}
}

// BenchmarkNewMessage measures the UTF-8 check of NewMessage on valid
// text: one allocation, the Message.
func BenchmarkNewMessage(b *testing.B) {
	payload := []byte(`2["news",{"headline":"Engine.IO broadcast — ünïcödé","id":12345,"body":"` +
		strings.Repeat("lorem ipsum ", 40) + `"}]`)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		messageSink = NewMessage(payload, false)
	}
}
