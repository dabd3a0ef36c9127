package engineio

import "time"

// idleAfter is how long a WebSocket reader waits for the next message
// before it hands the socket to the idle poller and ends: a connection
// that sends nothing (most of them, most of the time: a pong every
// PingInterval) then holds no goroutine and no read buffer, only its state.
// A connection that is busy keeps its reader, so that a message costs no
// more than a read.
const idleAfter = 250 * time.Millisecond

// parkable is a WebSocket the idle poller can watch: its socket exposes a
// file descriptor (a TLS connection does not, nor does any other wrapper;
// those keep a reader goroutine).
type parkable struct {
	key   uint32 // the poller's name for it, 0 until first parked
	state parkState
	ready func() // resumes reading, on the poller's goroutine
}

type parkState uint8

const (
	parkNone       parkState = iota // never registered with the poller
	parkRegistered                  // in the poller's set, disarmed
	parkArmed                       // in the poller's set, waiting for bytes
	parkClosed                      // the socket is closing: never again
)

// readIdle is the reader's turn at a message boundary: if nothing comes
// within idleAfter, the socket is handed to the idle poller, which starts
// a new reader when bytes arrive; then it returns false and the reader
// ends. It returns true when reading goes on here: bytes came, the socket
// failed, or it cannot be parked.
func (c *Conn) readIdle(w *wsConn) bool {
	if w.nc.gate.waitData(idleAfter) {
		return true
	}
	if w.park.ready == nil {
		w.park.ready = func() {
			// On the poller's goroutine, which is counted (LOCKING.md).
			c.srv.wg.Add(1)
			go c.resumeRead(w)
		}
	}
	return !w.idle.arm(w)
}

// resumeRead is a reader started by the idle poller.
func (c *Conn) resumeRead(w *wsConn) {
	defer c.srv.wg.Done()
	c.readPackets(w)
}
