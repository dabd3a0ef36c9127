package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// BroadcastOperator selects sockets of a namespace — the union of the rooms
// given to To/In (everyone when none), minus the sockets in any room given
// to Except — and acts on them across the cluster. It is immutable: every
// method returns a new operator, so operators can be kept and reused.
type BroadcastOperator struct {
	nsp    *Namespace
	rooms  []string
	except []string
	flags  adapter.Flags
}

func (b *BroadcastOperator) clone() *BroadcastOperator {
	c := *b
	c.rooms = append([]string(nil), b.rooms...)
	c.except = append([]string(nil), b.except...)
	return &c
}

// To adds target rooms.
func (b *BroadcastOperator) To(rooms ...string) *BroadcastOperator {
	c := b.clone()
	for _, r := range rooms {
		if !slices.Contains(c.rooms, r) {
			c.rooms = append(c.rooms, r)
		}
	}
	return c
}

// In is To.
func (b *BroadcastOperator) In(rooms ...string) *BroadcastOperator { return b.To(rooms...) }

// Except excludes the sockets in rooms.
func (b *BroadcastOperator) Except(rooms ...string) *BroadcastOperator {
	c := b.clone()
	for _, r := range rooms {
		if !slices.Contains(c.except, r) {
			c.except = append(c.except, r)
		}
	}
	return c
}

// Local restricts the operation to this node.
func (b *BroadcastOperator) Local() *BroadcastOperator {
	c := b.clone()
	c.flags.Local = true
	return c
}

// Volatile drops the packet for clients that cannot take it at once.
func (b *BroadcastOperator) Volatile() *BroadcastOperator {
	c := b.clone()
	c.flags.Volatile = true
	return c
}

// Compress sets the compression hint carried to other nodes.
func (b *BroadcastOperator) Compress(compress bool) *BroadcastOperator {
	c := b.clone()
	c.flags.Compress = &compress
	return c
}

// Timeout sets how long a broadcast with acknowledgements waits.
func (b *BroadcastOperator) Timeout(d time.Duration) *BroadcastOperator {
	c := b.clone()
	c.flags.Timeout = d
	return c
}

func (b *BroadcastOperator) options() adapter.BroadcastOptions {
	return adapter.BroadcastOptions{Rooms: b.rooms, Except: b.except, Flags: b.flags}
}

func (b *BroadcastOperator) packet(event string, args []any) (*adapter.Packet, error) {
	if err := checkEmitName(event); err != nil {
		return nil, err
	}
	if b.nsp.srv.isClosed() {
		return nil, ErrClosed
	}
	vals := make([]any, 0, 1+len(args))
	vals = append(vals, event)
	vals = append(vals, args...)
	data, atts, err := parser.AppendValues(nil, nil, vals...)
	if err != nil {
		return nil, encodeError(event, args, err)
	}
	p := adapter.NewPacket(b.nsp.name, data, atts)
	if !b.flags.Volatile {
		p.EnablePacing()
	}
	return p, nil
}

// Emit sends an event to the selected sockets: encoded once, the same bytes
// written to every recipient.
//
// Like Socket.Emit, a broadcast is paced to its recipients on this node: when
// it leaves some of them with a send queue past half of its limits, Emit
// waits until their writers have taken their queues (at most WriteTimeout;
// a recipient still congested then is disconnected as a slow consumer). A
// handler emitting in a loop so goes at the pace of its slowest reader
// instead of cutting it off. Volatile broadcasts never wait, and broadcasts
// arriving from other nodes are never paced.
func (b *BroadcastOperator) Emit(event string, args ...any) error {
	p, err := b.packet(event, args)
	if err != nil {
		return err
	}
	err = b.nsp.adapter.Broadcast(p, b.options())
	p.WaitPaced(b.nsp.srv.writeTimeout())
	return err
}

// EmitWithAck sends an event to the selected sockets and waits for every
// client's acknowledgement, until the operator's Timeout or ctx ends. It
// returns one element per client that answered (the first argument of its
// answer); when some did not, it also returns a *TimeoutError (errors.Is
// ErrTimeout and context.DeadlineExceeded), or ctx's error when it was
// cancelled. As on Node, without a Timeout and a ctx deadline the wait ends
// at once.
func (b *BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	p, err := b.packet(event, args)
	if err != nil {
		return nil, err
	}
	type result struct {
		args Args
		err  error
	}
	done := make(chan result, 1)
	b.broadcastWithAck(ctx, p, func(a Args, err error) { done <- result{a, err} })
	// The caller may be a handler run by the reader of a client that must
	// answer: the answers need other readers.
	b.nsp.srv.eng.ReleaseReaders()
	r := <-done
	return r.args, r.err
}

// EmitWithAckFunc sends an event to the selected sockets and returns; ack
// receives, once, one element per client (the first argument of its
// answer) when every client of every node answered, or a *TimeoutError and
// the answers so far when the operator's Timeout passes — set one: as on
// Node, without it the wait ends at once. ack runs on a goroutine of its
// own. The error returned is the emit's (a reserved name, an argument that
// does not encode); a failure of the cluster reaches ack.
func (b *BroadcastOperator) EmitWithAckFunc(event string, ack AckFunc, args ...any) error {
	if ack == nil {
		return b.Emit(event, args...)
	}
	p, err := b.packet(event, args)
	if err != nil {
		return err
	}
	// The collector completes on whatever goroutine brought the last answer
	// or the timeout — an adapter's receive loop, say: ack runs on a
	// goroutine of its own, so that it may block.
	srv := b.nsp.srv
	b.broadcastWithAck(context.Background(), p, func(a Args, err error) {
		if !srv.handlers.goFunc(func() { ack(a, err) }) {
			ack(a, err) // closing: no new goroutine, and nothing left to stall
		}
	})
	return nil
}

// ackCollector gathers the answers of a broadcast with acks: it completes
// when every node reported its client count and that many answers came.
type ackCollector struct {
	mu              sync.Mutex
	done            bool
	expectedServers int // -1 until known
	servers         int
	expectedClients int
	responses       Args
	cb              AckFunc
	timer           *time.Timer
	stop            func() bool
	srv             *Server
}

func (c *ackCollector) finish(err error) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	res := c.responses
	timer, stop := c.timer, c.stop
	c.mu.Unlock()
	c.srv.untrack(c)
	if timer != nil {
		timer.Stop()
	}
	if stop != nil {
		stop()
	}
	if res == nil {
		res = Args{}
	}
	c.cb(res, err)
}

// check completes the collector when everything arrived; the caller holds
// c.mu, which check releases.
func (c *ackCollector) checkLocked() {
	complete := !c.done && c.expectedServers == c.servers && len(c.responses) == c.expectedClients
	c.mu.Unlock()
	if complete {
		c.finish(nil)
	}
}

// broadcastWithAck delivers p and calls cb once, on the goroutine that
// completes the wait, with the answers or the error that ended it.
func (b *BroadcastOperator) broadcastWithAck(ctx context.Context, p *adapter.Packet, cb AckFunc) {
	col := &ackCollector{expectedServers: -1, cb: cb, responses: Args{}, srv: b.nsp.srv}
	if !col.srv.track(col) {
		col.finish(ErrClosed)
		return
	}
	// As on Node, a broadcast with acks but no timeout gives up at once;
	// EmitWithAck may rely on its context instead.
	if b.flags.Timeout > 0 || ctx.Done() == nil {
		col.mu.Lock()
		col.timer = time.AfterFunc(b.flags.Timeout, func() { col.finish(errAckTimeout) })
		col.mu.Unlock()
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			col.finish(ctxErr(ctx))
		})
		// The context may already have ended the collector: then nobody
		// else will call stop.
		col.mu.Lock()
		finished := col.done
		if !finished {
			col.stop = stop
		}
		col.mu.Unlock()
		if finished {
			stop()
		}
	}
	p.ID, p.HasID = b.nsp.nextAckID(), true
	opts := b.options()
	err := b.nsp.adapter.BroadcastWithAck(p, opts,
		func(n int) {
			col.mu.Lock()
			col.servers++
			col.expectedClients += n
			col.checkLocked()
		},
		func(args []parser.Raw) {
			col.mu.Lock()
			if !col.done {
				var first parser.Raw
				if len(args) > 0 {
					first = args[0]
				} else {
					first = parser.Raw{JSON: []byte("null")}
				}
				col.responses = append(col.responses, first)
			}
			col.checkLocked()
		})
	p.WaitPaced(b.nsp.srv.writeTimeout())
	if err != nil {
		col.finish(err)
		return
	}
	if opts.Flags.Local {
		col.mu.Lock()
		col.expectedServers = 1
		col.checkLocked()
		return
	}
	started := b.nsp.srv.handlers.goFunc(func() {
		n, err := b.nsp.adapter.ServerCount(ctx)
		if err != nil {
			col.finish(fmt.Errorf("server: broadcast with ack: %w", err))
			return
		}
		col.mu.Lock()
		col.expectedServers = n
		col.checkLocked()
	})
	if !started {
		col.finish(ErrClosed)
	}
}

// FetchSockets returns the selected sockets, on every node (this one only
// with Local).
func (b *BroadcastOperator) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	if b.nsp.srv.isClosed() {
		return nil, ErrClosed
	}
	opts := b.options()
	var infos []adapter.SocketInfo
	var err error
	if b.flags.Local {
		b.nsp.adapter.LocalSockets(opts, func(s adapter.Socket) bool {
			infos = append(infos, s.Info())
			return true
		})
	} else {
		infos, err = b.nsp.adapter.FetchSockets(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("server: fetch sockets: %w", err)
		}
	}
	out := make([]*RemoteSocket, 0, len(infos))
	for _, info := range infos {
		out = append(out, newRemoteSocket(b.nsp, info))
	}
	return out, nil
}

// SocketsJoin makes the selected sockets join rooms.
func (b *BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	if b.nsp.srv.isClosed() {
		return ErrClosed
	}
	return b.nsp.adapter.AddSockets(ctx, b.options(), rooms)
}

// SocketsLeave makes the selected sockets leave rooms.
func (b *BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	if b.nsp.srv.isClosed() {
		return ErrClosed
	}
	return b.nsp.adapter.DelSockets(ctx, b.options(), rooms)
}

// DisconnectSockets disconnects the selected sockets; close also closes
// their connections.
func (b *BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	if b.nsp.srv.isClosed() {
		return ErrClosed
	}
	return b.nsp.adapter.DisconnectSockets(ctx, b.options(), close)
}

// Broadcast returns an operator selecting every socket of the namespace
// but this one.
func (s *Socket) Broadcast() *BroadcastOperator {
	return &BroadcastOperator{nsp: s.nsp, except: []string{s.id}}
}

// To selects the sockets in rooms, except this one.
func (s *Socket) To(rooms ...string) *BroadcastOperator { return s.Broadcast().To(rooms...) }

// In is To.
func (s *Socket) In(rooms ...string) *BroadcastOperator { return s.Broadcast().To(rooms...) }

// Except selects every socket but this one and those in rooms.
func (s *Socket) Except(rooms ...string) *BroadcastOperator { return s.Broadcast().Except(rooms...) }
