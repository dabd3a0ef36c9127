//go:build !linux

package engineio

import "errors"

// ring is io_uring's submission queue (uring_linux.go); elsewhere there is
// none, and writers make one write per connection.
type ring struct{}

const ringSize = 64

func newRing() (*ring, error) { return nil, errors.New("engineio: no io_uring") }

func (r *ring) sendAll(fds []int, bufs [][]byte, res []int32) error {
	return errors.New("engineio: no io_uring")
}

func (r *ring) close() {}
