package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/parser"
)

// An Emitter sends events to the clients of a cluster from a process that is
// not a Socket.IO server — a worker, a cron job — as Node's
// @socket.io/redis-emitter 5 does, on the same wire: Go and Node.js nodes on
// the key deliver what it sends. It publishes and never subscribes, so it
// cannot collect acknowledgements or answers.
//
//	e := redis.NewEmitter(client, redis.EmitterOptions{})
//	err := e.To("room1").Emit(ctx, "news", map[string]any{"id": 1})
//
// Its broadcasts carry no offset: connection state recovery does not replay
// them (as those of Node nodes). An Emitter is safe for concurrent use and
// holds nothing but the client, which the caller owns.
type Emitter struct {
	client goredis.UniversalClient
	opts   EmitterOptions
	nsp    string
}

// EmitterOptions configure an Emitter; the zero value is Node's defaults.
type EmitterOptions struct {
	// Key is the channel prefix of the cluster; zero means "socket.io".
	Key string
	// MaxMessageBytes bounds every message, as Options.MaxMessageBytes
	// does for a node; zero means 4 MiB.
	MaxMessageBytes int
}

// emitterUID is the uid Node's emitter writes in its messages; nodes
// deliver them (no node has it as its own).
const emitterUID = "emitter"

// ErrReservedEvent is returned by Emit for an event name the Socket.IO
// client keeps for itself ("connect", "disconnect", …).
var ErrReservedEvent = errors.New("redis: reserved event name")

// NewEmitter returns an Emitter of the namespace "/" on client.
func NewEmitter(client goredis.UniversalClient, opts EmitterOptions) *Emitter {
	if opts.Key == "" {
		opts.Key = "socket.io"
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 4 << 20
	}
	return &Emitter{client: client, opts: opts, nsp: "/"}
}

// Of returns an Emitter of namespace nsp ("/" is added when it is missing,
// as Node does).
func (e *Emitter) Of(nsp string) *Emitter {
	if !strings.HasPrefix(nsp, "/") {
		nsp = "/" + nsp
	}
	return &Emitter{client: e.client, opts: e.opts, nsp: nsp}
}

// Namespace returns the emitter's namespace.
func (e *Emitter) Namespace() string { return e.nsp }

func (e *Emitter) operator() *EmitterOperator { return &EmitterOperator{e: e} }

// To selects the sockets in any of rooms (the union with rooms selected
// before).
func (e *Emitter) To(rooms ...string) *EmitterOperator { return e.operator().To(rooms...) }

// In is To.
func (e *Emitter) In(rooms ...string) *EmitterOperator { return e.operator().To(rooms...) }

// Except leaves out the sockets in any of rooms.
func (e *Emitter) Except(rooms ...string) *EmitterOperator { return e.operator().Except(rooms...) }

// Volatile marks the events as volatile: a client that cannot take them now
// does not get them.
func (e *Emitter) Volatile() *EmitterOperator { return e.operator().Volatile() }

// Compress sets the compress flag of the events.
func (e *Emitter) Compress(compress bool) *EmitterOperator { return e.operator().Compress(compress) }

// Emit sends an event to every client of the namespace.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	return e.operator().Emit(ctx, event, args...)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (e *Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.operator().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace leave rooms.
func (e *Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.operator().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace; with close,
// their connections too.
func (e *Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.operator().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends an event to the server-side listeners of the
// namespace on every node (acknowledgements are not supported, as on
// Node's emitter). The arguments travel as JSON: binary values are refused.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	vals := append([]any{event}, args...)
	data, atts, err := parser.AppendValues(nil, nil, vals...)
	if err != nil {
		return fmt.Errorf("redis: serverSideEmit %q: %w", event, err)
	}
	if len(atts) > 0 {
		return fmt.Errorf("redis: serverSideEmit %q: binary arguments cannot travel as JSON", event)
	}
	m := cluster.NewJSONMsg(48 + len(data))
	m.Str("uid", emitterUID)
	m.Int("type", typeServerSideEmit)
	m.Raw("data", data)
	return e.publish(ctx, requestChannel(e.opts.Key, e.nsp), m.Bytes())
}

func requestChannel(key, nsp string) string { return key + "-request#" + nsp + "#" }

func (e *Emitter) publish(ctx context.Context, channel string, msg []byte) error {
	if len(msg) > e.opts.MaxMessageBytes {
		return fmt.Errorf("redis: publish to %s: %d bytes > MaxMessageBytes (%d): %w",
			channel, len(msg), e.opts.MaxMessageBytes, cluster.ErrMessageTooLarge)
	}
	cmd := publishCmd(ctx, channel, msg) // by slot on a Redis Cluster: in order with the others on channel
	_ = e.client.Process(ctx, cmd)
	if err := cmd.Err(); err != nil {
		return fmt.Errorf("redis: publish to %s: %w", channel, err)
	}
	return nil
}

// EmitterOperator is a selection of the sockets of an Emitter's namespace
// (rooms, except-rooms) and flags; each method returns a new operator.
type EmitterOperator struct {
	e      *Emitter
	rooms  []string
	except []string
	flags  adapter.Flags
}

func (o *EmitterOperator) clone() *EmitterOperator {
	c := *o
	c.rooms = append([]string(nil), o.rooms...)
	c.except = append([]string(nil), o.except...)
	return &c
}

// addRooms adds rooms to a set kept in insertion order, as Node's Set.
func addRooms(set []string, rooms []string) []string {
	for _, r := range rooms {
		if !slices.Contains(set, r) {
			set = append(set, r)
		}
	}
	return set
}

// To adds rooms to the selection.
func (o *EmitterOperator) To(rooms ...string) *EmitterOperator {
	c := o.clone()
	c.rooms = addRooms(c.rooms, rooms)
	return c
}

// In is To.
func (o *EmitterOperator) In(rooms ...string) *EmitterOperator { return o.To(rooms...) }

// Except adds rooms whose sockets are left out.
func (o *EmitterOperator) Except(rooms ...string) *EmitterOperator {
	c := o.clone()
	c.except = addRooms(c.except, rooms)
	return c
}

// Volatile marks the events as volatile.
func (o *EmitterOperator) Volatile() *EmitterOperator {
	c := o.clone()
	c.flags.Volatile = true
	return c
}

// Compress sets the compress flag.
func (o *EmitterOperator) Compress(compress bool) *EmitterOperator {
	c := o.clone()
	c.flags.Compress = &compress
	return c
}

func (o *EmitterOperator) options() adapter.BroadcastOptions {
	return adapter.BroadcastOptions{Rooms: o.rooms, Except: o.except, Flags: o.flags}
}

// reservedEvents are the names the Socket.IO client keeps for itself.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

// Emit sends an event to the selected sockets of every node. Arguments are
// encoded as the server encodes them (binary values anywhere, as
// attachments). It returns once Redis took the message.
func (o *EmitterOperator) Emit(ctx context.Context, event string, args ...any) error {
	if reservedEvents[event] {
		return fmt.Errorf("redis: emit %q: %w", event, ErrReservedEvent)
	}
	vals := append([]any{event}, args...)
	data, atts, err := parser.AppendValues(nil, nil, vals...)
	if err != nil {
		return fmt.Errorf("redis: emit %q: %w", event, err)
	}
	msg, err := encodeBroadcast(emitterUID, o.e.nsp, adapter.NewPacket(o.e.nsp, data, atts), o.options())
	if err != nil {
		return fmt.Errorf("redis: emit %q: %w", event, err)
	}
	ch := o.e.opts.Key + "#" + o.e.nsp + "#"
	if len(o.rooms) == 1 {
		ch += o.rooms[0] + "#"
	}
	return o.e.publish(ctx, ch, msg)
}

// SocketsJoin makes the selected sockets of every node join rooms.
func (o *EmitterOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return o.roomRequest(ctx, typeRemoteJoin, rooms)
}

// SocketsLeave makes the selected sockets of every node leave rooms.
func (o *EmitterOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return o.roomRequest(ctx, typeRemoteLeave, rooms)
}

// roomRequest publishes a REMOTE_JOIN or REMOTE_LEAVE as Node's emitter
// writes it (no uid: every node applies it).
func (o *EmitterOperator) roomRequest(ctx context.Context, typ int, rooms []string) error {
	m := cluster.NewJSONMsg(64)
	m.Int("type", typ)
	m.Opts(o.options())
	m.Strs("rooms", rooms)
	return o.e.publish(ctx, requestChannel(o.e.opts.Key, o.e.nsp), m.Bytes())
}

// DisconnectSockets disconnects the selected sockets of every node; with
// close, their connections too.
func (o *EmitterOperator) DisconnectSockets(ctx context.Context, close bool) error {
	m := cluster.NewJSONMsg(64)
	m.Int("type", typeRemoteDisconnect)
	m.Opts(o.options())
	m.Boolean("close", close)
	return o.e.publish(ctx, requestChannel(o.e.opts.Key, o.e.nsp), m.Bytes())
}
