//go:build race

package engineio

// raceOn is set when the race detector runs: sync.Pool then drops some of
// what it is given, on purpose.
const raceOn = true
