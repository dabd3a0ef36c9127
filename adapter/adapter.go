package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/ioswarm/ioswarm/parser"
)

// Errors callers match with errors.Is. The server package exports the
// same values (server.ErrClosed, server.ErrTimeout), so one test works
// whichever layer returned the error.
var (
	// ErrClosed is returned by every operation after Close — of the
	// adapter, its Factory or the server.
	ErrClosed = errors.New("ioswarm: closed")
	// ErrTimeout matches every *TimeoutError: a peer (another node, a
	// client) did not answer in time.
	ErrTimeout = errors.New("ioswarm: timed out waiting for an answer")
)

// TimeoutError ends a wait for answers that did not all come in time: an
// acknowledgement, a cluster request. Its text is the Node.js server's or
// adapter's, e.g. "operation has timed out" or "timeout reached: only 1
// responses received out of 2", which applications forward to clients as
// is. It matches ErrTimeout and context.DeadlineExceeded: a deadline of the
// caller's context and a timeout of the library read the same.
type TimeoutError struct{ Message string }

func (e *TimeoutError) Error() string { return e.Message }

// Is reports whether target is ErrTimeout or context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// Flags modify how a broadcast is delivered.
type Flags struct {
	// Volatile packets are dropped for a connection that cannot take them
	// at once, instead of being queued.
	Volatile bool
	// Local broadcasts reach only the sockets of this node.
	Local bool
	// Compress, when set, is the per-packet compression hint (Node's
	// compress(bool)); nil means the default (true).
	Compress *bool
	// Timeout is the acknowledgement timeout of a broadcast with acks.
	// Adapters forward it to other nodes (Node's flags.timeout).
	Timeout time.Duration
	// ExpectSingleResponse marks an emit to one remote socket.
	ExpectSingleResponse bool
}

// BroadcastOptions select the sockets of a namespace: those in any of Rooms
// (every socket when Rooms is empty) minus those in any of Except. Each
// socket is selected at most once.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  Flags
}

// SocketInfo describes a socket found by FetchSockets, on this node or
// another one.
type SocketInfo struct {
	ID string
	// Handshake is the socket's handshake as JSON, in the shape the Node.js
	// server gives it (headers, time, address, xdomain, secure, issued, url,
	// query, auth).
	Handshake json.RawMessage
	// Rooms lists the socket's rooms, its own id included.
	Rooms []string
	// Data is socket.data as JSON.
	Data json.RawMessage
	// Local is the socket itself when it lives on this node, nil otherwise.
	Local Socket
}

// AckFunc receives the arguments of one client's acknowledgement.
type AckFunc func(args []parser.Raw)

// Socket is what an adapter needs of a local socket. The server implements
// it; every method is safe for concurrent use and never blocks on the
// network (a delivery that congests a paced packet's recipient records it
// with Packet.NoteCongested; the packet's sender waits, not the adapter).
type Socket interface {
	// ID is the socket's 20-character id (also the name of its own room).
	ID() string
	// Deliver sends a broadcast packet to the socket. When ack is not nil
	// it is registered under p.ID and called once with the client's answer
	// (never, if the socket goes away first).
	Deliver(p *Packet, flags Flags, ack AckFunc)
	// Info returns the socket's description, with Local set.
	Info() SocketInfo
	// Disconnect disconnects the socket from its namespace with the reason
	// "server namespace disconnect"; close also closes the underlying
	// connection (and so every namespace on it).
	Disconnect(close bool)
}

// Namespace is what an adapter needs of the namespace it serves.
type Namespace interface {
	// Name is the namespace name, with its leading slash.
	Name() string
	// NextAckID returns a fresh ack id from the namespace's counter, for
	// broadcasts with acks that arrive from other nodes.
	NextAckID() uint64
	// HandleServerSideEmit runs the namespace's server-side listeners for an
	// event another node sent with serverSideEmit. args holds the event
	// name followed by its arguments, as JSON. ack is nil when the sender
	// does not wait for an answer; otherwise it must be called at most
	// once with the answer (the first argument of the listener's ack).
	HandleServerSideEmit(args []json.RawMessage, ack func(json.RawMessage))
}

// Factory creates the adapters of a server's namespaces and owns what they
// share (a Redis subscription, say). A Factory serves one server: the
// server calls Adapter once per namespace, when the namespace is created,
// and Close when it closes, after its sockets are gone. Clients given to a
// Factory (a go-redis client) stay the caller's: Close does not close them.
type Factory interface {
	// Adapter creates the adapter of a namespace.
	Adapter(nsp Namespace) (Adapter, error)
	// Close closes the adapters still open and releases what they share;
	// when ctx ends first it returns an error wrapping ctx's, and what is
	// left ends by itself within a bounded time. It is idempotent.
	Close(ctx context.Context) error
}

// Adapter keeps the rooms of one namespace and reaches its sockets, on this
// node and, for cluster adapters, on the others.
//
// The membership methods (AddAll, Del, DelAll, SocketRooms, Sockets) act on
// local sockets only. The targeting methods act across the cluster unless
// the Local flag is set.
type Adapter interface {
	// AddAll adds a local socket to rooms (creating them as needed).
	AddAll(s Socket, rooms []string)
	// Del removes a local socket from one room.
	Del(id, room string)
	// DelAll removes a local socket from all its rooms and forgets it.
	DelAll(id string)
	// SocketRooms returns the rooms of a local socket, nil if unknown.
	SocketRooms(id string) []string
	// LocalSockets calls fn for every local socket selected by opts until
	// fn returns false. fn runs without adapter locks held.
	LocalSockets(opts BroadcastOptions, fn func(Socket) bool)
	// LocalRooms returns every local room (socket-id rooms included).
	LocalRooms() []string

	// Broadcast delivers p to the selected sockets.
	Broadcast(p *Packet, opts BroadcastOptions) error
	// BroadcastWithAck delivers p, which carries its ack id, and
	// reports, for every node that took part, the number of clients it
	// reached through onClientCount, then every client's answer through
	// onAck. Callers bound the wait themselves (the broadcast's timeout).
	BroadcastWithAck(p *Packet, opts BroadcastOptions, onClientCount func(int), onAck func([]parser.Raw)) error
	// ServerCount returns the number of nodes serving this namespace,
	// this one included.
	ServerCount(ctx context.Context) (int, error)

	// AddSockets makes the selected sockets join rooms.
	AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DelSockets makes the selected sockets leave rooms.
	DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the selected sockets.
	DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error
	// FetchSockets describes the selected sockets.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error)
	// AllRooms returns the rooms of every node (socket-id rooms included).
	AllRooms(ctx context.Context) ([]string, error)
	// ServerSideEmit sends args (the event name then its arguments, as
	// JSON) to the server-side listeners of this namespace on every other
	// node. With wantAck it waits for one answer per other node and returns
	// them; if some did not answer before the request timeout it returns
	// those that did along with an error wrapping ErrTimeout.
	ServerSideEmit(ctx context.Context, args []json.RawMessage, wantAck bool) ([]json.RawMessage, error)

	// Close releases the adapter's resources (cluster subscriptions).
	Close() error
}
