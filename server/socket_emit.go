package server

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/parser"
)

// AckFunc receives the answer to an emit that asked for an
// acknowledgement: the client's arguments — for a broadcast, one element
// per client that answered, the first argument of its answer — or the
// error that ended the wait: a *TimeoutError (errors.Is ErrTimeout and
// context.DeadlineExceeded) with the answers so far, ErrDisconnected or
// ErrClosed. It is called exactly once. For an emit to a socket it runs on
// the socket's handler goroutine, in order with its event handlers; for a
// broadcast, on a goroutine of its own. It may block.
type AckFunc func(args Args, err error)

// pendingAck is an acknowledgement a socket waits for.
type pendingAck struct {
	fn    AckFunc         // EmitWithAckFunc, run on the socket goroutine
	ch    chan ackResult  // EmitWithAck
	bcast adapter.AckFunc // a broadcast with acks, called directly
	timer *time.Timer
}

type ackResult struct {
	args Args
	err  error
}

// fail ends the wait with err (a broadcast's collector has its own end).
func (a *pendingAck) fail(s *Socket, err error) {
	if a.timer != nil {
		a.timer.Stop()
	}
	switch {
	case a.ch != nil:
		a.ch <- ackResult{err: err}
	case a.fn != nil:
		s.exec.do(func() { a.fn(nil, err) })
	}
}

func (a *pendingAck) resolve(s *Socket, args Args) {
	if a.timer != nil {
		a.timer.Stop()
	}
	switch {
	case a.ch != nil:
		a.ch <- ackResult{args: args}
	case a.fn != nil:
		s.exec.do(func() { a.fn(args, nil) })
	case a.bcast != nil:
		a.bcast([]parser.Raw(args))
	}
}

// addAck registers a pending ack; false when the socket is closed. With a
// timeout, the ack fails with errAckTimeout unless answered in time; the
// timer is set under the lock that publishes the ack, so that whoever takes
// the ack (resolve, fail, timeout) sees it.
func (s *Socket) addAck(id uint64, a *pendingAck, timeout time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateConnected {
		return false
	}
	if s.acks == nil {
		s.acks = make(map[uint64]*pendingAck)
	}
	s.acks[id] = a
	if timeout > 0 {
		a.timer = time.AfterFunc(timeout, func() {
			if a := s.takeAck(id); a != nil {
				a.fail(s, errAckTimeout)
			}
		})
	}
	return true
}

func (s *Socket) takeAck(id uint64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.acks[id]
	delete(s.acks, id)
	return a
}

func (s *Socket) resolveAck(id uint64, args []parser.Raw) {
	if a := s.takeAck(id); a != nil {
		a.resolve(s, Args(args))
	}
}

// Emitter emits to one socket with flags; get one from Socket.Timeout,
// Socket.Volatile or Socket.Compress. It is immutable: every method returns
// a new one.
type Emitter struct {
	s        *Socket
	volatile bool
	timeout  time.Duration
}

// Timeout returns an emitter whose acknowledgements time out after d.
func (s *Socket) Timeout(d time.Duration) *Emitter { return &Emitter{s: s, timeout: d} }

// Volatile returns an emitter whose packets are dropped when the client
// cannot take them at once.
func (s *Socket) Volatile() *Emitter { return &Emitter{s: s, volatile: true} }

// Compress returns an emitter with a compression hint (accepted for
// compatibility; WebSocket compression is set per server).
func (s *Socket) Compress(bool) *Emitter { return &Emitter{s: s} }

// Timeout returns a copy of e with an ack timeout.
func (e *Emitter) Timeout(d time.Duration) *Emitter { c := *e; c.timeout = d; return &c }

// Volatile returns a volatile copy of e.
func (e *Emitter) Volatile() *Emitter { c := *e; c.volatile = true; return &c }

// Emit sends an event to the socket's client; see Socket.Emit.
func (e *Emitter) Emit(event string, args ...any) error {
	return e.s.emitPacket(event, args, e.volatile, 0, false)
}

// EmitWithAck sends an event and waits for the client's acknowledgement,
// until the emitter's timeout or ctx's deadline (a *TimeoutError), ctx's
// cancellation, or the socket's disconnection (ErrDisconnected).
func (e *Emitter) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	return e.s.emitWithAck(ctx, event, args, e.volatile)
}

// EmitWithAckFunc sends an event and returns; ack receives the client's
// acknowledgement, or the error that ended the wait: with the emitter's
// timeout a *TimeoutError when it passes, and ErrDisconnected when the
// socket goes first. See AckFunc for where it runs.
func (e *Emitter) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	return e.s.emitWithAckFunc(event, ack, args, e.volatile, e.timeout)
}

// Emit sends an event with args (JSON values, []byte anywhere inside) to
// the socket's client. Emitting a reserved name returns a
// *ReservedEventError; it returns ErrDisconnected when the socket is gone.
//
// Emit queues the packet and returns without waiting for the network,
// except to pace a sender that outruns its client: when the client's send
// queue is past half of its limits (MaxQueuedMessages, MaxQueuedBytes),
// Emit waits until the connection's writer has taken the queue — at most
// WriteTimeout, after which the client is disconnected as a slow consumer.
// Volatile emits never wait.
func (s *Socket) Emit(event string, args ...any) error {
	return s.emitPacket(event, args, false, 0, false)
}

// EmitWithAck sends an event and waits for the client's acknowledgement,
// until ctx's deadline (a *TimeoutError, errors.Is ErrTimeout and
// context.DeadlineExceeded), ctx's cancellation, or the socket's
// disconnection (ErrDisconnected).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return s.emitWithAck(ctx, event, args, false)
}

// EmitWithAckFunc sends an event and returns; ack receives the client's
// acknowledgement, or ErrDisconnected when the socket goes first (use
// Timeout for a deadline). See AckFunc for where it runs. It costs no
// goroutine while it waits.
func (s *Socket) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	return s.emitWithAckFunc(event, ack, args, false, 0)
}

// Send emits a "message" event, like Node's socket.send.
func (s *Socket) Send(args ...any) error { return s.Emit("message", args...) }

func (s *Socket) emitWithAckFunc(event string, ack AckFunc, args []any, volatile bool, timeout time.Duration) error {
	if ack == nil {
		return s.emitPacket(event, args, volatile, 0, false)
	}
	if err := checkEmitName(event); err != nil {
		return err
	}
	pa := &pendingAck{fn: ack}
	id := s.nsp.nextAckID()
	if !s.addAck(id, pa, timeout) {
		return s.goneErr()
	}
	if err := s.emitPacket(event, args, volatile, id, true); err != nil {
		if a := s.takeAck(id); a != nil && a.timer != nil {
			a.timer.Stop()
		}
		return err
	}
	return nil
}

func (s *Socket) emitWithAck(ctx context.Context, event string, args []any, volatile bool) (Args, error) {
	if err := checkEmitName(event); err != nil {
		return nil, err
	}
	pa := &pendingAck{ch: make(chan ackResult, 1)}
	id := s.nsp.nextAckID()
	if !s.addAck(id, pa, 0) {
		return nil, s.goneErr()
	}
	if err := s.emitPacket(event, args, volatile, id, true); err != nil {
		s.takeAck(id)
		return nil, err
	}
	// The caller may be a handler run by this very client's reader: the
	// answer needs another one.
	s.nsp.srv.eng.ReleaseReaders()
	select {
	case r := <-pa.ch:
		return r.args, r.err
	case <-ctx.Done():
		if s.takeAck(id) == nil {
			r := <-pa.ch // resolved concurrently
			return r.args, r.err
		}
		return nil, ctxErr(ctx)
	}
}

// emitPacket encodes and queues an EVENT for this socket.
func (s *Socket) emitPacket(event string, args []any, volatile bool, id uint64, hasID bool) error {
	if err := checkEmitName(event); err != nil {
		return err
	}
	return s.sendPacket(parser.Event, id, hasID, event, args, volatile)
}

// sendPacket encodes an EVENT (with the event name) or an ACK and queues it.
func (s *Socket) sendPacket(t parser.Type, id uint64, hasID bool, event string, args []any, volatile bool) error {
	vals := args
	if t == parser.Event {
		vals = make([]any, 0, 1+len(args))
		vals = append(vals, event)
		vals = append(vals, args...)
	}
	// The packet's text is encoded in one buffer, behind the room engineio
	// frames it in (one allocation and no copy for a packet without
	// attachments, the usual reply).
	buf := make([]byte, engineio.MessageHeadroom, engineio.MessageHeadroom+estimateSize(vals))
	buf = parser.AppendHead(buf, t, s.nsp.name, id, hasID, 0)
	start := len(buf)
	buf, atts, err := parser.AppendValues(buf, nil, vals...)
	if err != nil {
		return encodeError(event, args, err)
	}
	data := json.RawMessage(buf[start:len(buf):len(buf)])
	if !s.Connected() {
		return s.goneErr()
	}
	if t == parser.Event && !hasID && !volatile && s.pid != "" && s.nsp.recoverer() != nil {
		return s.logEmit(data, atts) // outgoing listeners are told on delivery
	}
	if t == parser.Event && s.hasOut.Load() {
		if raws, err := parser.NewRawArgs(data, atts); err == nil && len(raws) > 0 {
			s.notifyOutgoing(event, Args(raws[1:]))
		}
	}
	if len(atts) > 0 {
		// The head counts the attachments: written again, with them.
		return s.client.emit(packetMessages(&parser.Packet{Type: t, Nsp: s.nsp.name, ID: id, HasID: hasID, Data: data, Attachments: atts}), volatile)
	}
	return s.client.emit([]*engineio.Message{engineio.NewMessageAt(buf, false)}, volatile)
}

// estimateSize guesses the encoded size of vals, so that the buffer they
// are encoded in is mostly allocated once: forwarded arguments know theirs.
func estimateSize(vals []any) int {
	n := 24 // the head and the array's brackets, with some slack
	for _, v := range vals {
		switch x := v.(type) {
		case *parser.Raw:
			n += len(x.JSON) + 1
		case parser.Raw:
			n += len(x.JSON) + 1
		case string:
			n += len(x) + 3
		case []byte:
			n += 32 // a placeholder
		default:
			n += 16
		}
	}
	return n
}

// encodeError describes why the arguments of an emit did not encode. A
// function among them is most likely a Node-style ack callback: say so.
func encodeError(event string, args []any, err error) error {
	for i, a := range args {
		if a != nil && reflect.TypeOf(a).Kind() == reflect.Func {
			return fmt.Errorf("server: emit %q: argument %d is a %T, which does not encode: ask for an acknowledgement with EmitWithAck or EmitWithAckFunc", event, i, a)
		}
	}
	return fmt.Errorf("server: emit %q: %w", event, err)
}
