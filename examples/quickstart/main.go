// Command quickstart is the README's quick start: a chat server in one
// namespace (docs/docs_test.go keeps the two identical).
package main

import (
	"log"
	"net/http"

	"github.com/ioswarm/ioswarm/server"
)

func main() {
	io := server.New(server.Config{})
	io.OnConnection(func(s *server.Socket) {
		s.Join("lobby")
		s.On("chat", func(s *server.Socket, ev *server.Event) {
			var text string
			if err := ev.Decode(0, &text); err != nil {
				return
			}
			s.To("lobby").Emit("chat", s.ID(), text) // everyone in the room but the sender
			ev.Ack("delivered")                      // answers the client's callback, if any
		})
	})
	http.Handle("/socket.io/", io)
	log.Fatal(http.ListenAndServe(":3000", nil))
}
