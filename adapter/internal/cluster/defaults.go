package cluster

import (
	"log/slog"
	"time"
)

// SetDefaults gives the settings every Redis adapter shares their
// defaults where they are zero (or negative): Node's fixed 5 s for the
// requests, 4096 messages and 32 MiB in the publish queue, 4 MiB for one
// message, slog.Default().
func SetDefaults(requestsTimeout *time.Duration, maxPending *int, maxPendingBytes *int64, maxMessageBytes *int, logger **slog.Logger) {
	if *requestsTimeout <= 0 {
		*requestsTimeout = 5 * time.Second
	}
	if *maxPending <= 0 {
		*maxPending = 4096
	}
	if *maxPendingBytes <= 0 {
		*maxPendingBytes = 32 << 20
	}
	if *maxMessageBytes <= 0 {
		*maxMessageBytes = 4 << 20
	}
	if *logger == nil {
		*logger = slog.Default()
	}
}
