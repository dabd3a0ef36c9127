package integration

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The scenarios mostly wait on other processes: run more of them at once than there are
	// CPUs, unless -test.parallel was given.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit && runtime.GOMAXPROCS(0) < 6 {
		_ = flag.Set("test.parallel", "6")
	}
	testkit.Main(m)
}

// opTimeout bounds every single step of a scenario.
const opTimeout = 15 * time.Second

// idPattern is what socket ids and Engine.IO sids look like.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{20}$`)

// ---------------------------------------------------------------- targets

// target is a server implementing the test application contract.
type target struct {
	name string
	// start starts one server node with extra command-line flags.
	start func(t *testing.T, extra ...string) *testkit.Process
}

var allTargets = []target{
	{name: "js", start: startJS},
	{name: "go", start: startGo},
}

// selectedTargets reads IOSWARM_TARGET: "js", "go" (the default) or "all".
func selectedTargets(t *testing.T) []target {
	t.Helper()
	sel := strings.TrimSpace(os.Getenv("IOSWARM_TARGET"))
	switch sel {
	case "", "go":
		return allTargets[1:]
	case "js":
		return allTargets[:1]
	case "all":
		return allTargets
	}
	t.Fatalf("IOSWARM_TARGET=%q: want js, go or all", sel)
	return nil
}

// startJS starts integration/node/testapp.js, the Node.js reference.
func startJS(t *testing.T, extra ...string) *testkit.Process {
	t.Helper()
	node := testkit.RequireNode(t)
	dir := filepath.Join(testkit.RepoRoot(t), "integration", "node")
	for _, pkg := range []string{"socket.io", "@socket.io/redis-adapter", "redis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			t.Skipf("integration/node/node_modules/%s is missing (npm ci in %s): %v", pkg, dir, err)
		}
	}
	args := append([]string{filepath.Join(dir, "testapp.js"), "-addr", "127.0.0.1:0"}, extra...)
	return testkit.StartProcess(t, context.Background(), node, args...)
}

// startGo starts the Go testapp, built once per test binary (skipped while it does not
// exist).
func startGo(t *testing.T, extra ...string) *testkit.Process {
	t.Helper()
	bin := testkit.BuildTestapp(t)
	args := append([]string{"-addr", "127.0.0.1:0"}, extra...)
	return testkit.StartProcess(t, context.Background(), bin, args...)
}

// ---------------------------------------------------------------- transport modes

// mode is how the clients of a scenario reach the server.
type mode struct {
	name       string
	transports []string // io() "transports"; nil = default
	// want is the transport every client still connected must end the scenario on.
	want string
}

var modes = []mode{
	{name: "websocket", transports: []string{"websocket"}, want: "websocket"},
	{name: "polling", transports: []string{"polling"}, want: "polling"},
	{name: "default", want: "websocket"}, // polling, then upgrade
}

// ---------------------------------------------------------------- scenario environment

// env is one server (or cluster) and one client driver for a scenario in one mode.
type env struct {
	t      *testing.T
	target target
	mode   mode
	srv    *testkit.Process
	drv    *testkit.NodeClientDriver
	node   string // the server's node name
	url    string

	clients []*client
}

// scenario runs fn for every selected target and every transport mode, in parallel, each
// with its own server started with the extra flags.
func scenario(t *testing.T, fn func(e *env), extra ...string) {
	t.Helper()
	t.Parallel()
	for _, tg := range selectedTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, m := range modes {
				t.Run(m.name, func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, tg, m, extra...)
					fn(e)
				})
			}
		})
	}
}

// newEnv starts a server of the target and a client driver.
func newEnv(t *testing.T, tg target, m mode, extra ...string) *env {
	t.Helper()
	srv := tg.start(t, extra...)
	return envOn(t, tg, m, srv, testkit.NewNodeClientDriver(t), extra...)
}

// envOn is the environment of a server already started with the extra flags, using drv.
func envOn(t *testing.T, tg target, m mode, srv *testkit.Process, drv *testkit.NodeClientDriver, extra ...string) *env {
	t.Helper()
	e := &env{t: t, target: tg, mode: m, srv: srv, drv: drv, node: srv.Addr, url: srv.URL()}
	for i := 0; i+1 < len(extra); i++ {
		if extra[i] == "-node" {
			e.node = extra[i+1]
		}
	}
	// Registered after the driver started: runs before the driver is stopped.
	t.Cleanup(e.checkTransports)
	return e
}

// ctx returns a context for one step.
func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	e.t.Cleanup(cancel)
	return ctx
}

// checkTransports asserts that every client still connected ends on the mode's transport
// (for the default mode: that it upgraded to WebSocket).
func (e *env) checkTransports() {
	if e.t.Failed() {
		return
	}
	for _, c := range e.clients {
		deadline := time.Now().Add(5 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			info, err := c.Info(ctx)
			cancel()
			if err != nil {
				e.t.Errorf("%s: info: %v", c.Handle(), err)
				break
			}
			if !info.Connected || info.Transport == e.mode.want {
				break
			}
			if time.Now().After(deadline) {
				e.t.Errorf("%s: transport is %q at the end of the scenario, want %q", c.Handle(), info.Transport, e.mode.want)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// waitTransport waits until the client is on the mode's final transport (for the default
// mode: until it upgraded).
func (e *env) waitTransport(c *client) {
	e.t.Helper()
	e.eventually(c.Handle()+" transport", func() (bool, any) {
		tr, err := c.Transport(e.ctx())
		testkit.NoError(e.t, err)
		return tr == e.mode.want, tr
	})
}

// opt changes the options of one client.
type opt func(*testkit.ConnectOptions)

func nsp(name string) opt { return func(o *testkit.ConnectOptions) { o.Namespace = name } }
func auth(v any) opt      { return func(o *testkit.ConnectOptions) { o.Auth = v } }
func manager(n string) opt {
	return func(o *testkit.ConnectOptions) { o.Manager = n }
}

// options returns the connect options of the mode with opts applied.
func (e *env) options(opts ...opt) testkit.ConnectOptions {
	o := testkit.ConnectOptions{URL: e.url, Transports: e.mode.transports}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// dial creates a client without waiting for the outcome.
func (e *env) dial(opts ...opt) *testkit.Client {
	e.t.Helper()
	c, err := e.drv.Connect(e.ctx(), e.options(opts...))
	testkit.NoError(e.t, err, "connect")
	return c
}

// client is a connected client with its socket id and welcome.
type client struct {
	*testkit.Client
	e       *env
	id      string
	welcome map[string]any
}

// connect creates a client, waits for it to connect and for its welcome, and checks that the
// welcome names the socket.
func (e *env) connect(opts ...opt) *client {
	e.t.Helper()
	tc := e.dial(opts...)
	id, err := tc.WaitConnect(e.ctx())
	testkit.NoError(e.t, err, "%s: connect", tc.Handle())
	args, err := tc.Next(e.ctx(), "welcome")
	testkit.NoError(e.t, err, "%s: welcome", tc.Handle())
	testkit.Equal(e.t, len(args), 1, "%s: welcome arguments", tc.Handle())
	w, ok := args[0].(map[string]any)
	testkit.True(e.t, ok, "%s: welcome is %T, want an object", tc.Handle(), args[0])
	testkit.Equal(e.t, w["id"], id, "%s: welcome.id", tc.Handle())
	c := &client{Client: tc, e: e, id: id, welcome: w}
	e.clients = append(e.clients, c)
	return c
}

// connectN connects n clients with the same options.
func (e *env) connectN(n int, opts ...opt) []*client {
	e.t.Helper()
	out := make([]*client, n)
	for i := range out {
		out[i] = e.connect(opts...)
	}
	return out
}

// ack emits with an acknowledgement and returns the ack arguments; it fails the test on error.
func (c *client) ack(event string, args ...any) []any {
	c.e.t.Helper()
	res, err := c.EmitWithAck(c.e.ctx(), event, args...)
	testkit.NoError(c.e.t, err, "%s: emit %q", c.Handle(), event)
	return res
}

// ack1 is ack returning the single ack argument.
func (c *client) ack1(event string, args ...any) any {
	c.e.t.Helper()
	res := c.ack(event, args...)
	testkit.Equal(c.e.t, len(res), 1, "%s: number of ack arguments of %q: %v", c.Handle(), event, res)
	return res[0]
}

// rawAck returns the ack arguments as received, keys in wire order.
func (c *client) rawAck(event string, args ...any) []string {
	c.e.t.Helper()
	res, err := c.EmitWithAckRaw(c.e.ctx(), event, args...)
	testkit.NoError(c.e.t, err, "%s: emit %q", c.Handle(), event)
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = string(r)
	}
	return out
}

// emit emits without acknowledgement.
func (c *client) emit(event string, args ...any) {
	c.e.t.Helper()
	testkit.NoError(c.e.t, c.Emit(c.e.ctx(), event, args...), "%s: emit %q", c.Handle(), event)
}

// next waits for the next event named event.
func (c *client) next(event string) []any {
	c.e.t.Helper()
	args, err := c.Next(c.e.ctx(), event)
	testkit.NoError(c.e.t, err)
	return args
}

// waitDisconnect waits for the client's disconnect and returns the reason.
func (c *client) waitDisconnect() string {
	c.e.t.Helper()
	reason, err := c.WaitDisconnect(c.e.ctx())
	testkit.NoError(c.e.t, err)
	return reason
}

// rooms returns the client's rooms as the server sees them.
func (c *client) rooms() []any {
	c.e.t.Helper()
	return asList(c.e.t, c.ack1("rooms"))
}

// eventually retries cond every 20 ms for up to 5 s.
func (e *env) eventually(what string, cond func() (ok bool, last any)) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: still not true after 5 s; last: %s", what, show(last))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- values

// obj is shorthand for a JSON object.
type obj = map[string]any

// list is shorthand for a JSON array.
type list = []any

// strs converts strings to a JSON array.
func strs(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// sorted returns the strings sorted by byte order as a JSON array.
func sorted(s ...string) []any {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return strs(c...)
}

func asList(t *testing.T, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("got %s, want an array", show(v))
	}
	return l
}

func asObj(t *testing.T, v any) map[string]any {
	t.Helper()
	o, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("got %s, want an object", show(v))
	}
	return o
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

// names returns the names of events.
func names(evs []*testkit.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}
