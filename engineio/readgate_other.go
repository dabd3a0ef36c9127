//go:build !unix

package engineio

// readReady reads the socket into a pooled buffer.
func (g *readGate) readReady() (*[]byte, int, error) { return readPooled(g.conn) }
