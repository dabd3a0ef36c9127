package client

import (
	"context"
	"errors"
)

// frame is one Engine.IO message: a Socket.IO packet's text, or one of its
// binary attachments.
type frame struct {
	data   []byte
	binary bool
}

// conn is what a Manager needs of an Engine.IO connection. The real one is
// client/internal/engine's Conn; unit tests use an in-memory fake.
type conn interface {
	// send queues msgs, in order and together, without blocking; it fails
	// once the connection is closed.
	send(msgs ...frame) error
	// close closes the connection ("forced close") and waits for its
	// goroutines: no onMessage call runs after it returns.
	close() error
	// done is closed when the connection has ended; reason then says why:
	// "forced close", "transport close", "transport error", "ping timeout"
	// or "parse error".
	done() <-chan struct{}
	reason() string
	// transport is the transport in use, "polling" or "websocket".
	transport() string
}

// dialFunc opens an Engine.IO connection to base (scheme and host) with the
// Manager's options; onMessage receives every message, in order, on the
// connection's reader goroutine, and must not block.
type dialFunc func(ctx context.Context, base string, opts *Options, onMessage func(data []byte, binary bool)) (conn, error)

// errQueueFull is a conn's refusal of a send that would pass its queue's
// bounds (the connection is alive but the server does not read fast
// enough); emits report it as ErrBufferFull.
var errQueueFull = errors.New("client: connection send queue full")
