package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Kinds of Event.
const (
	KindEvent        = "event"         // an event emitted by the server
	KindConnect      = "connect"       // the socket connected
	KindConnectError = "connect_error" // the connection (or the namespace) was refused
	KindDisconnect   = "disconnect"    // the socket disconnected
)

// Event is one thing a client socket saw, in arrival order: a server event or a
// connect, connect_error or disconnect.
type Event struct {
	Kind string
	// Name is the event name (for KindEvent) or the kind.
	Name string
	// Args are the event arguments decoded: JSON numbers are float64, binary is []byte.
	Args []any
	// Raw are the arguments as JSON text, keys in the order the client received them;
	// binary appears as {"$bin":"<base64>"}.
	Raw []json.RawMessage
	// Auto is "echo", "silent" or "reply" when an OnAck responder handled the server's
	// acknowledgement request.
	Auto string
	// SocketID is the socket id, for KindConnect.
	SocketID string
	// ConnectError is set for KindConnectError.
	ConnectError *ConnectError
	// Reason and Description are set for KindDisconnect.
	Reason      string
	Description string
	// At is when the Go side read the report.
	At time.Time

	ackRef int64
	c      *Client
}

// HasAck reports whether the server asked for an acknowledgement that is still to be given
// with Ack.
func (e *Event) HasAck() bool { return e.ackRef != 0 }

// Ack answers the server's acknowledgement request for this event.
func (e *Event) Ack(ctx context.Context, args ...any) error {
	if e.ackRef == 0 {
		return fmt.Errorf("testkit: event %q has no pending acknowledgement", e.Name)
	}
	wire, err := argsToWire(args)
	if err != nil {
		return err
	}
	_, err = e.c.d.call(ctx, "ack", map[string]any{"handle": e.c.handle, "ref": e.ackRef, "args": wire})
	return err
}

func (e *Event) String() string {
	switch e.Kind {
	case KindEvent:
		raw := make([]string, len(e.Raw))
		for i, r := range e.Raw {
			raw[i] = truncate(r, 120)
		}
		return fmt.Sprintf("%s[%s]", e.Name, strings.Join(raw, ","))
	case KindConnect:
		return "connect(" + e.SocketID + ")"
	case KindConnectError:
		return "connect_error(" + e.ConnectError.Error() + ")"
	case KindDisconnect:
		return "disconnect(" + e.Reason + ")"
	}
	return e.Kind
}

// ConnectError is what the client reported with connect_error.
type ConnectError struct {
	Message string
	// Data is the error's data (decoded like Event.Args); HasData tells an absent data from null.
	Data    any
	HasData bool
	// Type is the client's error type, e.g. "TransportError", for errors raised by the client.
	Type        string
	Description string
}

func (e *ConnectError) Error() string {
	if e.HasData {
		b, _ := json.Marshal(e.Data)
		return fmt.Sprintf("connect_error %q data %s", e.Message, b)
	}
	return fmt.Sprintf("connect_error %q", e.Message)
}

// ClientInfo is the socket's state as the client sees it.
type ClientInfo struct {
	ID        string `json:"id"`
	Connected bool   `json:"connected"`
	Active    bool   `json:"active"`
	Transport string `json:"transport"`
	// Recovered is socket.recovered: the last connection recovered the former session
	// (connection state recovery).
	Recovered bool `json:"recovered"`
}

// Client is one socket.io-client socket in the driver. Its methods are safe for concurrent
// use; everything it saw is buffered until taken by Next, WaitConnect, ….
type Client struct {
	d      *NodeClientDriver
	handle string
	nsp    string

	mu     sync.Mutex
	queue  []*Event
	notify chan struct{} // closed and replaced on every push
}

// Handle is the client's name in the driver.
func (c *Client) Handle() string { return c.handle }

// Namespace is the namespace the client connects to.
func (c *Client) Namespace() string { return c.nsp }

func (c *Client) push(l driverLine) {
	e := &Event{Kind: l.Type, Name: l.Type, At: time.Now(), c: c}
	switch l.Type {
	case KindEvent:
		e.Name = l.Event
		e.Raw = l.Args
		e.ackRef = l.Ack
		e.Auto = l.Auto
		args, err := fromWireList(l.Args)
		if err != nil {
			c.d.t.Logf("testkit: %s: %v", c.handle, err)
		}
		e.Args = args
	case KindConnect:
		e.SocketID = l.Sid
	case KindConnectError:
		ce := &ConnectError{Message: l.Message, Type: l.ErrType, Description: l.Description}
		if l.Data != nil {
			ce.HasData = true
			ce.Data, _ = FromWire(l.Data)
		}
		e.ConnectError = ce
	case KindDisconnect:
		e.Reason = l.Reason
		e.Description = l.Description
	default:
		c.d.t.Logf("testkit: %s: unknown report %q", c.handle, l.Type)
		return
	}
	c.mu.Lock()
	c.queue = append(c.queue, e)
	c.mu.Unlock()
	c.wake()
}

func (c *Client) wake() {
	c.mu.Lock()
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
}

// wait calls try with c.mu held until it reports true, waiting for new reports between
// calls.
func (c *Client) wait(ctx context.Context, what string, try func() bool) error {
	for {
		closed := false
		select {
		case <-c.d.done:
			closed = true
		default:
		}
		c.mu.Lock()
		ok := try()
		ch := c.notify
		c.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return fmt.Errorf("testkit: %s: waiting for %s: %w", c.handle, what, ErrDriverClosed)
		}
		select {
		case <-ch:
		case <-c.d.done:
		case <-ctx.Done():
			return fmt.Errorf("testkit: %s: waiting for %s: %w (buffered: %s)", c.handle, what, ctx.Err(), c.summary())
		}
	}
}

// take removes and returns the first buffered event accepted by match, waiting for one.
// When match returns an error the event is removed and the error returned.
func (c *Client) take(ctx context.Context, what string, match func(*Event) (bool, error)) (*Event, error) {
	var (
		found  *Event
		failed error
	)
	err := c.wait(ctx, what, func() bool {
		for i, e := range c.queue {
			ok, err := match(e)
			if ok || err != nil {
				c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
				found, failed = e, err
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	return found, failed
}

func (c *Client) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return "nothing"
	}
	parts := make([]string, 0, len(c.queue))
	for i, e := range c.queue {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("… %d more", len(c.queue)-i))
			break
		}
		parts = append(parts, e.String())
	}
	return strings.Join(parts, " ")
}

// Buffered returns a copy of what the client saw and nobody took yet, in arrival order.
func (c *Client) Buffered() []*Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Event(nil), c.queue...)
}

// Next waits for the next server event named event and returns its arguments.
func (c *Client) Next(ctx context.Context, event string) ([]any, error) {
	e, err := c.NextEvent(ctx, event)
	if err != nil {
		return nil, err
	}
	return e.Args, nil
}

// NextEvent waits for the next server event named event.
func (c *Client) NextEvent(ctx context.Context, event string) (*Event, error) {
	return c.take(ctx, fmt.Sprintf("event %q", event), func(e *Event) (bool, error) {
		return e.Kind == KindEvent && e.Name == event, nil
	})
}

// TryNext takes the first buffered server event named event, without waiting.
func (c *Client) TryNext(event string) (*Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.queue {
		if e.Kind == KindEvent && e.Name == event {
			c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
			return e, true
		}
	}
	return nil, false
}

// Until waits for the server event named stop and returns, in order, every server event
// buffered before it followed by the stop event itself, removing them all. Connect and
// disconnect reports stay buffered. With one server and per-client ordering, emitting a
// marker event after a broadcast and calling Until(marker) tells what the broadcast
// delivered to this client.
func (c *Client) Until(ctx context.Context, stop string) ([]*Event, error) {
	var out []*Event
	err := c.wait(ctx, fmt.Sprintf("event %q", stop), func() bool {
		idx := -1
		for i, e := range c.queue {
			if e.Kind == KindEvent && e.Name == stop {
				idx = i
				break
			}
		}
		if idx < 0 {
			return false
		}
		rest := make([]*Event, 0, len(c.queue)-idx)
		for _, e := range c.queue[:idx+1] {
			if e.Kind == KindEvent {
				out = append(out, e)
			} else {
				rest = append(rest, e)
			}
		}
		c.queue = append(rest, c.queue[idx+1:]...)
		return true
	})
	return out, err
}

// NamesUntil is Until that returns the names of the events.
func (c *Client) NamesUntil(ctx context.Context, stop string) ([]string, error) {
	evs, err := c.Until(ctx, stop)
	names := make([]string, 0, len(evs))
	for _, e := range evs {
		names = append(names, e.Name)
	}
	return names, err
}

// WaitConnect waits for the socket to connect and returns its socket id. A connect_error
// that comes first is returned as a *ConnectError.
func (c *Client) WaitConnect(ctx context.Context) (string, error) {
	e, err := c.take(ctx, "connect", func(e *Event) (bool, error) {
		switch e.Kind {
		case KindConnect:
			return true, nil
		case KindConnectError:
			return false, e.ConnectError
		}
		return false, nil
	})
	if err != nil {
		return "", err
	}
	return e.SocketID, nil
}

// WaitReconnect waits for the socket to connect again, skipping the connect_errors of the
// attempts made while no server took it, and returns its socket id.
func (c *Client) WaitReconnect(ctx context.Context) (string, error) {
	for {
		id, err := c.WaitConnect(ctx)
		var ce *ConnectError
		if !errors.As(err, &ce) {
			return id, err
		}
	}
}

// WaitConnectError waits for a connect_error. A connect that comes first is an error.
func (c *Client) WaitConnectError(ctx context.Context) (*ConnectError, error) {
	e, err := c.take(ctx, "connect_error", func(e *Event) (bool, error) {
		switch e.Kind {
		case KindConnectError:
			return true, nil
		case KindConnect:
			return false, fmt.Errorf("testkit: %s: connected (id %s) instead of a connect_error", c.handle, e.SocketID)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return e.ConnectError, nil
}

// WaitDisconnect waits for the socket to disconnect and returns the client-side reason,
// e.g. "io server disconnect" or "transport close".
func (c *Client) WaitDisconnect(ctx context.Context) (string, error) {
	e, err := c.take(ctx, "disconnect", func(e *Event) (bool, error) {
		return e.Kind == KindDisconnect, nil
	})
	if err != nil {
		return "", err
	}
	return e.Reason, nil
}

// Emit sends an event without acknowledgement. It returns once the client has the packet
// (it is buffered by the client while disconnected).
func (c *Client) Emit(ctx context.Context, event string, args ...any) error {
	wire, err := argsToWire(args)
	if err != nil {
		return err
	}
	_, err = c.d.call(ctx, "emit", map[string]any{"handle": c.handle, "event": event, "args": wire})
	return err
}

// EmitVolatile sends a volatile event (dropped by the client when not connected).
func (c *Client) EmitVolatile(ctx context.Context, event string, args ...any) error {
	wire, err := argsToWire(args)
	if err != nil {
		return err
	}
	_, err = c.d.call(ctx, "emit", map[string]any{"handle": c.handle, "event": event, "args": wire, "volatile": true})
	return err
}

// EmitWithAck sends an event with an acknowledgement and returns the server's ack
// arguments. It waits as long as ctx allows; the client itself sets no timeout.
func (c *Client) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	raw, err := c.EmitWithAckRaw(ctx, event, args...)
	if err != nil {
		return nil, err
	}
	return fromWireList(raw)
}

// EmitWithAckRaw is EmitWithAck returning the ack arguments as JSON text, with object keys
// in the order the client received them.
func (c *Client) EmitWithAckRaw(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	return c.emitAck(ctx, -1, event, args)
}

// EmitWithAckTimeout uses the client's socket.timeout(timeout).emit(...): when the server
// does not answer in time it returns a *DriverError "operation has timed out"
// (see IsAckTimeout).
func (c *Client) EmitWithAckTimeout(ctx context.Context, timeout time.Duration, event string, args ...any) ([]any, error) {
	raw, err := c.emitAck(ctx, timeout, event, args)
	if err != nil {
		return nil, err
	}
	return fromWireList(raw)
}

func (c *Client) emitAck(ctx context.Context, timeout time.Duration, event string, args []any) ([]json.RawMessage, error) {
	wire, err := argsToWire(args)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{"handle": c.handle, "event": event, "args": wire, "ack": true}
	if timeout >= 0 {
		fields["timeoutMs"] = timeout.Milliseconds()
	}
	res, err := c.d.call(ctx, "emit", fields)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(res, &raw); err != nil {
		return nil, fmt.Errorf("testkit: %s: ack of %q: %w", c.handle, event, err)
	}
	return raw, nil
}

// OnAck registers an automatic responder: when the server emits event asking for an
// acknowledgement, the client answers with reply. Event "*" matches every event.
func (c *Client) OnAck(ctx context.Context, event string, reply ...any) error {
	wire, err := argsToWire(reply)
	if err != nil {
		return err
	}
	return c.onAck(ctx, event, wire)
}

// OnAckEcho makes the client answer the server's acknowledgement requests for event with the
// arguments it received.
func (c *Client) OnAckEcho(ctx context.Context, event string) error {
	return c.onAck(ctx, event, "echo")
}

// OnAckSilent makes the client never answer acknowledgement requests for event.
func (c *Client) OnAckSilent(ctx context.Context, event string) error {
	return c.onAck(ctx, event, "silent")
}

// OffAck removes the automatic responder of event: its acknowledgement requests are then
// left to Event.Ack.
func (c *Client) OffAck(ctx context.Context, event string) error {
	_, err := c.d.call(ctx, "offAck", map[string]any{"handle": c.handle, "event": event})
	return err
}

func (c *Client) onAck(ctx context.Context, event string, reply any) error {
	_, err := c.d.call(ctx, "onAck", map[string]any{"handle": c.handle, "event": event, "reply": reply})
	return err
}

// Transport returns the name of the client's current transport ("polling" or
// "websocket"), or "" when it has none.
func (c *Client) Transport(ctx context.Context) (string, error) {
	res, err := c.d.call(ctx, "transport", map[string]any{"handle": c.handle})
	if err != nil {
		return "", err
	}
	var name *string
	if err := json.Unmarshal(res, &name); err != nil || name == nil {
		return "", err
	}
	return *name, nil
}

// Info returns the socket's state as the client sees it.
func (c *Client) Info(ctx context.Context) (ClientInfo, error) {
	var info ClientInfo
	res, err := c.d.call(ctx, "info", map[string]any{"handle": c.handle})
	if err != nil {
		return info, err
	}
	var wire struct {
		ID        *string `json:"id"`
		Connected bool    `json:"connected"`
		Active    bool    `json:"active"`
		Transport *string `json:"transport"`
		Recovered bool    `json:"recovered"`
	}
	if err := json.Unmarshal(res, &wire); err != nil {
		return info, fmt.Errorf("testkit: %s: info: %w", c.handle, err)
	}
	info.Connected, info.Active, info.Recovered = wire.Connected, wire.Active, wire.Recovered
	if wire.ID != nil {
		info.ID = *wire.ID
	}
	if wire.Transport != nil {
		info.Transport = *wire.Transport
	}
	return info, nil
}

// Disconnect calls socket.disconnect(): a DISCONNECT for this namespace (server reason
// "client namespace disconnect"); the Manager closes when none of its sockets is left.
func (c *Client) Disconnect(ctx context.Context) error {
	_, err := c.d.call(ctx, "disconnect", map[string]any{"handle": c.handle})
	return err
}

// Reconnect calls socket.connect() on a disconnected socket.
func (c *Client) Reconnect(ctx context.Context) error {
	_, err := c.d.call(ctx, "open", map[string]any{"handle": c.handle})
	return err
}

// Close disconnects the socket and closes its Manager (every socket sharing it).
func (c *Client) Close(ctx context.Context) error {
	_, err := c.d.call(ctx, "close", map[string]any{"handle": c.handle})
	return err
}

// CloseTransport closes the client's Engine.IO connection without a DISCONNECT packet, as a
// lost network would: the server sees "transport close".
func (c *Client) CloseTransport(ctx context.Context) error {
	_, err := c.d.call(ctx, "closeEngine", map[string]any{"handle": c.handle})
	return err
}
