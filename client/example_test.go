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
