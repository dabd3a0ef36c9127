//go:build !linux

package engineio

import "errors"

// idlePoll has no implementation here: every WebSocket keeps its reader
// goroutine.
type idlePoll struct{}

func newIdlePoll() (*idlePoll, error) { return nil, errors.ErrUnsupported }

func (*idlePoll) run()             {}
func (*idlePoll) arm(*wsConn) bool { return false }
func (*idlePoll) forget(*wsConn)   {}
func (*idlePoll) stop()            {}
