package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if modulePath(filepath.Join(root, "go.mod")) != ModulePath {
		t.Fatalf("RepoRoot = %s, whose go.mod is not %s", root, ModulePath)
	}
	if _, err := os.Stat(filepath.Join(root, "integration", "node", "client-driver.js")); err != nil {
		t.Fatal(err)
	}
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("FreeAddr %s: %v", addr, err)
	}
	l.Close()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %s", addr)
	}
}

func TestWire(t *testing.T) {
	in := []any{"s", 1, []byte{1, 2}, map[string]any{"b": []byte{}, "l": []any{[]byte{3}}}, json.RawMessage(`{"b":1,"a":2}`)}
	raw, err := argsToWire(in)
	NoError(t, err)
	Equal(t, string(raw), `["s",1,{"$bin":"AQI="},{"b":{"$bin":""},"l":[{"$bin":"Aw=="}]},{"b":1,"a":2}]`)

	var raws []json.RawMessage
	NoError(t, json.Unmarshal(raw, &raws))
	got, err := fromWireList(raws)
	NoError(t, err)
	Equal(t, got, []any{"s", 1.0, []byte{1, 2}, map[string]any{"b": []byte{}, "l": []any{[]byte{3}}}, map[string]any{"b": 1.0, "a": 2.0}})

	// An object that merely has a "$bin" key among others stays an object.
	v, err := FromWire(json.RawMessage(`{"$bin":"AQI=","x":1}`))
	NoError(t, err)
	Equal(t, v, map[string]any{"$bin": "AQI=", "x": 1.0})
}

func TestFirstDiff(t *testing.T) {
	for _, tc := range []struct {
		got, want any
		diff      string
	}{
		{[]any{1, 2}, []any{1, 3}, " at [1]: got 2 (int), want 3 (int)"},
		{map[string]any{"a": []any{"x"}}, map[string]any{"a": []any{"y"}}, ` at ["a"][0]: got "x" (string), want "y" (string)`},
		{map[string]any{"a": 1}, map[string]any{"b": 1}, ` at ["a"]: got 1 (int), want <missing>`},
		{[]any{1}, []any{1, 2}, " at .len: got 1, want 2"},
		{1, "1", ` at (top): got 1 (int), want "1" (string)`},
	} {
		if d := firstDiff(tc.got, tc.want); d != tc.diff {
			t.Errorf("firstDiff(%v, %v) = %q, want %q", tc.got, tc.want, d, tc.diff)
		}
	}
}

// errorRecorder catches Errorf calls (for cleanups that report through the TB).
type errorRecorder struct {
	testing.TB
	errs []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, format)
}

func TestStartProcess(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skip("no /bin/sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	good := StartProcess(t, ctx, sh, "-c", `trap 'echo bye; exit 0' TERM; echo "listening on 127.0.0.1:1"; while :; do sleep 0.05; done`)
	Equal(t, good.Addr, "127.0.0.1:1")
	Equal(t, good.URL(), "http://127.0.0.1:1")
	NoError(t, good.Stop())
	NoError(t, good.Stop(), "second Stop")

	rec := &errorRecorder{TB: t}
	bad := StartProcess(rec, ctx, sh, "-c", `trap 'exit 3' TERM; echo "listening on x:2"; while :; do sleep 0.05; done`)
	err := bad.Stop()
	True(t, err != nil && strings.Contains(err.Error(), "exit status 3"), "Stop of a process exiting 3: %v", err)
}

// startReference starts the Node.js reference testapp.
func startReference(t *testing.T) *Process {
	t.Helper()
	node := RequireNode(t)
	dir := filepath.Join(RepoRoot(t), "integration", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io")); err != nil {
		t.Skipf("socket.io is not installed in %s: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return StartProcess(t, ctx, node, filepath.Join(dir, "testapp.js"), "-addr", FreeAddr(t))
}

func TestNodeClientDriver(t *testing.T) {
	CheckGoroutines(t) // first: its cleanup runs last
	srv := startReference(t)
	d := NewNodeClientDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := d.Connect(ctx, ConnectOptions{URL: srv.URL(), Transports: []string{"websocket"}, Auth: map[string]any{"k": []byte{1}}})
	NoError(t, err)
	id, err := c.WaitConnect(ctx)
	NoError(t, err)
	welcome, err := c.Next(ctx, "welcome")
	NoError(t, err)
	// CONNECT packets are plain JSON: a Buffer in auth arrives as Node's Buffer JSON.
	bufJSON := map[string]any{"type": "Buffer", "data": []any{1.0}}
	Equal(t, welcome, []any{map[string]any{"node": srv.Addr, "id": id, "nsp": "/", "auth": map[string]any{"k": bufJSON}}})
	tr, err := c.Transport(ctx)
	NoError(t, err)
	Equal(t, tr, "websocket")
	info, err := c.Info(ctx)
	NoError(t, err)
	Equal(t, info, ClientInfo{ID: id, Connected: true, Active: true, Transport: "websocket"})

	// Binary, nested, both ways; raw key order.
	args := []any{"a", []byte{0, 255}, map[string]any{"x": []any{[]byte("hi"), nil}}}
	res, err := c.EmitWithAck(ctx, "echo", args...)
	NoError(t, err)
	Equal(t, res, []any{"a", []byte{0, 255}, map[string]any{"x": []any{[]byte("hi"), nil}}})
	raw, err := c.EmitWithAckRaw(ctx, "echo", json.RawMessage(`{"z":1,"a":[{"y":2,"b":3}]}`))
	NoError(t, err)
	Equal(t, string(raw[0]), `{"z":1,"a":[{"y":2,"b":3}]}`)

	// Events arriving before the wait are buffered; TryNext and Until.
	for _, name := range []string{"e1", "e2", "e3"} {
		_, err := c.EmitWithAck(ctx, "echo-event", name, name)
		NoError(t, err)
	}
	ev, ok := c.TryNext("e2")
	True(t, ok, "e2 buffered")
	Equal(t, ev.Args, []any{"e2"})
	evs, err := c.Until(ctx, "e3")
	NoError(t, err)
	Equal(t, len(evs), 2)
	Equal(t, []string{evs[0].Name, evs[1].Name}, []string{"e1", "e3"})
	Equal(t, len(c.Buffered()), 0)

	// Server→client acks: automatic responders and Event.Ack.
	NoError(t, c.OnAck(ctx, "q", "answer", []byte{7}))
	res, err = c.EmitWithAck(ctx, "ask", map[string]any{"event": "q", "args": []any{1}, "timeoutMs": 2000})
	NoError(t, err)
	Equal(t, res, []any{map[string]any{"err": nil, "response": []any{"answer", []byte{7}}}})
	ev, err = c.NextEvent(ctx, "q")
	NoError(t, err)
	Equal(t, ev.Auto, "reply")
	NoError(t, c.OnAckEcho(ctx, "q"))
	res, err = c.EmitWithAck(ctx, "ask", map[string]any{"event": "q", "args": []any{2, "x"}, "timeoutMs": 2000})
	NoError(t, err)
	Equal(t, res, []any{map[string]any{"err": nil, "response": []any{2.0, "x"}}})
	ev, err = c.NextEvent(ctx, "q")
	NoError(t, err)
	Equal(t, ev.Auto, "echo")
	NoError(t, c.OnAckSilent(ctx, "q"))
	res, err = c.EmitWithAck(ctx, "ask", map[string]any{"event": "q", "timeoutMs": 100})
	NoError(t, err)
	Equal(t, res, []any{map[string]any{"err": "operation has timed out", "response": []any{}}})
	NoError(t, c.OffAck(ctx, "q"))
	done := make(chan []any, 1)
	go func() {
		res, _ := c.EmitWithAck(ctx, "ask", map[string]any{"event": "q", "timeoutMs": 5000})
		done <- res
	}()
	ev, err = c.NextEvent(ctx, "q") // the silent one
	NoError(t, err)
	Equal(t, ev.Auto, "silent")
	ev, err = c.NextEvent(ctx, "q")
	NoError(t, err)
	True(t, ev.HasAck(), "pending ack")
	NoError(t, ev.Ack(ctx, "manual"))
	Equal(t, <-done, []any{map[string]any{"err": nil, "response": []any{"manual"}}})

	// Client-side ack timeout.
	_, err = c.EmitWithAckTimeout(ctx, 100*time.Millisecond, "no-such-event")
	True(t, IsAckTimeout(err), "want an ack timeout, got %v", err)

	// A context that ends first names what was buffered.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.Next(short, "never")
	cancelShort()
	True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)

	// connect_error with and without data; shared Manager.
	bad, err := d.Connect(ctx, ConnectOptions{URL: srv.URL(), Manager: "m", Auth: map[string]any{"token": "bad"}})
	NoError(t, err)
	ce, err := bad.WaitConnectError(ctx)
	NoError(t, err)
	Equal(t, *ce, ConnectError{Message: "unauthorized", Data: map[string]any{"reason": "bad token"}, HasData: true})
	unknown, err := d.Connect(ctx, ConnectOptions{URL: srv.URL(), Manager: "m", Namespace: "/nope"})
	NoError(t, err)
	_, err = unknown.WaitConnect(ctx)
	var cerr *ConnectError
	True(t, errors.As(err, &cerr) && cerr.Message == "Invalid namespace" && !cerr.HasData, "got %v", err)
	custom, err := d.Connect(ctx, ConnectOptions{URL: srv.URL(), Manager: "m", Namespace: "/custom"})
	NoError(t, err)
	_, err = custom.WaitConnect(ctx)
	NoError(t, err)
	NoError(t, d.CloseManager(ctx, "m"))
	reason, err := custom.WaitDisconnect(ctx)
	NoError(t, err)
	Equal(t, reason, "forced close")

	// Disconnects.
	NoError(t, c.Disconnect(ctx))
	reason, err = c.WaitDisconnect(ctx)
	NoError(t, err)
	Equal(t, reason, "io client disconnect")
	p, err := d.Connect(ctx, ConnectOptions{URL: srv.URL(), Transports: []string{"polling"}})
	NoError(t, err)
	_, err = p.WaitConnect(ctx)
	NoError(t, err)
	NoError(t, p.CloseTransport(ctx))
	_, err = p.WaitDisconnect(ctx)
	NoError(t, err)
	NoError(t, p.Close(ctx))

	_, err = d.Connect(ctx, ConnectOptions{URL: srv.URL(), Handle: p.Handle()})
	True(t, err != nil, "a handle used twice")
	_, err = d.Connect(ctx, ConnectOptions{})
	True(t, err != nil, "no URL")
}

func TestEqualUsesDeepEqual(t *testing.T) {
	Equal(t, []any{map[string]any{"a": []byte{1}}}, []any{map[string]any{"a": []byte{1}}})
	NotEqual(t, []byte{}, []byte(nil))
	JSONEqual(t, `{"a":1,"b":[2]}`, `{"b":[2],"a":1}`)
	if !reflect.DeepEqual(toWire([]byte(nil)), map[string]string{binKey: ""}) {
		t.Fatal("nil []byte is binary too")
	}
}

func TestCheckGoroutines(t *testing.T) {
	stop := make(chan struct{})
	var rec *errorRecorder
	t.Run("leaks", func(t *testing.T) {
		rec = &errorRecorder{TB: t}
		CheckGoroutines(rec)
		go func() { <-stop }()
	})
	close(stop)
	True(t, len(rec.errs) == 1, "leak not reported: %v", rec.errs)

	t.Run("clean", func(t *testing.T) {
		rec = &errorRecorder{TB: t}
		CheckGoroutines(rec)
		done := make(chan struct{})
		go func() { time.Sleep(100 * time.Millisecond); close(done) }()
	})
	True(t, len(rec.errs) == 0, "goroutine that ends within the settle time reported: %v", rec.errs)
}
