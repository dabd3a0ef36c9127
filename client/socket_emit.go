package client

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/ioswarm/ioswarm/client/internal/engine"
	"github.com/ioswarm/ioswarm/parser"
)

// outPacket is an encoded EVENT, sent at once or buffered until the socket
// reconnects.
type outPacket struct {
	frames []frame
	size   int
	id     uint64
	hasAck bool
	event  string
	data   []byte   // the JSON array, event name first, for outgoing listeners
	atts   [][]byte // its attachments
}

func newOutPacket(p *parser.Packet, event string) *outPacket {
	text := parser.AppendEncode(nil, p)
	o := &outPacket{frames: make([]frame, 0, 1+len(p.Attachments)), size: len(text),
		id: p.ID, hasAck: p.HasID, event: event, data: p.Data, atts: p.Attachments}
	o.frames = append(o.frames, frame{data: text})
	for _, a := range p.Attachments {
		o.frames = append(o.frames, frame{data: a, binary: true})
		o.size += len(a)
	}
	return o
}

// pendingAck is an acknowledgement the socket waits for.
type pendingAck struct {
	fn    AckFunc        // EmitWithAckFunc, run on the handler goroutine
	ch    chan ackResult // EmitWithAck
	timer *time.Timer
}

type ackResult struct {
	args Args
	err  error
}

func (a *pendingAck) fail(s *Socket, err error) {
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.ch != nil {
		a.ch <- ackResult{err: err}
		return
	}
	s.exec.do(func() { a.fn(nil, err) })
}

func (a *pendingAck) resolve(s *Socket, args Args) {
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.ch != nil {
		a.ch <- ackResult{args: args}
		return
	}
	s.exec.do(func() { a.fn(args, nil) })
}

func (s *Socket) takeAck(id uint64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.acks[id]
	delete(s.acks, id)
	return a
}

// takeAcksLocked removes and returns the pending acks, but those of the
// events in keep (buffered, to be sent after the reconnection).
func (s *Socket) takeAcksLocked(keep []*outPacket) []*pendingAck {
	var out []*pendingAck
	for id, a := range s.acks {
		if slices.ContainsFunc(keep, func(o *outPacket) bool { return o.hasAck && o.id == id }) {
			continue
		}
		out = append(out, a)
		delete(s.acks, id)
	}
	return out
}

func (s *Socket) dropBufferLocked() {
	s.buf, s.bufBytes, s.bufFrames = nil, 0, 0
	s.early, s.earlyLen = nil, 0
}

// unbuffer drops the buffered event with ack id, if any (its wait ended).
func (s *Socket) unbuffer(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.buf {
		if o.hasAck && o.id == id {
			s.bufBytes -= o.size
			s.bufFrames -= len(o.frames)
			s.buf = slices.Delete(s.buf, i, i+1)
			return
		}
	}
}

// maxBufferedFrames bounds the Engine.IO messages (an event and its
// attachments) a socket buffers, and MaxBufferedBytes is capped at
// maxBufferedBytes: the flush after a reconnection must fit in the new
// connection's send queue at once (engine.MaxQueuedMessages and
// MaxQueuedBytes, shared by the manager's sockets — half of each, so that
// two sockets flushing together still fit).
const (
	maxBufferedFrames = engine.MaxQueuedMessages / 2
	maxBufferedBytes  = engine.MaxQueuedBytes / 2
)

// flushLocked sends the buffered events on c, in order, and returns them
// for the outgoing listeners. It stops at the first that c refuses (c is
// closing: the rest waits for the next connection).
func (s *Socket) flushLocked(c conn) []*outPacket {
	n := 0
	for _, o := range s.buf {
		if c.send(o.frames...) != nil {
			break
		}
		s.bufBytes -= o.size
		s.bufFrames -= len(o.frames)
		n++
	}
	sent := s.buf[:n:n]
	s.buf = slices.Clone(s.buf[n:])
	if len(s.buf) == 0 {
		s.buf = nil
	}
	return sent
}

// queueOutgoing tells the outgoing listeners about sent events.
func (s *Socket) queueOutgoing(ls []listener[OutgoingHandler], sent []*outPacket) {
	if len(ls) == 0 || len(sent) == 0 {
		return
	}
	s.exec.do(func() {
		for _, o := range sent {
			raws, err := parser.NewRawArgs(o.data, o.atts)
			if err != nil || len(raws) == 0 {
				continue
			}
			for _, l := range ls {
				l.h(o.event, Args(raws[1:]))
			}
		}
	})
}

// errDropped reports a volatile emit dropped while disconnected.
var errDropped = fmt.Errorf("client: volatile event dropped")

// emit encodes an event and sends it, or buffers it while the socket waits
// for a reconnection (a volatile one is dropped: errDropped). With a
// pending ack, it registers it under the returned id (and arms its timeout).
func (s *Socket) emit(event string, args []any, volatile bool, pa *pendingAck, timeout time.Duration) (uint64, error) {
	if err := checkEmitName(event); err != nil {
		return 0, err
	}
	vals := make([]any, 0, 1+len(args))
	vals = append(vals, event)
	vals = append(vals, args...)
	data, atts, err := parser.AppendValues(nil, nil, vals...)
	if err != nil {
		return 0, encodeError(event, args, err)
	}
	s.mu.Lock()
	if s.state == stateDown || s.state == stateClosed {
		err := s.goneErrLocked()
		s.mu.Unlock()
		return 0, err
	}
	p := &parser.Packet{Type: parser.Event, Nsp: s.nsp, Data: data, Attachments: atts}
	if pa != nil {
		p.ID, p.HasID = s.nextAckID, true
		s.nextAckID++
	}
	o := newOutPacket(p, event)
	var flushed []*outPacket
	if s.state == stateConnected && len(s.buf) > 0 {
		// What a reconnection's flush could not queue goes first.
		flushed = s.flushLocked(s.conn)
	}
	if s.state == stateConnected && len(s.buf) == 0 {
		err := s.conn.send(o.frames...)
		if err == nil {
			s.addAckLocked(p.ID, pa, timeout)
			out := s.anyOut
			s.mu.Unlock()
			s.queueOutgoing(out, append(flushed, o))
			return p.ID, nil
		}
		if err == errQueueFull {
			out := s.anyOut
			s.mu.Unlock()
			s.queueOutgoing(out, flushed)
			return 0, ErrBufferFull
		}
		// The connection is going: the event waits for the next one.
	}
	if len(flushed) > 0 {
		out := s.anyOut
		defer s.queueOutgoing(out, flushed)
	}
	if volatile {
		s.mu.Unlock()
		return 0, errDropped
	}
	if len(s.buf) >= s.m.opts.MaxBufferedEmits || s.bufBytes+o.size > s.m.opts.MaxBufferedBytes ||
		s.bufFrames+len(o.frames) > maxBufferedFrames {
		s.mu.Unlock()
		return 0, ErrBufferFull
	}
	s.buf = append(s.buf, o)
	s.bufBytes += o.size
	s.bufFrames += len(o.frames)
	s.addAckLocked(p.ID, pa, timeout)
	s.mu.Unlock()
	return p.ID, nil
}

// addAckLocked registers pa, with its timeout; the timer is armed under the
// lock that publishes the ack, so that whoever takes the ack sees it.
func (s *Socket) addAckLocked(id uint64, pa *pendingAck, timeout time.Duration) {
	if pa == nil {
		return
	}
	s.acks[id] = pa
	if timeout > 0 {
		pa.timer = time.AfterFunc(timeout, func() {
			if a := s.takeAck(id); a != nil {
				s.unbuffer(id)
				a.fail(s, errAckTimeout)
			}
		})
	}
}

// sendAck answers the server's event id on c, the connection it came on.
func (s *Socket) sendAck(c conn, id uint64, args []any) error {
	data, atts, err := parser.AppendValues(nil, nil, args...)
	if err != nil {
		return encodeError("ack", args, err)
	}
	o := newOutPacket(&parser.Packet{Type: parser.Ack, Nsp: s.nsp, ID: id, HasID: true, Data: data, Attachments: atts}, "")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateConnected || s.conn != c {
		return s.goneErrLocked()
	}
	switch err := c.send(o.frames...); err {
	case nil:
		return nil
	case errQueueFull:
		return ErrBufferFull
	default:
		return ErrDisconnected
	}
}

// encodeError describes why the arguments of an emit did not encode. A
// function among them is most likely a JS-style ack callback: say so.
func encodeError(event string, args []any, err error) error {
	for i, a := range args {
		if a != nil && reflect.TypeOf(a).Kind() == reflect.Func {
			return fmt.Errorf("client: emit %q: argument %d is a %T, which does not encode: ask for an acknowledgement with EmitWithAck or EmitWithAckFunc", event, i, a)
		}
	}
	return fmt.Errorf("client: emit %q: %w", event, err)
}

// Emitter emits with flags; get one from Socket.Timeout or
// Socket.Volatile. It is immutable: every method returns a new one.
type Emitter struct {
	s        *Socket
	volatile bool
	timeout  time.Duration
}

// Timeout returns an emitter whose acknowledgements time out after d.
func (s *Socket) Timeout(d time.Duration) *Emitter { return &Emitter{s: s, timeout: d} }

// Volatile returns an emitter whose events are dropped, rather than
// buffered, while the socket is not connected.
func (s *Socket) Volatile() *Emitter { return &Emitter{s: s, volatile: true} }

// Timeout returns a copy of e with an acknowledgement timeout.
func (e *Emitter) Timeout(d time.Duration) *Emitter { c := *e; c.timeout = d; return &c }

// Volatile returns a volatile copy of e.
func (e *Emitter) Volatile() *Emitter { c := *e; c.volatile = true; return &c }

// Emit sends an event; see Socket.Emit. A volatile event is dropped
// silently (nil error) when the socket is not connected.
func (e *Emitter) Emit(event string, args ...any) error {
	_, err := e.s.emit(event, args, e.volatile, nil, 0)
	if err == errDropped {
		return nil
	}
	return err
}

// EmitWithAck sends an event and waits for the server's acknowledgement;
// see Socket.EmitWithAck. A volatile event dropped while disconnected
// returns ErrDisconnected.
func (e *Emitter) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return e.s.emitWithAck(ctx, event, args, e.volatile, e.timeout)
}

// EmitWithAckFunc sends an event and returns; see Socket.EmitWithAckFunc.
func (e *Emitter) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	return e.s.emitWithAckFunc(event, ack, args, e.volatile, e.timeout)
}

// Emit sends an event with args (JSON values, []byte anywhere inside, sent
// as binary attachments) to the server. While the socket is reconnecting
// the event is buffered and sent after the reconnection (ErrBufferFull past
// the Options' bounds). It returns a *ReservedEventError for a reserved
// name, ErrClosed after Close and ErrDisconnected when the socket is down
// for good. Emit does not wait for the network.
func (s *Socket) Emit(event string, args ...any) error {
	return (&Emitter{s: s}).Emit(event, args...)
}

// EmitWithAck sends an event and waits for the server's acknowledgement,
// until ctx's deadline or Options.AckTimeout (a *TimeoutError, errors.Is
// ErrTimeout and context.DeadlineExceeded), ctx's cancellation, Close
// (ErrClosed), or the loss of the connection the event was sent on
// (ErrDisconnected). An event buffered while reconnecting waits for the
// reconnection.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return s.emitWithAck(ctx, event, args, false, 0)
}

// EmitWithAckFunc sends an event and returns; ack receives the server's
// acknowledgement, or the error that ended the wait (see AckFunc), after
// Options.AckTimeout if set (use Timeout for another). When
// EmitWithAckFunc returns an error, ack is not called.
func (s *Socket) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	return s.emitWithAckFunc(event, ack, args, false, 0)
}

// Send emits a "message" event, like the JS client's socket.send.
func (s *Socket) Send(args ...any) error { return s.Emit("message", args...) }

func (s *Socket) ackTimeout(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return s.m.opts.AckTimeout
}

func (s *Socket) emitWithAck(ctx context.Context, event string, args []any, volatile bool, timeout time.Duration) (Args, error) {
	if t := s.ackTimeout(timeout); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	pa := &pendingAck{ch: make(chan ackResult, 1)}
	id, err := s.emit(event, args, volatile, pa, 0)
	if err == errDropped {
		return nil, ErrDisconnected
	}
	if err != nil {
		return nil, err
	}
	select {
	case r := <-pa.ch:
		return r.args, r.err
	case <-ctx.Done():
		if s.takeAck(id) == nil {
			r := <-pa.ch // resolved concurrently
			return r.args, r.err
		}
		s.unbuffer(id)
		return nil, ctxErr(ctx)
	}
}

func (s *Socket) emitWithAckFunc(event string, ack AckFunc, args []any, volatile bool, timeout time.Duration) error {
	if ack == nil {
		return (&Emitter{s: s, volatile: volatile}).Emit(event, args...)
	}
	_, err := s.emit(event, args, volatile, &pendingAck{fn: ack}, s.ackTimeout(timeout))
	if err == errDropped {
		return ErrDisconnected
	}
	return err
}
