package client

import (
	"context"
)

// dialEngine opens a real Engine.IO connection (client/internal/engine).
var dialEngine dialFunc = func(ctx context.Context, base string, opts *Options, onMessage func([]byte, bool)) (conn, error) {
	return nil, errNoEngine
}
