//go:build !race

package jsonscan

// maxDeepStack is what a goroutine may hold after scanning a value nested
// MaxDepth deep: recursionLimit levels of recursion and deep's frame fit in
// the 8 KiB a goroutine starts with (a stack that grew would be 16 KiB; the
// rest is measurement noise), where a recursion all the way down needed
// about 2 MiB.
const maxDeepStack = 12 << 10
