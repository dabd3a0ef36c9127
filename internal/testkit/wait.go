package testkit

import (
	"context"
	"testing"
	"time"
)

// Ctx returns a context for one step of a test: it ends after 15 s, or at
// the test's cleanup.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Eventually checks cond every 10 ms until it holds, and fails the test
// when it still does not after 5 s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MustConnect connects a client with o and waits for its CONNECT, failing
// the test on an error; it returns the client and its socket id.
func MustConnect(t testing.TB, d *NodeClientDriver, o ConnectOptions) (*Client, string) {
	t.Helper()
	c, err := d.Connect(Ctx(t), o)
	NoError(t, err)
	id, err := c.WaitConnect(Ctx(t))
	NoError(t, err)
	return c, id
}
