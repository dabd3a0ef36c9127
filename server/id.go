package server

import (
	"crypto/rand"
	"encoding/base64"
)

// newID returns a 20-character id of [A-Za-z0-9_-]: 15 random bytes in
// URL-safe base64, the shape of Node's ids (Redis sharded adapters rely on
// socket ids being exactly 20 characters long).
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}
