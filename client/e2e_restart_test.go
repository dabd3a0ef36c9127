package client_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// restartable is a server that can be stopped and started again on the
// same address, as a deployed server restarts.
type restartable struct {
	addr  string
	setup func(*server.Server)
	srv   *server.Server
	hs    *http.Server
	done  chan struct{}
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	testkit.NoError(t, err)
	r.addr = ln.Addr().String()
	r.srv = server.New(server.Config{})
	r.setup(r.srv)
	r.hs = &http.Server{Handler: r.srv}
	r.done = make(chan struct{})
	go func(hs *http.Server, done chan struct{}) {
		_ = hs.Serve(ln)
		close(done)
	}(r.hs, r.done)
}

func (r *restartable) stop() {
	if r.srv == nil {
		return
	}
	_ = r.srv.Close(context.Background())
	_ = r.hs.Close()
	<-r.done
	r.srv = nil
}

func TestE2EServerRestart(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		got := make(chan string, 16)
		r := &restartable{addr: "127.0.0.1:0", setup: func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.On("msg", func(s *server.Socket, ev *server.Event) {
					var m string
					_ = ev.Decode(0, &m)
					got <- m
				})
			})
		}}
		r.start(t)
		t.Cleanup(r.stop)
		c := dial(t, "http://"+r.addr, client.Options{Transports: tr,
			ReconnectionDelay: 20 * time.Millisecond, ReconnectionDelayMax: 50 * time.Millisecond})
		down := make(chan string, 1)
		up := make(chan struct{}, 1)
		c.OnDisconnect(func(reason string) { down <- reason })
		c.OnConnect(func() { up <- struct{}{} })
		errs := make(chan error, 64)
		c.OnConnectError(func(err error) { errs <- err })

		testkit.NoError(t, c.Emit("msg", "first"))
		testkit.Equal(t, recv(t, got), "first")
		r.stop()
		reason := recv(t, down)
		testkit.True(t, reason == client.ReasonTransportClose || reason == client.ReasonTransportError, "reason %q", reason)
		testkit.NoError(t, c.Emit("msg", "while down"))
		<-errs // at least one attempt failed while the server was away
		r.start(t)
		recv(t, up)
		testkit.Equal(t, recv(t, got), "while down")
		testkit.NoError(t, c.Emit("msg", "after"))
		testkit.Equal(t, recv(t, got), "after", "the buffered emit was delivered once")
	})
}
