// Package testkit holds the helpers shared by ioswarm's tests.
//
// # Overview
//
//   - NodeClientDriver runs integration/node/client-driver.js, a long-lived Node.js program
//     that drives the official socket.io-client, and gives Go tests a typed API over it:
//     Connect, Client.Emit, Client.EmitWithAck, Client.Next, Client.WaitConnect, …
//     Binary values are []byte on the Go side and Buffers on the Node side.
//   - StartProcess starts a server program and waits for its "listening on ADDR" line;
//     BuildTestapp builds integration/testapp (in the integration module) once per test
//     binary.
//   - FreePort and FreeAddr pick free loopback ports.
//   - Equal, NoError and friends are a tiny assert set (no testify).
//   - CheckGoroutines fails a test that leaks goroutines.
//
// # Concurrency
//
// A NodeClientDriver and its Clients are safe for concurrent use. Every call that waits takes
// a context; events are buffered per client, so an event that arrived before the wait is not
// lost. The driver process and its reader goroutine end at t.Cleanup.
//
// # Compatibility
//
// The Node.js helpers need node (20 or later) and the packages installed by
// `npm ci` in integration/node; tests that need them are skipped with a message when
// they are missing.
package testkit
