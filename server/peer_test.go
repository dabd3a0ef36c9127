package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The server's tests drive it with the project's Go client (package
// client), in process: they need no Node.js. Compatibility with the
// official JS client is proven in integration/.

// peer is a client socket that queues what it sees, in arrival order —
// events, connects and disconnects — for the tests to take with next,
// until, waitConnect and waitDisconnect. The socket's own API (Emit,
// EmitWithAck, ID, Recovered, Close…) is there too.
type peer struct {
	*client.Socket
	t *testing.T

	mu   sync.Mutex
	seen []*seen
	wake chan struct{} // has a value when seen changed
}

// seen is one thing a peer saw.
type seen struct {
	kind   string // "event", "connect" or "disconnect"
	name   string // of an event
	args   []any  // of an event, decoded: numbers are float64, binary []byte
	id     string // the socket id, of a connect
	reason string // of a disconnect
}

// peerOptions say how a peer connects.
type peerOptions struct {
	url        string // the server, "http://host:port"
	nsp        string // "" means "/"
	path       string // the server's path; "" means "/socket.io/"
	transports []string
	auth       any
	// reconnect is the delay between reconnection attempts (no jitter);
	// zero turns reconnection off.
	reconnect time.Duration
}

// dialPeer connects a peer and takes its first connect. The socket closes
// at cleanup, before a goroutine check registered earlier runs.
func dialPeer(t *testing.T, o peerOptions) (*peer, error) {
	t.Helper()
	opts := client.Options{Transports: o.transports, Path: o.path, Auth: o.auth}
	if o.reconnect > 0 {
		noJitter := 0.0
		opts.ReconnectionDelay, opts.ReconnectionDelayMax = o.reconnect, o.reconnect
		opts.RandomizationFactor = &noJitter
	} else {
		off := false
		opts.Reconnection = &off
	}
	s, err := client.NewSocket(o.url+o.nsp, opts)
	if err != nil {
		return nil, err
	}
	p := &peer{Socket: s, t: t, wake: make(chan struct{}, 1)}
	s.OnAny(func(ev *client.Event) {
		args, err := ev.Args.Values()
		if err != nil {
			t.Errorf("peer: event %q: %v", ev.Name, err)
		}
		p.push(&seen{kind: "event", name: ev.Name, args: args})
	})
	s.OnConnect(func() { p.push(&seen{kind: "connect", id: s.ID()}) })
	s.OnDisconnect(func(reason string) { p.push(&seen{kind: "disconnect", reason: reason}) })
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Connect(ctxT(t)); err != nil {
		return nil, err
	}
	if _, err := p.waitConnect(ctxT(t)); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *peer) push(s *seen) {
	p.mu.Lock()
	p.seen = append(p.seen, s)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the first thing seen that match accepts,
// waiting for it until ctx ends.
func (p *peer) take(ctx context.Context, what string, match func(*seen) bool) (*seen, error) {
	for {
		p.mu.Lock()
		for i, s := range p.seen {
			if match(s) {
				p.seen = append(p.seen[:i:i], p.seen[i+1:]...)
				p.mu.Unlock()
				return s, nil
			}
		}
		p.mu.Unlock()
		if err := p.waitChange(ctx, what); err != nil {
			return nil, err
		}
	}
}

// waitChange waits for something new to be seen.
func (p *peer) waitChange(ctx context.Context, what string) error {
	select {
	case <-p.wake:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("peer: waiting for %s: %w (seen: %s)", what, ctx.Err(), p.summary())
	}
}

func (p *peer) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, s := range p.seen {
		parts = append(parts, s.kind+":"+s.name+s.reason)
	}
	return strings.Join(parts, " ")
}

// next waits for the next event called event and returns its arguments.
func (p *peer) next(ctx context.Context, event string) ([]any, error) {
	s, err := p.take(ctx, "event "+event, func(s *seen) bool { return s.kind == "event" && s.name == event })
	if err != nil {
		return nil, err
	}
	return s.args, nil
}

// until waits for the event called stop and returns, in order, every event
// seen before it and stop itself, taking them all; connects and
// disconnects stay. After a broadcast, emitting a marker and calling
// until(marker) tells what the broadcast delivered to this peer.
func (p *peer) until(ctx context.Context, stop string) ([]*seen, error) {
	for {
		p.mu.Lock()
		for i, s := range p.seen {
			if s.kind != "event" || s.name != stop {
				continue
			}
			var evs, rest []*seen
			for _, s := range p.seen[:i+1] {
				if s.kind == "event" {
					evs = append(evs, s)
				} else {
					rest = append(rest, s)
				}
			}
			p.seen = append(rest, p.seen[i+1:]...)
			p.mu.Unlock()
			return evs, nil
		}
		p.mu.Unlock()
		if err := p.waitChange(ctx, "event "+stop); err != nil {
			return nil, err
		}
	}
}

// waitConnect waits for the next connect and returns the socket id.
func (p *peer) waitConnect(ctx context.Context) (string, error) {
	s, err := p.take(ctx, "connect", func(s *seen) bool { return s.kind == "connect" })
	if err != nil {
		return "", err
	}
	return s.id, nil
}

// waitDisconnect waits for the next disconnect and returns its reason.
func (p *peer) waitDisconnect(ctx context.Context) (string, error) {
	s, err := p.take(ctx, "disconnect", func(s *seen) bool { return s.kind == "disconnect" })
	if err != nil {
		return "", err
	}
	return s.reason, nil
}

// onAck answers every event called event with reply.
func (p *peer) onAck(event string, reply ...any) {
	p.On(event, func(ev *client.Event) { _ = ev.Ack(reply...) })
}

// onAckEcho answers every event called event with its own arguments.
func (p *peer) onAckEcho(event string) {
	p.On(event, func(ev *client.Event) { _ = ev.Ack(ev.Args.Any()...) })
}

// dropTransport closes the connection as a network failure would (the
// server sees "transport close"); a peer with reconnect comes back.
func (p *peer) dropTransport() { p.Manager().CloseTransport() }

// values decodes acknowledgement arguments as next does.
func values(t *testing.T, a client.Args) []any {
	t.Helper()
	v, err := a.Values()
	testkit.NoError(t, err)
	return v
}
