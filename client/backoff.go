package client

import (
	"math"
	"time"
)

// backoff computes reconnection delays as the JS client's Backoff does:
// min·2^attempt, moved up or down (a coin toss) by a random fraction of
// itself up to jitter, and capped at max.
type backoff struct {
	min, max time.Duration
	jitter   float64
	attempts int
}

// duration returns the next delay and counts an attempt; rnd is a number
// in [0, 1) (math/rand/v2's Float64), a parameter so that tests can fix it.
func (b *backoff) duration(rnd float64) time.Duration {
	ms := float64(b.min) * math.Pow(2, float64(b.attempts))
	b.attempts++
	if b.jitter > 0 {
		deviation := math.Floor(rnd * b.jitter * ms)
		// The JS client tosses its coin on the same random number:
		// (Math.floor(rand * 10) & 1) == 0 subtracts.
		if int(math.Floor(rnd*10))&1 == 0 {
			ms -= deviation
		} else {
			ms += deviation
		}
	}
	if ms > float64(b.max) || math.IsInf(ms, 1) || math.IsNaN(ms) {
		return b.max
	}
	return time.Duration(ms)
}

// reset starts over after a successful connection.
func (b *backoff) reset() { b.attempts = 0 }
