package client

import (
	"context"

	"github.com/ioswarm/ioswarm/client/internal/engine"
)

// dialEngine opens a real Engine.IO connection (client/internal/engine).
func dialEngine(ctx context.Context, base string, opts *Options, onMessage func([]byte, bool)) (conn, error) {
	c, err := engine.Dial(ctx, base, engine.Options{
		Path:       opts.Path,
		Transports: opts.Transports,
		Upgrade:    opts.Upgrade,
		Query:      opts.Query,
		Header:     opts.Header,
		HTTPClient: opts.HTTPClient,
		Dialer:     opts.Dialer,
		OnMessage:  onMessage,
	})
	if err != nil {
		return nil, err
	}
	return engineConn{c}, nil
}

// engineConn adapts an *engine.Conn to conn.
type engineConn struct{ c *engine.Conn }

func (e engineConn) send(msgs ...frame) error {
	out := make([]engine.Message, len(msgs))
	for i, m := range msgs {
		out[i] = engine.Message{Data: m.data, Binary: m.binary}
	}
	err := e.c.Send(out...)
	if err == engine.ErrQueueFull {
		return errQueueFull
	}
	return err
}

func (e engineConn) close() error          { return e.c.Close() }
func (e engineConn) done() <-chan struct{} { return e.c.Done() }
func (e engineConn) reason() string        { return e.c.Reason() }
func (e engineConn) transport() string     { return e.c.Transport() }
