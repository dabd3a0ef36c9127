//go:build race

package jsonscan

// The race detector's instrumentation enlarges every frame: the recursion
// no longer fits in 8 KiB, but a stack that grew once still shows that the
// depth of the value does not count.
const maxDeepStack = 24 << 10
