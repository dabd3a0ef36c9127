package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// handshakeTimeout bounds one client's WebSocket upgrade, Socket.IO
	// connect and room join.
	handshakeTimeout = 10 * time.Second
	// writeTimeout bounds one frame write.
	writeTimeout = 10 * time.Second
	// maxInflight bounds the handshakes in progress at once.
	maxInflight = 256
	// readLimit is the largest frame a client accepts (the server's
	// maxHttpBufferSize, plus some).
	readLimit = 2 << 20
	// echoAckID is the ack id of the first echo request a client keeps
	// outstanding; the echo-inflight scenario gives a client several, with the
	// ids that follow. Control calls (join, publish, sse) use small ids that
	// never reach it.
	echoAckID = 1_000_000_000
	// maxSenders bounds the senders whose sequence a client follows (the
	// "from" field of client broadcasts).
	maxSenders = 64
)

var (
	msgPrefix = []byte(`2["msg",`) // a "msg" event, after the Engine.IO '4'
	tField    = []byte(`"t":`)
	seqField  = []byte(`"seq":`)
	fromField = []byte(`"from":`)
	pong      = []byte("3")
)

// hub is what all clients share: where they record, and whether the echo loop
// runs.
type hub struct {
	msgRec  atomic.Pointer[recorder] // "msg" latencies; nil between scenarios
	echoRec atomic.Pointer[recorder] // echo round trips; nil between scenarios
	echoOn  atomic.Bool              // answer an echo ack with the next echo
	epoch   atomic.Uint64            // bumped before each publish: seq restarts
	pad     string                   // echo padding, fixed at start
	closing atomic.Bool              // the tool is closing the clients itself

	dead   atomic.Int64 // clients whose connection ended before closing
	mu     sync.Mutex
	deaths map[string]int // why, by message
}

func newHub(size int) *hub {
	pad := make([]byte, size)
	for i := range pad {
		pad[i] = 'x'
	}
	return &hub{pad: string(pad), deaths: map[string]int{}}
}

func (h *hub) noteDeath(err error) {
	h.dead.Add(1)
	msg := "closed"
	if err != nil {
		msg = err.Error()
		if len(msg) > 120 {
			msg = msg[:120]
		}
	}
	h.mu.Lock()
	h.deaths[msg]++
	h.mu.Unlock()
}

// deathCounts returns a copy of the reasons why connections ended, with counts.
func (h *hub) deathCounts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.deaths)
}

// deathsSince lists why connections ended since the copy before was taken,
// most frequent first.
func (h *hub) deathsSince(before map[string]int) []string {
	diff := map[string]int{}
	for msg, n := range h.deathCounts() {
		if d := n - before[msg]; d > 0 {
			diff[msg] = d
		}
	}
	return topReasons(diff)
}

func topReasons(m map[string]int) []string {
	type reason struct {
		msg string
		n   int
	}
	rs := make([]reason, 0, len(m))
	for msg, n := range m {
		rs = append(rs, reason{msg, n})
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].n != rs[j].n {
			return rs[i].n > rs[j].n
		}
		return rs[i].msg < rs[j].msg
	})
	out := make([]string, 0, 5)
	for _, r := range rs[:min(len(rs), 5)] {
		out = append(out, fmt.Sprintf("%d× %s", r.n, r.msg))
	}
	return out
}

// client is one raw Socket.IO v4 client over WebSocket, in namespace "/". One
// goroutine (readLoop) reads it; writes are serialised by wmu.
type client struct {
	idx  int // position in the connect order; spreads histogram writes
	node int // index of its target
	hub  *hub
	conn *websocket.Conn
	done chan struct{} // closed when readLoop ends
	err  error         // why it ended; read only after done is closed

	got       atomic.Int64 // "msg" deliveries, ever
	echoSent  atomic.Int64
	echoAcked atomic.Int64

	wmu  sync.Mutex
	wbuf []byte // frame being written; under wmu

	pmu     sync.Mutex
	nextID  uint64
	pending map[uint64]chan []byte

	// Owned by the reading goroutine.
	buf     []byte
	epoch   uint64
	lastSeq []int64 // by sender ("from"; 0 for server publications)
}

// alive reports whether the connection still runs.
func (c *client) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// write sends one text frame.
func (c *client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// sendEcho sends `42<id>["echo",{"t":<now µs>,"pad":"xx…"}]`; id is
// echoAckID or one of the ids after it.
func (c *client) sendEcho(id uint64) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], "42"...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `["echo",{"t":`...)
	b = strconv.AppendInt(b, time.Now().UnixMicro(), 10)
	b = append(b, `,"pad":"`...)
	b = append(b, c.hub.pad...)
	b = append(b, `"}]`...)
	c.wbuf = b
	c.echoSent.Add(1)
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// sendBcast sends `42["bcast",<room>,{"t":<now µs>,"seq":seq,"from":from,
// "src":"cli","pad":"xx…"}]` without an ack: the server broadcasts the
// payload to room as "msg". room is JSON.
func (c *client) sendBcast(room []byte, from, seq int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], `42["bcast",`...)
	b = append(b, room...)
	b = append(b, `,{"t":`...)
	b = strconv.AppendInt(b, time.Now().UnixMicro(), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, int64(from), 10)
	b = append(b, `,"src":"cli","pad":"`...)
	b = append(b, c.hub.pad...)
	b = append(b, `"}]`...)
	c.wbuf = b
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// call emits event with one JSON argument (none when arg is nil) and an ack,
// and returns the ack's JSON argument array.
func (c *client) call(ctx context.Context, event string, arg []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.pmu.Lock()
	c.nextID++
	id := c.nextID
	if c.pending == nil {
		c.pending = map[uint64]chan []byte{}
	}
	c.pending[id] = ch
	c.pmu.Unlock()
	defer func() {
		c.pmu.Lock()
		delete(c.pending, id)
		c.pmu.Unlock()
	}()
	msg := strconv.AppendUint([]byte("42"), id, 10)
	msg = append(msg, `["`...)
	msg = append(msg, event...)
	msg = append(msg, '"')
	if arg != nil {
		msg = append(msg, ',')
		msg = append(msg, arg...)
	}
	msg = append(msg, ']')
	if err := c.write(msg); err != nil {
		return nil, fmt.Errorf("%s: %w", event, err)
	}
	select {
	case b := <-ch:
		return b, nil
	case <-c.done:
		return nil, fmt.Errorf("%s: client %d disconnected: %v", event, c.idx, c.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", event, ctx.Err())
	}
}

// readFrame reads one text frame into c.buf; the result is valid until the
// next call.
func (c *client) readFrame() ([]byte, error) {
	for {
		mt, r, err := c.conn.NextReader()
		if err != nil {
			return nil, err
		}
		n := 0
		for {
			if n == len(c.buf) {
				nb := make([]byte, 2*len(c.buf))
				copy(nb, c.buf)
				c.buf = nb
			}
			m, err := r.Read(c.buf[n:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
		}
		if mt == websocket.TextMessage && n > 0 {
			return c.buf[:n], nil
		}
	}
}

// readLoop reads until the connection ends.
func (c *client) readLoop() {
	var err error
	for err == nil {
		var f []byte
		if f, err = c.readFrame(); err != nil {
			break
		}
		switch f[0] {
		case '4':
			err = c.onMessage(f[1:])
		case '2': // ping
			_ = c.write(pong)
		case '1':
			err = errors.New("engine.io close packet")
		}
	}
	_ = c.conn.Close()
	if !c.hub.closing.Load() {
		c.hub.noteDeath(err)
	}
	c.err = err
	close(c.done)
}

// onMessage handles a Socket.IO packet (after the Engine.IO '4').
func (c *client) onMessage(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if bytes.HasPrefix(p, msgPrefix) {
		c.onMsg(p[len(msgPrefix):])
		return nil
	}
	switch p[0] {
	case '3': // ack
		id, rest := leadingUint(p[1:])
		if id >= echoAckID {
			c.onEchoAck(id, rest)
			return nil
		}
		c.pmu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.pmu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), rest...)
		}
	case '1':
		return errors.New("server namespace disconnect")
	case '4':
		return fmt.Errorf("connect_error %s", p[1:])
	}
	return nil
}

// onMsg records one delivery: the latency from its "t" field and whether its
// "seq" increased. A message stamped before the current publication started
// is a straggler of an earlier one: it is counted apart.
func (c *client) onMsg(p []byte) {
	now := time.Now().UnixMicro()
	rec := c.hub.msgRec.Load()
	if rec == nil {
		c.got.Add(1)
		return
	}
	t, ok := intField(p, tField)
	if !ok {
		c.got.Add(1)
		rec.badFrame.Add(1)
		return
	}
	if t < rec.since {
		rec.stale.Add(1)
		return
	}
	c.got.Add(1)
	rec.hist.record(c.idx, now-t)
	if seq, ok := intField(p, seqField); ok {
		if e := c.hub.epoch.Load(); e != c.epoch || c.lastSeq == nil {
			c.epoch = e
			c.lastSeq = c.lastSeq[:0]
			for range maxSenders {
				c.lastSeq = append(c.lastSeq, -1)
			}
		}
		from, _ := intField(p, fromField) // absent: a server publication, sender 0
		if from < 0 || from >= maxSenders {
			return
		}
		if seq <= c.lastSeq[from] {
			rec.disorder.Add(1)
		}
		c.lastSeq[from] = seq
	}
}

func (c *client) onEchoAck(id uint64, p []byte) {
	now := time.Now().UnixMicro()
	c.echoAcked.Add(1)
	if rec := c.hub.echoRec.Load(); rec != nil {
		if t, ok := intField(p, tField); ok {
			rec.hist.record(c.idx, now-t)
		} else {
			rec.badFrame.Add(1)
		}
	}
	if c.hub.echoOn.Load() {
		_ = c.sendEcho(id)
	}
}

// leadingUint parses the digits at the start of p.
func leadingUint(p []byte) (uint64, []byte) {
	var n uint64
	i := 0
	for ; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
		n = n*10 + uint64(p[i]-'0')
	}
	return n, p[i:]
}

// intField finds key (e.g. `"t":`) in p and parses the integer after it.
func intField(p, key []byte) (int64, bool) {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0, false
	}
	p = p[i+len(key):]
	neg := len(p) > 0 && p[0] == '-'
	if neg {
		p = p[1:]
	}
	n, rest := leadingUint(p)
	if len(rest) == len(p) {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// floatField finds key in p and parses the JSON number after it.
func floatField(p, key []byte) (float64, bool) {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0, false
	}
	p = p[i+len(key):]
	j := 0
	for j < len(p) && bytes.IndexByte([]byte("0123456789+-.eE"), p[j]) >= 0 {
		j++
	}
	v, err := strconv.ParseFloat(string(p[:j]), 64)
	return v, err == nil
}

// await reads frames until one starts with prefix (answering pings), during
// the handshake.
func (c *client) await(prefix string) ([]byte, error) {
	for {
		f, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		switch {
		case bytes.HasPrefix(f, []byte(prefix)):
			return f, nil
		case f[0] == '2':
			if err := c.write(pong); err != nil {
				return nil, err
			}
		case bytes.HasPrefix(f, []byte("44")):
			return nil, fmt.Errorf("connect_error %s", f[2:])
		case f[0] == '1' || bytes.HasPrefix(f, []byte("41")):
			return nil, errors.New("closed by the server during the handshake")
		}
	}
}

// dial connects one client: WebSocket upgrade, Engine.IO open, Socket.IO
// connect to "/", then join joinMsg's room and wait for the ack. The read loop
// runs from then on.
func dial(ctx context.Context, d *websocket.Dialer, url string, idx, node int, h *hub, joinMsg []byte) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c := &client{idx: idx, node: node, hub: h, conn: conn, done: make(chan struct{}), buf: make([]byte, 256)}
	conn.SetReadLimit(readLimit)
	dl, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(dl)
	err = c.handshake(joinMsg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

func (c *client) handshake(joinMsg []byte) error {
	open, err := c.readFrame()
	if err != nil {
		return err
	}
	if open[0] != '0' {
		return fmt.Errorf("expected an Engine.IO open packet, got %.40q", open)
	}
	if err := c.write([]byte("40")); err != nil {
		return err
	}
	if _, err := c.await("40"); err != nil {
		return err
	}
	if err := c.write(joinMsg); err != nil {
		return err
	}
	_, err = c.await("430[")
	return err
}

// connectResult tells how the connection phase went.
type connectResult struct {
	Requested int      `json:"requested"`
	Connected int      `json:"connected"`
	Failed    int      `json:"failed"`
	Failures  []string `json:"failures,omitempty"`
	Seconds   float64  `json:"seconds"`
}

// connectAll connects n clients round-robin over the WebSocket URLs, at most
// rate per second, and returns those that connected and joined room.
func connectAll(ctx context.Context, urls []string, n int, rate float64, room string, h *hub, progress func(done, failed int)) ([]*client, connectResult) {
	res := connectResult{Requested: n}
	start := time.Now()
	d := &websocket.Dialer{
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   4096,
		WriteBufferPool:  &sync.Pool{}, // write buffers only while writing
	}
	roomJSON, _ := json.Marshal(room)
	joinMsg := append(append([]byte(`420["join",`), roomJSON...), ']')

	clients := make([]*client, n)
	var failMu sync.Mutex
	failures := map[string]int{}
	var finished, failed atomic.Int64
	stopProgress := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				progress(int(finished.Load()), int(failed.Load()))
			case <-stopProgress:
				return
			}
		}
	}()

	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	next := time.Now()
launch:
	for i := range n {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				break launch
			}
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(ctx, d, urls[i%len(urls)], i, i%len(urls), h, joinMsg)
			if err != nil {
				failed.Add(1)
				failMu.Lock()
				failures[shortErr(err)]++
				failMu.Unlock()
			}
			clients[i] = c
			finished.Add(1)
		}()
	}
	wg.Wait()
	close(stopProgress)

	out := clients[:0]
	for _, c := range clients {
		if c != nil {
			out = append(out, c)
		}
	}
	if notStarted := n - int(finished.Load()); notStarted > 0 {
		failures["not started: "+shortErr(ctx.Err())] += notStarted
	}
	res.Connected = len(out)
	res.Failed = n - len(out)
	res.Failures = topReasons(failures)
	res.Seconds = time.Since(start).Seconds()
	return out, res
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// closeAll closes every client and waits (a bounded time) for the readers.
func closeAll(h *hub, clients []*client) {
	h.closing.Store(true)
	for _, c := range clients {
		_ = c.conn.Close()
	}
	deadline := time.After(5 * time.Second)
	for _, c := range clients {
		select {
		case <-c.done:
		case <-deadline:
			return
		}
	}
}
