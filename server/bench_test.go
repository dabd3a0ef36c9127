package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/server"
)

// rawClient is a WebSocket client that joined "/" and then only counts the
// bytes it receives, allocating nothing, so that the allocations a
// benchmark reports are the server's.
type rawClient struct {
	ws    *websocket.Conn
	bytes atomic.Int64
}

func dialRaw(b *testing.B, url string) *rawClient {
	b.Helper()
	c := &rawClient{ws: dialConnected(b, url)}
	ws := c.ws
	go func() {
		buf := make([]byte, 4096)
		nc := ws.NetConn()
		for {
			n, err := nc.Read(buf)
			c.bytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return c
}

// dialConnected connects a WebSocket client to "/", past the CONNECT reply.
func dialConnected(b *testing.B, url string) *websocket.Conn {
	b.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil { // open packet
		b.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		b.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || !bytes.HasPrefix(msg, []byte("40")) { // CONNECT reply
		b.Fatal(string(msg), err)
	}
	return ws
}

func raiseFileLimit(n uint64) bool {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return false
	}
	if lim.Cur >= n {
		return true
	}
	lim.Cur = n
	if lim.Max < n {
		lim.Max = n
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) == nil
}

// BenchmarkBroadcast broadcasts a 64-byte payload to N WebSocket clients of
// one server and waits until every client has read every frame. Its
// allocations per broadcast do not grow with N: the packet is encoded and
// framed once and the same bytes are queued on every connection.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			if !raiseFileLimit(uint64(2*n + 1000)) {
				b.Skipf("cannot open %d sockets", 2*n)
			}
			srv := server.New(server.Config{PingInterval: time.Hour})
			ts := httptest.NewServer(srv)
			defer ts.Close()
			defer srv.Close(context.Background())
			clients := make([]*rawClient, n)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 64)
			for i := range clients {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					clients[i] = dialRaw(b, ts.URL)
				}()
			}
			wg.Wait()
			payload := map[string]any{"pad": strings.Repeat("x", 64)}
			// One frame: 2-byte header, "42", the JSON array.
			frame := int64(2 + len(`42["msg",{"pad":"`) + 64 + len(`"}]`))
			burst := func(count int) {
				base := make([]int64, n)
				for i, c := range clients {
					base[i] = c.bytes.Load()
				}
				for i := 0; i < count; i++ {
					if err := srv.Emit("msg", payload); err != nil {
						b.Fatal(err)
					}
				}
				want := int64(count) * frame
				deadline := time.Now().Add(time.Minute)
				for i, c := range clients {
					for c.bytes.Load()-base[i] < want {
						if time.Now().After(deadline) {
							b.Fatalf("client %d got %d of %d bytes", i, c.bytes.Load()-base[i], want)
						}
						time.Sleep(time.Millisecond)
					}
				}
			}
			// Warm the connections' queues up to their steady size first.
			burst(1000)
			b.ReportAllocs()
			b.ResetTimer()
			burst(b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
			for _, c := range clients {
				c.ws.Close()
			}
		})
	}
}

var benchSizes = []int{100, 1000, 5000, 10000}
