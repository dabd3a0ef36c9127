package client_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TLS and proxies are the caller's: Options.HTTPClient carries them for
// long-polling, Options.Dialer for WebSocket.
func TestE2ETLSThroughProxy(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		srv := server.New(server.Config{})
		srv.OnConnection(func(s *server.Socket) {
			s.On("echo", func(_ *server.Socket, ev *server.Event) { _ = ev.Ack(ev.Args.Any()...) })
		})
		ts := httptest.NewTLSServer(srv)
		t.Cleanup(func() {
			_ = srv.Close(context.Background())
			ts.CloseClientConnections()
			ts.Close()
		})
		px := startConnectProxy(t)
		proxyURL, _ := url.Parse(px.url)
		roots := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		tlsConf := &tls.Config{RootCAs: roots}
		httpClient := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: tlsConf}}
		t.Cleanup(httpClient.CloseIdleConnections)
		dialer := &websocket.Dialer{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: tlsConf}

		c := dial(t, ts.URL, client.Options{Transports: tr, HTTPClient: httpClient, Dialer: dialer})
		args, err := c.EmitWithAck(ctxT(t), "echo", "over tls", []byte{1})
		testkit.NoError(t, err)
		vals, err := args.Values()
		testkit.NoError(t, err)
		testkit.Equal(t, vals, []any{"over tls", []byte{1}})
		testkit.True(t, px.tunnels.Load() > 0, "the proxy carried the connection")
		testkit.NoError(t, c.Close())
	})
}

// connectProxy is an HTTP proxy that only tunnels (CONNECT), as HTTPS
// proxying needs.
type connectProxy struct {
	url     string
	tunnels atomic.Int64
}

func startConnectProxy(t *testing.T) *connectProxy {
	px := &connectProxy{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		down, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			_ = up.Close()
			return
		}
		if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			_ = up.Close()
			_ = down.Close()
			return
		}
		// What the client sent after its CONNECT may be buffered already.
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			_, _ = up.Write(b)
		}
		px.tunnels.Add(1)
		track(up)
		track(down)
		wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(up, down)
		go pipe(down, up)
	}))
	px.url = hs.URL
	t.Cleanup(func() {
		hs.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return px
}
