package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// recoveryNamespace is a fake namespace with recovery on.
type recoveryNamespace struct {
	*fakeNamespace
	opts adapter.RecoveryOptions
}

func (n *recoveryNamespace) Recovery() *adapter.RecoveryOptions { return &n.opts }

func newRecoveryAdapter(t testing.TB, url string, opts adapter.RecoveryOptions) (*Adapter, *goredis.Client) {
	t.Helper()
	f := newTestFactory(t, url, Options{Key: uniqueKey(t), RequestsTimeout: clusterTimeout})
	a, err := f.Adapter(&recoveryNamespace{&fakeNamespace{name: "/"}, opts})
	testkit.NoError(t, err)
	return a.(*Adapter), newClient(t, url)
}

func logBytes(t testing.TB, c *goredis.Client, r *recovery) (entries, bytes int64) {
	t.Helper()
	ctx := context.Background()
	entries, err := c.XLen(ctx, r.logKey).Result()
	testkit.NoError(t, err)
	msgs, err := c.XRange(ctx, r.logKey, "-", "+").Result()
	testkit.NoError(t, err)
	for _, m := range msgs {
		bytes += int64(len(m.Values["m"].(string)))
	}
	return entries, bytes
}

// TestRecoveryLogBounds: a sender broadcasting without end (the attack on
// the log) leaves at most MaxPackets entries and MaxPacketBytes in Redis,
// and the byte count the script keeps is exact.
func TestRecoveryLogBounds(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	a, c := newRecoveryAdapter(t, url, adapter.RecoveryOptions{
		MaxDisconnectionDuration: time.Minute, MaxPackets: 50, MaxPacketBytes: 32 << 10,
		MaxSessions: 10, MaxSessionBytes: 1 << 20})
	small := `["e","` + strings.Repeat("x", 100) + `"]`
	for i := 0; i < 200; i++ {
		testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", []byte(small), nil), adapter.BroadcastOptions{}))
	}
	n, size := logBytes(t, c, a.rec)
	testkit.Equal(t, n, int64(50), "entries after 200 small broadcasts (count bound)")
	counted, err := c.Get(context.Background(), a.rec.logBytesKey).Int64()
	testkit.NoError(t, err)
	testkit.Equal(t, counted, size, "bytes counted")

	big := `["e","` + strings.Repeat("y", 4000) + `"]`
	for i := 0; i < 100; i++ {
		testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", []byte(big), nil), adapter.BroadcastOptions{}))
	}
	n, size = logBytes(t, c, a.rec)
	testkit.True(t, size <= 32<<10 && n >= 7, "after 100 broadcasts of 4 kB: %d entries, %d bytes (byte bound 32 KiB)", n, size)
	counted, err = c.Get(context.Background(), a.rec.logBytesKey).Int64()
	testkit.NoError(t, err)
	testkit.Equal(t, counted, size, "bytes counted")
}

// TestRecoveryLogWindow: entries older than the window go, except the
// newest, whose offset the clients hold.
func TestRecoveryLogWindow(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	a, c := newRecoveryAdapter(t, url, adapter.RecoveryOptions{
		MaxDisconnectionDuration: 200 * time.Millisecond, MaxPackets: 1000, MaxPacketBytes: 1 << 20,
		MaxSessions: 10, MaxSessionBytes: 1 << 20})
	for i := 0; i < 5; i++ {
		testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", []byte(`["e"]`), nil), adapter.BroadcastOptions{}))
	}
	time.Sleep(300 * time.Millisecond)
	testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", []byte(`["e"]`), nil), adapter.BroadcastOptions{}))
	n, _ := logBytes(t, c, a.rec)
	testkit.Equal(t, n, int64(1), "entries after the window")
}

// TestRecoverySessionBounds: sessions of sockets that left, made without
// end (a client that connects and leaves in a loop), stay within
// MaxSessions and MaxSessionBytes in Redis, the soonest to expire going
// first; live sessions are not counted (the connections bound them); a
// session larger than the byte bound is refused.
func TestRecoverySessionBounds(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	a, c := newRecoveryAdapter(t, url, adapter.RecoveryOptions{
		MaxDisconnectionDuration: time.Minute, MaxPackets: 100, MaxPacketBytes: 1 << 20,
		MaxSessions: 20, MaxSessionBytes: 16 << 10})
	ctx := context.Background()
	sess := func(i, dataBytes int) *adapter.Session {
		data := []byte(`"` + strings.Repeat("d", dataBytes) + `"`)
		return &adapter.Session{SID: fmt.Sprint("sid", i), PID: fmt.Sprint("pid", i), Rooms: []string{fmt.Sprint("sid", i)},
			DataJSON: data, DataBytes: int64(len(data)), Version: 1}
	}
	keys := func() int {
		k, err := c.Keys(ctx, a.rec.sessPrefix+"*").Result()
		testkit.NoError(t, err)
		return len(k)
	}
	// 30 live sessions: all kept.
	for i := 0; i < 30; i++ {
		testkit.NoError(t, a.SaveSession(ctx, sess(i, 10)))
	}
	testkit.Equal(t, keys(), 30, "live sessions are not bounded by MaxSessions")
	// 100 sessions of sockets that left (persisted in order, queued).
	for i := 100; i < 200; i++ {
		s := sess(i, 10)
		s.Version = 2
		a.PersistSession(s)
	}
	eventually(t, "the last persisted session is stored", func() bool {
		return c.Exists(ctx, a.rec.sessPrefix+"pid199").Val() == 1
	})
	testkit.Equal(t, keys(), 30+20, "session keys: 30 live and 20 that left (count bound)")
	testkit.Equal(t, c.Exists(ctx, a.rec.sessPrefix+"pid100").Val(), int64(0), "oldest session that left is gone")
	testkit.Equal(t, c.Exists(ctx, a.rec.sessPrefix+"pid0").Val(), int64(1), "live sessions stay")

	for i := 200; i < 240; i++ {
		a.PersistSession(sess(i, 1000))
	}
	eventually(t, "the last large session is stored", func() bool {
		return c.Exists(ctx, a.rec.sessPrefix+"pid239").Val() == 1
	})
	total, err := c.Get(ctx, a.rec.sessBytesKey).Int64()
	testkit.NoError(t, err)
	testkit.True(t, total <= 16<<10, "session bytes %d over the bound", total)
	testkit.True(t, keys() <= 30+16, "%d session keys: 1 kB sessions under a 16 KiB bound, plus the live ones", keys())

	err = a.SaveSession(ctx, sess(300, 20<<10))
	testkit.True(t, err != nil, "a session larger than MaxSessionBytes is refused")
}

// TestRecoveryCostPerBroadcast reports what a logged broadcast costs in
// Redis (memory per entry of the log), for the README.
func TestRecoveryCostPerBroadcast(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	a, c := newRecoveryAdapter(t, url, adapter.RecoveryOptions{
		MaxDisconnectionDuration: time.Minute, MaxPackets: 10000, MaxPacketBytes: 32 << 20,
		MaxSessions: 10, MaxSessionBytes: 1 << 20})
	payload := `["msg","` + strings.Repeat("p", 64) + `"]`
	const n = 2000
	start := time.Now()
	for i := 0; i < n; i++ {
		testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", []byte(payload), nil), adapter.BroadcastOptions{Rooms: []string{"room"}}))
	}
	d := time.Since(start)
	mem, err := c.MemoryUsage(context.Background(), a.rec.logKey).Result()
	testkit.NoError(t, err)
	_, size := logBytes(t, c, a.rec)
	t.Logf("logged broadcast of a 64-byte payload: message %d bytes, Redis memory %d bytes per log entry, %v per serial broadcast (round trip through Redis and back)",
		size/n, mem/n, d/n)
}

// TestRecoveryRestoreReadsAgain: a session that changes between its read
// and its take (its former node persisting it as it shuts down, while the
// client is already on this one) is read again and restored — with its
// newest state.
func TestRecoveryRestoreReadsAgain(t *testing.T) {
	url := testkit.StartRedis(t)
	a, c := newRecoveryAdapter(t, url, adapter.RecoveryOptions{
		MaxDisconnectionDuration: time.Minute, MaxPackets: 100, MaxPacketBytes: 1 << 20,
		MaxSessions: 10, MaxSessionBytes: 1 << 20})
	ctx := context.Background()
	testkit.NoError(t, a.Broadcast(adapter.NewPacket("/", []byte(`["e"]`), nil), adapter.BroadcastOptions{}))
	msgs, err := c.XRange(ctx, a.rec.logKey, "-", "+").Result()
	testkit.NoError(t, err)
	offset := msgs[len(msgs)-1].ID
	sess := &adapter.Session{SID: "sid1", PID: "pid1", Rooms: []string{"sid1", "r1"}, DataJSON: []byte(`{"v":1}`), Version: 1}
	testkit.NoError(t, a.SaveSession(ctx, sess))

	changes := 0
	afterRestoreRead = func(pid string) {
		if changes < 2 { // the old node persists twice, with new rooms
			changes++
			next := *sess
			next.Version = uint64(1 + changes)
			next.Rooms = []string{"sid1", fmt.Sprint("r", 1+changes)}
			keys, args := a.rec.saveArgs(&next, mustState(t, a.rec, &next), false)
			testkit.NoError(t, c.Eval(ctx, saveScriptSrc, keys, args...).Err())
		}
	}
	t.Cleanup(func() { afterRestoreRead = nil })
	attached := 0
	var got *adapter.Session
	restored, ok := a.RestoreSession(ctx, "pid1", offset, func(s *adapter.Session) adapter.Socket {
		attached++
		got = s
		return newFakeSocket(s.SID)
	})
	testkit.True(t, ok, "restored after the session changed twice under it")
	testkit.Equal(t, attached, 3, "attach calls (one per read)")
	testkit.Equal(t, strings.Join(got.Rooms, ","), "sid1,r3", "the newest state")
	testkit.Equal(t, len(restored.Missed), 0, "nothing missed")
	testkit.Equal(t, strings.Join(a.SocketRooms("sid1"), ","), "r3,sid1", "rooms joined once, the newest")
}

func mustState(t *testing.T, r *recovery, s *adapter.Session) []byte {
	t.Helper()
	b, err := r.state(s)
	testkit.NoError(t, err)
	return b
}
