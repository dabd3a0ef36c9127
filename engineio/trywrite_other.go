//go:build !unix

package engineio

import "net"

// tryWrite writes nothing without a non-blocking write at hand: the caller
// then writes after giving its slot back.
func tryWrite(net.Conn, []byte) (int, error) { return 0, nil }
