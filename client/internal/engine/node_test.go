package engine

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// startNode runs Node's engine.io server (testdata/eio-server.js). It skips
// the test without node or without integration/node/node_modules (make
// deps); IOSWARM_NODE_MODULES may point to another node_modules.
func startNode(t *testing.T) *testkit.Process {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	mods := os.Getenv("IOSWARM_NODE_MODULES")
	if mods == "" {
		mods = filepath.Join(testkit.RepoRoot(t), "integration", "node", "node_modules")
	}
	if _, err := os.Stat(filepath.Join(mods, "engine.io")); err != nil {
		t.Skipf("no engine.io in %s (make deps)", mods)
	}
	t.Setenv("NODE_PATH", mods)
	script, err := filepath.Abs(filepath.Join("testdata", "eio-server.js"))
	if err != nil {
		t.Fatal(err)
	}
	return testkit.StartProcess(t, t.Context(), "node", script)
}

// The client against Node's engine.io 6 (socket.io 4.8), in each mode:
// query, echo of text and binary, heartbeat over several periods, close
// by the server, close by the client.
func TestNodeServer(t *testing.T) {
	p := startNode(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			in := newInbox()
			c, err := Dial(t.Context(), p.URL(), Options{
				Transports: m.transports,
				Query:      url.Values{"token": {"abc"}},
				OnMessage:  in.onMessage,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := in.waitConn(t, c, 1)[0]; string(got.Data) != "hello abc" {
				t.Fatalf("greeting %q", got.Data)
			}
			if err := c.Send(Message{Data: []byte("héllo")}, Message{Data: []byte{0, 1, 0xff}, Binary: true}); err != nil {
				t.Fatal(err)
			}
			got := in.waitConn(t, c, 3)
			if string(got[1].Data) != "héllo" || got[1].Binary || !bytes.Equal(got[2].Data, []byte{0, 1, 0xff}) || !got[2].Binary {
				t.Fatalf("echo %v", got[1:])
			}
			time.Sleep(1500 * time.Millisecond) // 5 heartbeat periods (300 ms: slack for a loaded machine under -race)
			if c.Transport() != m.final || c.Reason() != "" {
				t.Fatalf("transport %q, reason %q (%v)", c.Transport(), c.Reason(), c.Err())
			}
			if m.name == "upgrade" {
				_ = c.Close()
				waitDone(t, c, ReasonForcedClose, time.Second)
				return
			}
			if err := c.Send(Message{Data: []byte("close me")}); err != nil {
				t.Fatal(err)
			}
			if m.name != "polling" {
				waitDone(t, c, ReasonTransportClose, 2*time.Second)
				return
			}
			// Over polling the server's close packet, on the pending poll, races
			// with a POST (a pong) that reaches the session after it closed:
			// Node answers that one 400 "Session ID unknown", a transport error
			// (as for the JS client).
			select {
			case <-c.Done():
			case <-time.After(2 * time.Second):
				t.Fatal("connection still open after the server closed it")
			}
			var he *HTTPError
			if r := c.Reason(); r != ReasonTransportClose && !(r == ReasonTransportError && errors.As(c.Err(), &he) && he.StatusCode == 400) {
				t.Fatalf("reason %q (err %v), want %q", r, c.Err(), ReasonTransportClose)
			}
		})
	}
}
