package engineio

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type runFunc func()

func (f runFunc) Run() { f() }

// TestRunOnReader: a Runner given from OnMessage runs on the reader after
// OnMessage; one that blocks gets its connection read by a new reader
// meanwhile; polling readers refuse.
func TestRunOnReader(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, quietConfig(), func(r *recorder) {
		r.onMessage = func(r *recorder, data []byte, binary bool) {
			switch string(data) {
			case "block":
				ok := r.conn.RunOnReader(runFunc(func() {
					<-release // until the next message's OnMessage, from another reader
					_ = r.conn.Send(NewMessage([]byte("unblocked"), false))
				}))
				_ = r.conn.Send(NewMessage([]byte(map[bool]string{true: "lent", false: "refused"}[ok]), false))
			case "release":
				close(release)
			default:
				ok := r.conn.RunOnReader(runFunc(func() {}))
				_ = r.conn.Send(NewMessage([]byte(map[bool]string{true: "lent", false: "refused"}[ok]), false))
			}
		}
	})

	// Polling: refused.
	sid := e.handshake(t)
	e.post(t, sid, "4x")
	if got := e.poll(t, sid).body; got != "4refused" {
		t.Fatalf("polling: %q", got)
	}

	ws, _ := e.openWS(t)
	defer ws.Close()
	send := func(s string) {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("4"+s)); err != nil {
			t.Fatal(err)
		}
	}
	send("x")
	if _, got := wsRead(t, ws); got != "4lent" {
		t.Fatalf("websocket: %q", got)
	}
	send("block")
	if _, got := wsRead(t, ws); got != "4lent" {
		t.Fatalf("block: %q", got)
	}
	start := time.Now()
	send("release") // read by the lender's new reader
	if _, got := wsRead(t, ws); got != "4unblocked" {
		t.Fatalf("release: %q", got)
	}
	t.Logf("a blocked reader was replaced after %v", time.Since(start))
	send("x")
	if _, got := wsRead(t, ws); got != "4lent" {
		t.Fatalf("after: %q", got)
	}
}
