package cluster

import "errors"

// Errors of the Redis adapter; callers match them with errors.Is.
var (
	// ErrQueueFull is returned (wrapped) by operations that could not
	// queue their message for Redis because MaxPendingPublishes messages
	// are already waiting (Redis is slow or unreachable). Local delivery
	// has happened; the message is not sent to the other nodes.
	ErrQueueFull = errors.New("redis: publish queue full")
	// ErrMessageTooLarge is returned (wrapped) by operations whose message
	// for the other nodes would exceed Options.MaxMessageBytes (local
	// delivery has happened; the message is not sent), and by requests
	// that another node could not answer within that limit (the error
	// names the node).
	ErrMessageTooLarge = errors.New("redis: message too large")
)

// Errors of malformed messages from other nodes.
var (
	ErrNotAnEvent  = errors.New("redis: broadcast is not a valid EVENT")
	ErrBadEnvelope = errors.New("redis: malformed message")
)

// ErrTrailing: a msgpack message goes on after its value.
var ErrTrailing = errors.New("redis: msgpack: trailing bytes")
