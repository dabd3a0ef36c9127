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
// it shares that manager's connection, and only opts.Auth is used.
func Dial(ctx context.Context, rawURL string, opts Options) (*Socket, error) {
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
	return m.Socket(ctx, u.Path, opts.Auth)
}
