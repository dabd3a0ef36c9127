package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/server"
)

// exampleServer starts an ioswarm server with a "hello" event and a
// namespace "/admin" that wants a token.
func exampleServer() (url string, stop func()) {
	srv := server.New(server.Config{})
	srv.OnConnection(func(s *server.Socket) {
		s.On("hello", func(s *server.Socket, ev *server.Event) {
			var name string
			_ = ev.Decode(0, &name)
			_ = ev.Ack("hello, " + name)
		})
	})
	srv.Of("/admin").Use(func(s *server.Socket) error {
		return &server.ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "no token"}}
	})
	ts := httptest.NewServer(srv)
	return ts.URL, func() {
		_ = srv.Close(context.Background())
		ts.Close()
	}
}

func ExampleDial() {
	url, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	socket, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer socket.Close()

	args, err := socket.EmitWithAck(ctx, "hello", "gopher")
	if err != nil {
		log.Fatal(err)
	}
	var reply string
	if err := args.Decode(0, &reply); err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply)
	// Output: hello, gopher
}

func ExampleConnectError() {
	url, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, url+"/admin", client.Options{})
	var refused *client.ConnectError
	if errors.As(err, &refused) {
		fmt.Println(refused.Message, refused.Data)
	}
	// Output: unauthorized map[reason:no token]
}

func ExampleManager() {
	url, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := client.NewManager(url, client.Options{Transports: []string{"websocket"}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // closes every socket, then the connection
	main, err := m.Socket(ctx, "/", nil)
	if err != nil {
		log.Fatal(err)
	}
	// The same Engine.IO connection, another namespace: refused here.
	_, err = m.Socket(ctx, "/admin", map[string]string{"token": "?"})
	fmt.Println(err)
	fmt.Println(main.Connected())
	// Output:
	// client: connect error: unauthorized
	// true
}

func ExampleSocket_Timeout() {
	url, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	socket, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer socket.Close()

	// Nobody answers "nobody": the wait ends after 50ms.
	_, err = socket.Timeout(50*time.Millisecond).EmitWithAck(ctx, "nobody")
	fmt.Println(err, errors.Is(err, client.ErrTimeout))
	// Output: operation has timed out true
}

// The README's client example (docs/docs_test.go checks that the README
// shows exactly this).
func Example_readme() {
	ctx := context.Background()
	// README begin
	socket, err := client.NewSocket("http://localhost:3000/chat", client.Options{
		Auth:                 map[string]any{"token": "abc"},
		Transports:           []string{"websocket"}, // nil: polling, then upgrade
		ReconnectionDelayMax: 10 * time.Second,      // backoff with jitter, as the JS client
	})
	if err != nil {
		log.Fatal(err)
	}
	// Listeners before Connect: nothing sent at connection is missed. Handlers of one socket run
	// in order, on a goroutine of its own.
	socket.On("message", func(ev *client.Event) {
		var text string
		_ = ev.Decode(0, &text)
		if ev.HasAck() {
			_ = ev.Ack("got it")
		}
	})
	socket.OnConnect(func() { log.Println("connected; recovered:", socket.Recovered()) })
	socket.OnDisconnect(func(reason string) { log.Println("disconnected:", reason) }) // it reconnects
	// A *client.ConnectError when the server refuses.
	if err := socket.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer socket.Close()

	_ = socket.Emit("chat", "hello", []byte{1, 2}) // buffered while disconnected
	reply, err := socket.Timeout(5*time.Second).EmitWithAck(ctx, "rooms")
	// README end
	_, _ = reply, err
}
