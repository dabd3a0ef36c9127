package client

import (
	"strings"
	"testing"
)

// FuzzIncoming feeds arbitrary messages from the server to a connected
// socket: nothing may panic, and the socket must still close cleanly. The
// input is a list of messages separated by NUL bytes; one starting with
// \x01 is binary.
func FuzzIncoming(f *testing.F) {
	for _, seed := range []string{
		`2["a",1]`,
		`212["q"]`,
		"51-[\"b\",{\"_placeholder\":true,\"num\":0}]\x00\x01xyz",
		`30["x"]`,
		"61-0[{\"_placeholder\":true,\"num\":0}]\x00\x01\x00",
		`0{"sid":"again"}`,
		`4{"message":"late"}`,
		`1`,
		`2/other,["x"]`,
		"2[\"a\"]\x002[\"b\"]\x00junk",
		"\x01stray binary",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, fs := newFakeManager(t, Options{})
		s, c := connect(t, m, fs, "/", nil, "0", `0{"sid":"a","pid":"p"}`)
		s.OnAny(func(ev *Event) {
			_, _ = ev.Args.Values()
			_ = ev.Ack(ev.Args.Any()...)
		})
		go func() {
			// Acks to answer: the client's own emits, never resolved.
			_ = s.EmitWithAckFunc("x", func(Args, error) {})
		}()
		for _, msg := range strings.Split(in, "\x00") {
			select {
			case <-c.done():
				return
			default:
			}
			if strings.HasPrefix(msg, "\x01") {
				c.deliverBinary([]byte(msg[1:]))
			} else {
				c.deliver(msg)
			}
		}
		_ = s.Close()
	})
}
