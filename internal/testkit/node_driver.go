package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DriverError is an error reported by the Node.js client driver, such as the
// socket.io-client's "operation has timed out" for an acknowledgement that did not come.
type DriverError struct {
	Message string
}

func (e *DriverError) Error() string { return "testkit: node client: " + e.Message }

// ErrDriverClosed is returned by calls made after the driver process ended.
var ErrDriverClosed = errors.New("testkit: node client driver closed")

// AckTimeoutMessage is the socket.io-client's error message for an acknowledgement that did
// not come in time.
const AckTimeoutMessage = "operation has timed out"

// IsAckTimeout reports whether err is the driver's "operation has timed out" error.
func IsAckTimeout(err error) bool {
	var de *DriverError
	return errors.As(err, &de) && de.Message == AckTimeoutMessage
}

// NodeClientDriver runs integration/node/client-driver.js, which drives the official
// socket.io-client, and manages the client sockets it opens. It is safe for concurrent use.
// The process is stopped at the end of the test that created it.
type NodeClientDriver struct {
	t     testing.TB
	trace bool

	stdin io.WriteCloser
	wmu   sync.Mutex // serialises writes to stdin

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan driverLine
	clients map[string]*Client

	handles atomic.Int64
	done    chan struct{} // closed when the reader goroutine has seen EOF
}

// driverLine is one line written by the driver: a reply or a report.
type driverLine struct {
	Type string `json:"type"`

	// replies
	ID     int64           `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`

	// reports
	Handle      string            `json:"handle"`
	Sid         string            `json:"sid"`
	Message     string            `json:"message"`
	Data        json.RawMessage   `json:"data"`
	ErrType     string            `json:"errType"`
	Description string            `json:"description"`
	Reason      string            `json:"reason"`
	Event       string            `json:"event"`
	Args        []json.RawMessage `json:"args"`
	Ack         int64             `json:"ack"`
	Auto        string            `json:"auto"`
}

// NewNodeClientDriver starts the Node.js client driver for the test. It skips the test
// when node or the installed socket.io-client package is missing. Set
// IOSWARM_DRIVER_TRACE=1 to log every line exchanged with the driver.
func NewNodeClientDriver(t testing.TB) *NodeClientDriver {
	t.Helper()
	root := RepoRoot(t)
	nodeDir := filepath.Join(root, "integration", "node")
	node := RequireNode(t)
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "socket.io-client")); err != nil {
		t.Skipf("testkit: integration/node/node_modules/socket.io-client is missing (run `npm ci` in %s): %v", nodeDir, err)
	}

	cmd := exec.Command(node, filepath.Join(nodeDir, "client-driver.js"))
	cmd.Dir = nodeDir
	cmd.Stderr = &logWriter{t: t, prefix: "client-driver stderr: "}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("testkit: client driver: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("testkit: client driver: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testkit: start client driver: %v", err)
	}
	d := &NodeClientDriver{
		t:       t,
		trace:   os.Getenv("IOSWARM_DRIVER_TRACE") != "",
		stdin:   stdin,
		pending: make(map[int64]chan driverLine),
		clients: make(map[string]*Client),
		done:    make(chan struct{}),
	}
	go d.read(stdout)
	t.Cleanup(func() {
		_ = d.stdin.Close() // the driver exits when stdin closes
		select {
		case <-d.done:
		case <-time.After(3 * time.Second):
			t.Logf("testkit: client driver did not exit after stdin closed; killing it")
			_ = cmd.Process.Kill()
			<-d.done
		}
		_ = cmd.Wait()
	})
	return d
}

// RequireNode returns the path of the node executable, skipping the test when there is none.
func RequireNode(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("testkit: node is not installed: %v", err)
	}
	return node
}

// read dispatches the driver's lines until EOF, then fails every waiter.
func (d *NodeClientDriver) read(r io.Reader) {
	defer func() {
		d.mu.Lock()
		clients := make([]*Client, 0, len(d.clients))
		for _, c := range d.clients {
			clients = append(clients, c)
		}
		d.mu.Unlock()
		close(d.done)
		for _, c := range clients {
			c.wake()
		}
	}()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			d.dispatch(b)
		}
		if err != nil {
			return
		}
	}
}

func (d *NodeClientDriver) dispatch(b []byte) {
	if d.trace {
		d.t.Logf("client-driver > %s", truncate(b, 2000))
	}
	var l driverLine
	if err := json.Unmarshal(b, &l); err != nil {
		d.t.Logf("testkit: client driver wrote a bad line %q: %v", truncate(b, 200), err)
		return
	}
	switch l.Type {
	case "reply":
		d.mu.Lock()
		ch := d.pending[l.ID]
		delete(d.pending, l.ID)
		d.mu.Unlock()
		if ch != nil {
			ch <- l // buffered
		}
	case "log":
		d.t.Logf("client-driver: %s", l.Message)
	default:
		d.mu.Lock()
		c := d.clients[l.Handle]
		d.mu.Unlock()
		if c == nil {
			d.t.Logf("testkit: client driver reported on unknown handle %q: %s", l.Handle, truncate(b, 200))
			return
		}
		c.push(l)
	}
}

// call sends one command and waits for its reply.
func (d *NodeClientDriver) call(ctx context.Context, cmd string, fields map[string]any) (json.RawMessage, error) {
	select {
	case <-d.done:
		return nil, ErrDriverClosed
	default:
	}
	ch := make(chan driverLine, 1)
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	d.pending[id] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, id)
		d.mu.Unlock()
	}()

	msg := make(map[string]any, len(fields)+2)
	for k, v := range fields {
		msg[k] = v
	}
	msg["id"] = id
	msg["cmd"] = cmd
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("testkit: encode %s command: %w", cmd, err)
	}
	if d.trace {
		d.t.Logf("client-driver < %s", truncate(b, 2000))
	}
	d.wmu.Lock()
	_, err = d.stdin.Write(append(b, '\n'))
	d.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("testkit: %s: %w", cmd, ErrDriverClosed)
	}

	select {
	case l := <-ch:
		if !l.OK {
			return nil, &DriverError{Message: l.Error}
		}
		return l.Result, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("testkit: %s: %w", cmd, ctx.Err())
	case <-d.done:
		return nil, fmt.Errorf("testkit: %s: %w", cmd, ErrDriverClosed)
	}
}

// ConnectOptions describe one client socket. Zero values give a socket with its own Manager
// (forceNew), the default transports (polling then upgrade to WebSocket) and no
// reconnection.
type ConnectOptions struct {
	// URL of the server, e.g. "http://127.0.0.1:3000". Required.
	URL string
	// Namespace to join; "" means "/".
	Namespace string
	// Manager, when not empty, names a Manager shared by every socket connected with the same
	// name on this driver: they multiplex one Engine.IO connection. The Manager is created
	// with the options of the first socket; later sockets only contribute Auth.
	Manager string
	// Handle names the socket in the driver and in logs; "" picks "c1", "c2", ….
	Handle string
	// Transports is the io() "transports" option; nil keeps the client default
	// ["polling", "websocket"].
	Transports []string
	// DisableUpgrade sets the io() option upgrade: false.
	DisableUpgrade bool
	// Auth is the CONNECT payload (io() "auth"); nil sends none.
	Auth any
	// Query adds query parameters to the Engine.IO requests.
	Query map[string]string
	// Path is the io() "path" option; "" keeps "/socket.io".
	Path string
	// Reconnection enables the client's automatic reconnection (off when false).
	Reconnection bool
	// Timeout is the io() connection "timeout"; zero keeps the client default (20 s).
	Timeout time.Duration
	// Extra holds any other io() option, passed verbatim (it overrides the fields above).
	Extra map[string]any
}

// Connect creates a client socket. The socket connects in the background: use
// WaitConnect or WaitConnectError to learn the outcome.
func (d *NodeClientDriver) Connect(ctx context.Context, o ConnectOptions) (*Client, error) {
	if o.URL == "" {
		return nil, errors.New("testkit: Connect: URL is required")
	}
	nsp := o.Namespace
	if nsp == "" {
		nsp = "/"
	}
	handle := o.Handle
	if handle == "" {
		handle = "c" + strconv.FormatInt(d.handles.Add(1), 10)
	}
	opts := map[string]any{"reconnection": o.Reconnection}
	if o.Manager == "" {
		opts["forceNew"] = true
	}
	if o.Transports != nil {
		opts["transports"] = o.Transports
	}
	if o.DisableUpgrade {
		opts["upgrade"] = false
	}
	if o.Auth != nil {
		opts["auth"] = toWire(o.Auth)
	}
	if o.Query != nil {
		opts["query"] = o.Query
	}
	if o.Path != "" {
		opts["path"] = o.Path
	}
	if o.Timeout > 0 {
		opts["timeout"] = o.Timeout.Milliseconds()
	}
	for k, v := range o.Extra {
		opts[k] = toWire(v)
	}

	c := &Client{d: d, handle: handle, nsp: nsp, notify: make(chan struct{})}
	d.mu.Lock()
	if _, dup := d.clients[handle]; dup {
		d.mu.Unlock()
		return nil, fmt.Errorf("testkit: Connect: handle %q already used", handle)
	}
	d.clients[handle] = c
	d.mu.Unlock()

	fields := map[string]any{"handle": handle, "url": o.URL, "nsp": nsp, "opts": opts}
	if o.Manager != "" {
		fields["manager"] = o.Manager
	}
	if _, err := d.call(ctx, "connect", fields); err != nil {
		d.mu.Lock()
		delete(d.clients, handle)
		d.mu.Unlock()
		return nil, err
	}
	return c, nil
}

// CloseManager closes a shared Manager (see ConnectOptions.Manager) and with it every
// socket on it.
func (d *NodeClientDriver) CloseManager(ctx context.Context, name string) error {
	_, err := d.call(ctx, "closeManager", map[string]any{"manager": name})
	return err
}

// Done is closed when the driver process has ended.
func (d *NodeClientDriver) Done() <-chan struct{} { return d.done }

// logWriter writes each complete line to the test log.
type logWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.t.Logf("%s%s", w.prefix, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}
