package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"regexp"
	"time"

	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/server"
)

// The README's code, kept here so that it compiles (docs/docs_test.go
// checks that the README shows exactly this).

// The server API in a page.
func Example_apiInAPage() {
	ctx := context.Background()
	// README begin
	io := server.New(server.Config{
		PingInterval: 25 * time.Second, // zero values are Node's defaults
		CORS:         &engineio.CORS{AllowedOrigins: []string{"https://app.example"}},
	})

	// Namespaces: static, or created on demand by a regexp or a function.
	admin := io.Of("/admin")
	dyn := io.OfRegexp(regexp.MustCompile(`^/room-\d+$`))
	dyn.OnConnection(func(s *server.Socket) { /* inherited by each child */ })

	// Middlewares refuse a connection: the client gets connect_error with message and data.
	admin.Use(func(s *server.Socket) error {
		var auth struct{ Token string }
		_ = json.Unmarshal(s.Handshake().Auth, &auth)
		if auth.Token == "" {
			return &server.ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "no token"}}
		}
		return nil
	})

	// Listeners added on the namespace are shared by all its sockets (nothing per socket).
	io.Of("/").On("ping", func(s *server.Socket, ev *server.Event) { _ = ev.Ack("pong") })

	io.OnConnection(func(s *server.Socket) {
		s.SetData(map[string]string{"user": "ann"}) // what FetchSockets reports, on any node
		s.On("save", func(s *server.Socket, ev *server.Event) {
			var doc struct {
				Name string `json:"name"`
				Body []byte `json:"body"` // binary attachments decode into []byte
			}
			if err := ev.Decode(0, &doc); err != nil { // a *server.DecodeError: "parser: argument 0: ..."
				_ = ev.Ack(map[string]string{"error": err.Error()})
				return
			}
			_ = ev.Ack("saved")
		})
		s.On("echo", func(s *server.Socket, ev *server.Event) {
			_ = ev.Ack(ev.Args.Any()...) // forwarded verbatim: no decode, key order kept
		})
		s.OnAny(func(s *server.Socket, ev *server.Event) { log.Println("got", ev.Name) })
		s.OnDisconnect(func(s *server.Socket, reason string) {
			if reason == server.ReasonPingTimeout { // Node's reason strings, as constants
				log.Println(s.ID(), "stopped answering pings")
			}
		})

		// Asking the client for an ack: the same two methods on every emitter (socket, broadcast, server,
		// remote socket). EmitWithAckFunc returns at once; its func runs on the socket's handler goroutine.
		_ = s.Timeout(5*time.Second).EmitWithAckFunc("ready?", func(args server.Args, err error) {
			if errors.Is(err, server.ErrTimeout) { // also errors.Is(err, context.DeadlineExceeded)
				return
			}
		}, "payload")
		go func() {
			answer, err := s.EmitWithAck(s.Context(), "question") // waits under a context
			_, _ = answer, err
		}()
	})

	// Broadcasts: encoded once, the same bytes for every recipient.
	err := io.To("room1", "room2").Except("banned").Emit("news", map[string]any{"title": "hi"})
	err = io.Local().Volatile().Emit("tick", time.Now().Unix())
	replies, err := io.Timeout(2*time.Second).EmitWithAck(ctx, "vote") // one answer per client
	sockets, err := io.In("room1").FetchSockets(ctx)                   // join/leave/emit/disconnect each
	err = io.In("room1").SocketsJoin(ctx, "room3")
	err = io.ServerSideEmit(ctx, "cache:invalidate", "user:42") // to the other nodes

	// Disconnects everyone, closes the adapter factory, waits for every goroutine; every call
	// afterwards returns server.ErrClosed.
	_ = io.Close(ctx)
	// README end
	_, _, _, _, _ = admin, dyn, replies, sockets, err
}

// Serving it: the http.Server settings the README recommends.
func Example_serving() {
	mux := http.NewServeMux()
	// README begin
	hs := &http.Server{
		Addr:              ":3000",
		Handler:           mux,              // with io mounted at io.Path()
		ReadHeaderTimeout: 10 * time.Second, // a request head must arrive in time
		IdleTimeout:       60 * time.Second, // idle keep-alive connections are closed
		MaxHeaderBytes:    16 << 10,         // as Node; the server refuses more with 431 anyway
		// No ReadTimeout or WriteTimeout: they would cut long-polling requests and
		// WebSocket connections. The server sets its own deadlines per read and write.
	}
	// README end
	_ = hs
}

// Serving it: stopping in order.
func Example_shutdown() {
	io := server.New(server.Config{})
	hs := &http.Server{Handler: io, ReadHeaderTimeout: 10 * time.Second}
	// README begin
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Refuses new sessions (503), closes every client's transport (the official client
	// reconnects by itself, to another node or to the next process), answers pending
	// long-polling requests, and runs the disconnect handlers while the adapter still
	// works: a "user went offline" broadcast reaches the other nodes.
	if err := io.Shutdown(ctx); err != nil {
		log.Print(err) // ctx ended first: late disconnect handlers lost the adapter
	}
	// Nothing of io's holds a request any more: this returns at once for it.
	_ = hs.Shutdown(ctx)
	// README end
}

// Connection state recovery.
func Example_connectionStateRecovery() {
	// README begin
	io := server.New(server.Config{
		// Node's defaults: a 2-minute window, middlewares skipped for a recovered socket.
		ConnectionStateRecovery: &server.RecoveryConfig{MaxDisconnectionDuration: 2 * time.Minute},
	})
	io.OnConnection(func(s *server.Socket) {
		if s.Recovered() {
			// Same id, rooms and data as before the network dropped; the broadcasts
			// it missed were sent to the client before this handler ran.
			return
		}
		s.Join("lobby")
		s.SetData(map[string]string{"user": "ann"})
	})
	// README end
	_ = io
}
