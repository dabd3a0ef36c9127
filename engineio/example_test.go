package engineio_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/engineio"
)

// echo sends every message back to its connection.
type echo struct{ c *engineio.Conn }

func (e echo) OnMessage(data []byte, binary bool) {
	_ = e.c.Send(engineio.NewMessage(data, binary))
}

func (e echo) OnClose(reason string, err error) {}

// An echo server, driven by a raw long-polling client.
func ExampleNewServer() {
	srv := engineio.NewServer(engineio.Config{}, func(c *engineio.Conn) engineio.Handler {
		return echo{c}
	})
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	url := ts.URL + "/engine.io/?EIO=4&transport=polling"

	// Handshake: the open packet carries the session id.
	body := get(url)
	sid := strings.Split(body, `"`)[3]
	fmt.Println(strings.Replace(body, sid, "<sid>", 1))

	// Two text messages and a binary one in one POST, echoed in one GET.
	resp, err := http.Post(url+"&sid="+sid, "text/plain;charset=UTF-8",
		strings.NewReader("4hello\x1e4world\x1ebAQIDBA=="))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Printf("%q\n", get(url+"&sid="+sid))
	// Output:
	// 0{"sid":"<sid>","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
	// "4hello\x1e4world\x1ebAQIDBA=="
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// A broadcast: one Message, its frame built once, queued on every
// connection with Enqueue, which leaves the writing to the server's writers
// instead of paying a system call per connection on the broadcasting
// goroutine.
func ExampleConn_Enqueue() {
	var mu sync.Mutex
	var conns []*engineio.Conn
	srv := engineio.NewServer(engineio.Config{}, func(c *engineio.Conn) engineio.Handler {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return nil
	})
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	url := ts.URL + "/engine.io/?EIO=4&transport=polling"
	sids := []string{strings.Split(get(url), `"`)[3], strings.Split(get(url), `"`)[3]}

	news := engineio.NewMessage([]byte(`2["news","hello all"]`), false)
	mu.Lock()
	for _, c := range conns {
		if err := c.Enqueue(news); err != nil {
			fmt.Println(c.ID(), err)
		}
	}
	mu.Unlock()
	for _, sid := range sids {
		fmt.Println(get(url + "&sid=" + sid))
	}
	// Output:
	// 42["news","hello all"]
	// 42["news","hello all"]
}

// replyOnReader answers each message from the connection's reader, once
// OnMessage has returned, instead of waking a goroutine for it.
type replyOnReader struct{ c *engineio.Conn }

func (h replyOnReader) OnMessage(data []byte, binary bool) {
	reply := func() { _ = h.c.Send(engineio.NewMessage(append([]byte("re: "), data...), false)) }
	if !h.c.RunOnReader(runner(reply)) {
		go reply() // polling, or the reader has work already
	}
}

func (h replyOnReader) OnClose(reason string, err error) {}

type runner func()

func (r runner) Run() { r() }

// Work that a WebSocket message starts runs on the connection's reader.
func ExampleConn_RunOnReader() {
	srv := engineio.NewServer(engineio.Config{}, func(c *engineio.Conn) engineio.Handler { return replyOnReader{c} })
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ws.Close()
	_, _, _ = ws.ReadMessage() // the open packet
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4hello"))
	_, reply, _ := ws.ReadMessage()
	fmt.Println(string(reply))
	// Output: 4re: hello
}
