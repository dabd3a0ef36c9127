package server

import (
	"context"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// AckCallback receives a client's acknowledgement of an Emit.
type AckCallback func(args Args)

// AckErrCallback receives a client's acknowledgement, or the error that
// ended the wait (ErrAckTimeout, ErrDisconnected). For a broadcast it
// receives one element per client (the first argument of its answer).
type AckErrCallback func(err error, args Args)

// pendingAck is an acknowledgement a socket waits for.
type pendingAck struct {
	cb    AckCallback     // Emit with a callback, run on the socket goroutine
	ecb   AckErrCallback  // Timeout(d).Emit with a callback
	ch    chan ackResult  // EmitWithAck
	bcast adapter.AckFunc // a broadcast with acks, called directly
	timer *time.Timer
}

type ackResult struct {
	args Args
	err  error
}

// fail ends the wait with err (callbacks without a timeout are dropped, as
// on Node).
func (a *pendingAck) fail(s *Socket, err error) {
	if a.timer != nil {
		a.timer.Stop()
	}
	switch {
	case a.ch != nil:
		a.ch <- ackResult{err: err}
	case a.ecb != nil:
		s.exec.do(func() { a.ecb(err, nil) })
	}
}

func (a *pendingAck) resolve(s *Socket, args Args) {
	if a.timer != nil {
		a.timer.Stop()
	}
	switch {
	case a.ch != nil:
		a.ch <- ackResult{args: args}
	case a.ecb != nil:
		s.exec.do(func() { a.ecb(nil, args) })
	case a.cb != nil:
		s.exec.do(func() { a.cb(args) })
	case a.bcast != nil:
		a.bcast([]parser.Raw(args))
	}
}

// addAck registers a pending ack; false when the socket is closed. With a
// timeout, the ack fails with ErrAckTimeout unless answered in time; the
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
				a.fail(s, ErrAckTimeout)
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

// Emit sends an event to the socket's client; see Socket.Emit. With a
// timeout, a trailing AckErrCallback (func(error, Args)) receives the answer
// or ErrAckTimeout.
func (e *Emitter) Emit(event string, args ...any) error {
	return e.s.emit(event, args, e.volatile, e.timeout)
}

// EmitWithAck sends an event and waits for the client's acknowledgement,
// until the emitter's timeout (ErrAckTimeout), ctx ends, or the socket
// disconnects (ErrDisconnected).
func (e *Emitter) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	return e.s.emitWithAck(ctx, event, args, e.volatile)
}

// Emit sends an event with args (JSON values, []byte anywhere inside) to
// the socket's client. A trailing AckCallback (func(Args)) is called with
// the client's acknowledgement; it never runs if none comes (use Timeout).
// Emitting a reserved name returns a *ReservedEventError; it returns
// ErrDisconnected when the socket is gone.
//
// Emit queues the packet and returns without waiting for the network,
// except to pace a sender that outruns its client: when the client's send
// queue is past half of its limits (MaxQueuedMessages, MaxQueuedBytes),
// Emit waits until the connection's writer has taken the queue — at most
// WriteTimeout, after which the client is disconnected as a slow consumer.
// Volatile emits never wait.
func (s *Socket) Emit(event string, args ...any) error { return s.emit(event, args, false, 0) }

// EmitWithAck sends an event and waits for the client's acknowledgement,
// until ctx ends (ErrAckTimeout when its deadline passed) or the socket
// disconnects (ErrDisconnected).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return s.emitWithAck(ctx, event, args, false)
}

// Send emits a "message" event, like Node's socket.send.
func (s *Socket) Send(args ...any) error { return s.Emit("message", args...) }

func (s *Socket) emit(event string, args []any, volatile bool, timeout time.Duration) error {
	if err := checkEmitName(event); err != nil {
		return err
	}
	var pa *pendingAck
	if n := len(args); n > 0 {
		switch cb := args[n-1].(type) {
		case func(Args):
			pa, args = &pendingAck{cb: cb}, args[:n-1]
		case AckCallback:
			pa, args = &pendingAck{cb: cb}, args[:n-1]
		case func(error, Args):
			pa, args = &pendingAck{ecb: cb}, args[:n-1]
		case AckErrCallback:
			pa, args = &pendingAck{ecb: cb}, args[:n-1]
		}
	}
	if pa == nil {
		return s.emitPacket(event, args, volatile, 0, false)
	}
	if pa.cb != nil && timeout > 0 {
		cb := pa.cb
		pa = &pendingAck{ecb: func(err error, a Args) {
			if err == nil {
				cb(a)
			}
		}}
	}
	id := s.nsp.NextAckID()
	if pa.ecb == nil {
		timeout = 0 // a plain callback never times out (as on Node)
	}
	if !s.addAck(id, pa, timeout) {
		return ErrDisconnected
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
	id := s.nsp.NextAckID()
	if !s.addAck(id, pa, 0) {
		return nil, ErrDisconnected
	}
	if err := s.emitPacket(event, args, volatile, id, true); err != nil {
		s.takeAck(id)
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
		if ctx.Err() == context.DeadlineExceeded {
			return nil, ErrAckTimeout
		}
		return nil, ctx.Err()
	}
}

// emitPacket encodes and queues an EVENT for this socket.
func (s *Socket) emitPacket(event string, args []any, volatile bool, id uint64, hasID bool) error {
	if s.hasOut.Load() {
		s.notifyOutgoing(event, args)
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
	data, atts, err := parser.AppendValues(nil, nil, vals...)
	if err != nil {
		return err
	}
	if !s.Connected() {
		return ErrDisconnected
	}
	return s.client.emit(&parser.Packet{Type: t, Nsp: s.nsp.name, ID: id, HasID: hasID, Data: data, Attachments: atts}, volatile)
}
