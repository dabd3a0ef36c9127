package redisstreams

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// Options configure a Factory. The zero value gives the defaults of
// Node's createAdapter (@socket.io/redis-streams-adapter 0.3); every node
// of a cluster, Go or Node, must use the same StreamName, StreamCount,
// ChannelPrefix and UseShardedPubSub.
//
// Node's heartbeatInterval and heartbeatTimeout options have no
// counterpart: 0.3 accepts them but its adapter sends no heartbeats (the
// nodes are counted with PUBSUB NUMSUB).
type Options struct {
	// StreamName names the stream every namespace writes to; zero means
	// "socket.io".
	StreamName string
	// StreamCount spreads the namespaces over that many streams,
	// <StreamName>-<i>, by a hash of the namespace name; zero means 1
	// (one stream, named StreamName).
	StreamCount int
	// ChannelPrefix prefixes the pub/sub channels of the short-lived
	// messages (requests, broadcasts with acks, answers); zero means
	// "socket.io".
	ChannelPrefix string
	// UseShardedPubSub sends those messages with SPUBLISH and SSUBSCRIBE
	// (Redis 7) instead of PUBLISH and SUBSCRIBE.
	UseShardedPubSub bool
	// MaxLen is the approximate length the stream is trimmed to at each
	// XADD (MAXLEN ~); zero means 10000. A node reading slower than the
	// cluster writes MaxLen entries misses the trimmed ones.
	MaxLen int64
	// ReadCount is the most entries one XREAD returns; zero means 100.
	ReadCount int64
	// BlockTime is how long one XREAD waits for new entries; zero means
	// 5s.
	BlockTime time.Duration
	// SessionKeyPrefix prefixes the keys of the sessions kept for
	// connection state recovery, <prefix><pid>; zero means
	// "sio:session:".
	SessionKeyPrefix string
	// RequestsTimeout bounds FetchSockets (unless the operation carries a
	// timeout of its own), ServerSideEmit with acks, the wait for the
	// subscriptions of a new namespace and every Redis command; zero
	// means 5s, Node's fixed value.
	RequestsTimeout time.Duration
	// MaxPendingPublishes bounds the messages queued for Redis; zero
	// means 4096. When the queue is full, operations return ErrQueueFull.
	MaxPendingPublishes int
	// MaxPendingPublishBytes bounds the same queue in bytes; zero means
	// 32 MiB. A broadcast emitted on this node that finds the queue past
	// half of either bound waits until it is back under a quarter.
	MaxPendingPublishBytes int64
	// MaxMessageBytes bounds every message this node writes; zero means
	// 4 MiB. A larger one fails with ErrMessageTooLarge (an answer is
	// replaced by a small one saying so).
	MaxMessageBytes int
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.StreamName == "" {
		o.StreamName = "socket.io"
	}
	if o.StreamCount <= 0 {
		o.StreamCount = 1
	}
	if o.ChannelPrefix == "" {
		o.ChannelPrefix = "socket.io"
	}
	if o.SessionKeyPrefix == "" {
		o.SessionKeyPrefix = "sio:session:"
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 10000
	}
	if o.ReadCount <= 0 {
		o.ReadCount = 100
	}
	if o.BlockTime <= 0 {
		o.BlockTime = 5 * time.Second
	}
	cluster.SetDefaults(&o.RequestsTimeout, &o.MaxPendingPublishes, &o.MaxPendingPublishBytes, &o.MaxMessageBytes, &o.Logger)
	return o
}

// streamName returns the stream of a namespace (Node's
// computeStreamName): with several streams, <StreamName>-<i> where i is
// Java's String.hashCode of the name modulo StreamCount, keeping the sign
// as JavaScript's % does. A negative i names a stream no reader reads (on
// Node as here); it is kept for compatibility.
func (o *Options) streamName(nsp string) string {
	if o.StreamCount == 1 {
		return o.StreamName
	}
	return o.StreamName + "-" + strconv.Itoa(int(hashCode(nsp)%int32(o.StreamCount)))
}

// streamNames are the streams the readers read: <StreamName>-0 to -(n-1).
func (o *Options) streamNames() []string {
	if o.StreamCount == 1 {
		return []string{o.StreamName}
	}
	out := make([]string, o.StreamCount)
	for i := range out {
		out[i] = o.StreamName + "-" + strconv.Itoa(i)
	}
	return out
}

// hashCode is Java's String.hashCode over UTF-16 code units, in int32
// arithmetic, as Node's adapter computes it.
func hashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r > 0xffff { // a surrogate pair
			r -= 0x10000
			h = h*31 + int32(0xd800+(r>>10))
			h = h*31 + int32(0xdc00+(r&0x3ff))
			continue
		}
		h = h*31 + int32(r)
	}
	return h
}
