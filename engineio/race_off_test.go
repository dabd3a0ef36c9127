//go:build !race

package engineio

const raceOn = false
