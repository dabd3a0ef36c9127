package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/server"
)

// wire is a bare Socket.IO client for the examples: it speaks the
// protocol's text frames over a WebSocket, as the official client does.
type wire struct {
	ws  *websocket.Conn
	pid string // the session's private id, in the CONNECT reply when recovery is on
}

func dialWire(url, nsp string) *wire { return dialWireAuth(url, nsp, "") }

// dialWireAuth connects to nsp with auth, a JSON object or "".
func dialWireAuth(url, nsp, auth string) *wire {
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		panic(err)
	}
	w := &wire{ws: ws}
	w.read() // the Engine.IO open packet
	if nsp == "/" {
		w.send("40" + auth)
	} else {
		w.send("40" + nsp + "," + auth)
	}
	reply := w.read()
	var ok struct{ PID string }
	if i := strings.IndexByte(reply, '{'); strings.HasPrefix(reply, "40") && i > 0 {
		_ = json.Unmarshal([]byte(reply[i:]), &ok)
	}
	w.pid = ok.PID
	return w
}

func (w *wire) send(frame string) { _ = w.ws.WriteMessage(websocket.TextMessage, []byte(frame)) }

// read returns the next Socket.IO frame, answering pings.
func (w *wire) read() string {
	for {
		_, b, err := w.ws.ReadMessage()
		if err != nil {
			return err.Error()
		}
		if string(b) == "2" {
			w.send("3")
			continue
		}
		return string(b)
	}
}

func Example() {
	srv := server.New(server.Config{})
	srv.OnConnection(func(s *server.Socket) {
		s.On("hello", func(s *server.Socket, ev *server.Event) {
			var name string
			if err := ev.Decode(0, &name); err != nil {
				return
			}
			_ = ev.Ack("hi " + name)
		})
	})
	ts := httptest.NewServer(srv) // or http.Handle("/socket.io/", srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	c := dialWire(ts.URL, "/")
	c.send(`421["hello","gopher"]`) // EVENT "hello" asking for ack 1
	fmt.Println(c.read())
	// Output: 431["hi gopher"]
}

func ExampleNamespace_Use() {
	srv := server.New(server.Config{})
	srv.Of("/admin").Use(func(s *server.Socket) error {
		return &server.ConnectError{Message: "not authorized", Data: map[string]string{"reason": "no token"}}
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	ws, _, _ := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	c := &wire{ws: ws}
	c.read()
	c.send("40/admin,")
	fmt.Println(c.read())
	// Output: 44/admin,{"message":"not authorized","data":{"reason":"no token"}}
}

func ExampleBroadcastOperator_EmitWithAck() {
	srv := server.New(server.Config{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	c := dialWire(ts.URL, "/")
	go func() {
		frame := c.read() // 420["vote"]: EVENT with ack id 0
		id := strings.TrimSuffix(strings.TrimPrefix(frame, "42"), `["vote"]`)
		c.send("43" + id + `["yes"]`)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	answers, err := srv.Timeout(time.Second).EmitWithAck(ctx, "vote")
	if err != nil {
		fmt.Println(err)
		return
	}
	var vote string
	_ = answers.Decode(0, &vote)
	fmt.Println(len(answers), vote)
	// Output: 1 yes
}

// Asking one client for an acknowledgement without blocking: the func runs
// on the socket's handler goroutine with the answer, or with the error
// that ended the wait.
func ExampleSocket_EmitWithAckFunc() {
	done := make(chan string, 1)
	srv := server.New(server.Config{})
	srv.OnConnection(func(s *server.Socket) {
		_ = s.Timeout(time.Second).EmitWithAckFunc("ready?", func(args server.Args, err error) {
			if errors.Is(err, server.ErrTimeout) { // also errors.Is(err, context.DeadlineExceeded)
				done <- "no answer in time"
				return
			}
			var answer string
			if err := args.Decode(0, &answer); err != nil { // a *server.DecodeError
				done <- err.Error()
				return
			}
			done <- answer
		}, "question")
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	c := dialWire(ts.URL, "/")
	frame := c.read() // 420["ready?","question"]: EVENT with ack id 0
	fmt.Println(frame)
	c.send(`430["yes"]`)
	fmt.Println(<-done)
	// Output:
	// 420["ready?","question"]
	// yes
}

// On adds listeners, as Node's on; Off removes one by the ID On returned.
func ExampleSocket_On() {
	srv := server.New(server.Config{})
	srv.Of("/").On("greet", func(_ *server.Socket, ev *server.Event) { _ = ev.Ack("from the namespace") })
	srv.OnConnection(func(s *server.Socket) {
		id := s.On("greet", func(*server.Socket, *server.Event) {}) // runs too; the first Ack wins
		s.On("quiet", func(s *server.Socket, ev *server.Event) {
			s.Off("greet", id)
			_ = ev.Ack()
		})
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	c := dialWire(ts.URL, "/")
	c.send(`421["greet"]`)
	fmt.Println(c.read())
	c.send(`422["quiet"]`)
	fmt.Println(c.read())
	// Output:
	// 431["from the namespace"]
	// 432[]
}

// Every operation after Close returns ErrClosed, whichever layer answers.
func ExampleServer_Close() {
	srv := server.New(server.Config{})
	_ = srv.Close(context.Background()) // also closes the adapter Factory (Config.Adapter)

	err := srv.Emit("news", "too late")
	fmt.Println(errors.Is(err, server.ErrClosed))
	_, err = srv.FetchSockets(context.Background())
	fmt.Println(errors.Is(err, server.ErrClosed))
	// Output:
	// true
	// true
}
