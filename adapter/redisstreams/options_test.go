package redisstreams

import (
	"testing"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The stream of a namespace is Node's computeStreamName, bug for bug: a
// negative hash names a stream no reader reads (docs/protocol, Part C).
func TestStreamName(t *testing.T) {
	testkit.Equal(t, hashCode("/notifications"), int32(-1014064871))
	testkit.Equal(t, hashCode("/"), int32(47))
	testkit.Equal(t, hashCode("/😀"), int32(1818066)) // UTF-16 code units, as charCodeAt (node -e)
	one := Options{}.withDefaults()
	testkit.Equal(t, one.streamName("/notifications"), "socket.io")
	four := Options{StreamCount: 4}.withDefaults()
	testkit.Equal(t, four.streamName("/notifications"), "socket.io--3")
	testkit.Equal(t, four.streamName("/"), "socket.io-3")
	testkit.Equal(t, four.streamNames(), []string{"socket.io-0", "socket.io-1", "socket.io-2", "socket.io-3"})
}
