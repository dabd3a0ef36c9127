package server_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/memory"
	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// countingFactory is the in-memory Factory, counting its Close calls.
type countingFactory struct {
	memory.Factory
	closed atomic.Int32
}

func (f *countingFactory) Close(ctx context.Context) error {
	f.closed.Add(1)
	return f.Factory.Close(ctx)
}

// TestAfterClose: every operation after Close returns ErrClosed, whichever
// layer notices, and Close closes the adapter Factory once.
func TestAfterClose(t *testing.T) {
	f := &countingFactory{}
	var sock atomic.Pointer[server.Socket]
	fx := start(t, []string{"websocket"}, server.Config{Adapter: f}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) { sock.Store(s) })
	})
	fx.connect("/", nil)
	srv := fx.srv
	testkit.NoError(t, srv.Close(ctxT(t)))
	testkit.Equal(t, f.closed.Load(), int32(1), "Factory closed by Server.Close")
	testkit.NoError(t, srv.Close(ctxT(t)))
	testkit.Equal(t, f.closed.Load(), int32(1), "Close is idempotent")

	ctx := ctxT(t)
	s := sock.Load()
	_, fetchErr := srv.FetchSockets(ctx)
	_, ackErr := srv.Timeout(time.Second).EmitWithAck(ctx, "x")
	_, sseErr := srv.ServerSideEmitWithAck(ctx, "x")
	_, sockAckErr := s.EmitWithAck(ctx, "x")
	for name, err := range map[string]error{
		"Server.Emit":                  srv.Emit("x", 1),
		"To.Emit":                      srv.To("r").Emit("x"),
		"EmitWithAck":                  ackErr,
		"EmitWithAckFunc":              srv.Timeout(time.Second).EmitWithAckFunc("x", func(server.Args, error) {}),
		"FetchSockets":                 fetchErr,
		"SocketsJoin":                  srv.SocketsJoin(ctx, "r"),
		"SocketsLeave":                 srv.SocketsLeave(ctx, "r"),
		"DisconnectSockets":            srv.DisconnectSockets(ctx, false),
		"ServerSideEmit":               srv.ServerSideEmit(ctx, "x"),
		"ServerSideEmitWithAck":        sseErr,
		"Socket.Emit":                  s.Emit("x"),
		"Socket.EmitWithAck":           sockAckErr,
		"Socket.Join":                  s.Join("r"),
		"Socket.Leave":                 s.Leave("r"),
		"Socket.Timeout.EmitWithAckFn": s.Timeout(time.Second).EmitWithAckFunc("x", func(server.Args, error) {}),
	} {
		testkit.ErrorIs(t, err, server.ErrClosed, name)
	}
	testkit.True(t, server.ErrClosed == adapter.ErrClosed, "one ErrClosed")
}

// TestErrorModel: timeouts match ErrTimeout and context.DeadlineExceeded
// and keep Node's text; a cancelled context is not a timeout; arguments that
// do not decode say which and why; a func among emit arguments is named.
func TestErrorModel(t *testing.T) {
	type answer struct {
		args server.Args
		err  error
	}
	got := make(chan answer, 8)
	timed := make(chan answer, 1)
	fx := start(t, []string{"websocket"}, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.On("go", func(s *server.Socket, ev *server.Event) {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_, err := s.EmitWithAck(ctx, "silent")
				got <- answer{nil, err}
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				_, err = s.EmitWithAck(ctx, "silent")
				got <- answer{nil, err}
				_ = s.Timeout(50*time.Millisecond).EmitWithAckFunc("silent", func(a server.Args, err error) {
					timed <- answer{a, err}
				})
				got <- answer{nil, s.Emit("x", func(error, server.Args) {})}
				got <- answer{nil, ev.Decode(0, new(int))}
				got <- answer{nil, ev.Decode(3, new(string))}
			})
		})
	})
	c := fx.connect("/", nil)
	c.On("silent", func(*client.Event) {}) // never answers
	testkit.NoError(t, c.Emit("go", "text"))

	for _, what := range []string{"ctx deadline", "ctx cancelled", "Timeout"} {
		var a answer
		if what == "Timeout" {
			a = <-timed
		} else {
			a = <-got
		}
		if what == "ctx cancelled" {
			testkit.ErrorIs(t, a.err, context.Canceled, what)
			testkit.True(t, !errors.Is(a.err, server.ErrTimeout), "%s: not a timeout", what)
			continue
		}
		testkit.ErrorIs(t, a.err, server.ErrTimeout, what)
		testkit.ErrorIs(t, a.err, context.DeadlineExceeded, what)
		var te *server.TimeoutError
		testkit.True(t, errors.As(a.err, &te), "%s: a *TimeoutError", what)
		testkit.Equal(t, a.err.Error(), "operation has timed out", what)
	}

	a := <-got
	testkit.True(t, a.err != nil && strings.Contains(a.err.Error(), "argument 0 is a func(error, parser.Args)") &&
		strings.Contains(a.err.Error(), "EmitWithAckFunc"), "func argument: %v", a.err)

	a = <-got
	testkit.ErrorIs(t, a.err, server.ErrDecode)
	testkit.Equal(t, a.err.Error(), "parser: argument 0: cannot decode JSON string into Go value of type int")
	var de *server.DecodeError
	testkit.True(t, errors.As(a.err, &de) && de.Index == 0, "a *DecodeError for argument 0: %#v", a.err)

	a = <-got
	testkit.ErrorIs(t, a.err, server.ErrDecode)
	testkit.Equal(t, a.err.Error(), "parser: argument 3: missing (1 arguments)")
}

// TestOutgoingListenerSeesArgs: outgoing listeners get the encoded
// arguments, of direct emits and of broadcasts alike.
func TestOutgoingListenerSeesArgs(t *testing.T) {
	type out struct {
		event string
		n     int
		text  string
	}
	got := make(chan out, 4)
	fx := start(t, []string{"websocket"}, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.OnAnyOutgoing(func(_ *server.Socket, event string, args server.Args) {
				var o out
				o.event, o.n = event, args.Len()
				_ = args.Decode(0, &o.text)
				got <- o
			})
			_ = s.Emit("direct", "a", []byte{1})
			_ = srv.Emit("bcast", "b")
		})
	})
	c := fx.connect("/", nil)
	_, err := c.next(ctxT(t), "bcast")
	testkit.NoError(t, err)
	testkit.Equal(t, <-got, out{"direct", 2, "a"})
	testkit.Equal(t, <-got, out{"bcast", 1, "b"})
}
