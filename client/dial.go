package client

import (
	"context"
	"fmt"
	"net/url"
)

// Dial connects to the namespace named by rawURL's path ("/" when it has
// none: "http://host:3000/admin" is namespace "/admin" of the server at
// host:3000, as with the JS client's io()), and returns once the server
// accepted the connection. It fails with the server's refusal (a
// *ConnectError with the message and data of its middleware), the error of
// the first Engine.IO connection attempt (Dial does not retry it: the
// reconnection options apply once connected), or ctx's error.
//
// The socket gets a Manager of its own unless opts.Manager is set; then
// it shares that manager's connection, and only opts.Auth is used. Events
// the server sends right at connection may arrive before Dial returns, so
// before listeners can be added: use NewSocket and Connect to see them.
func Dial(ctx context.Context, rawURL string, opts Options) (*Socket, error) {
	s, err := NewSocket(rawURL, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// NewSocket is Dial without connecting: it returns the socket for the
// namespace named by rawURL's path, on its own Manager unless opts.Manager
// is set. Add its listeners, then Connect (see Manager.NewSocket).
func NewSocket(rawURL string, opts Options) (*Socket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	m := opts.Manager
	if m == nil {
		if m, err = NewManager(rawURL, opts); err != nil {
			return nil, err
		}
	}
	return m.NewSocket(u.Path, opts.Auth)
}
