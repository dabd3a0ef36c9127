// Package jsonscan is the JSON tokenizer that knows Socket.IO's binary
// placeholders. It is the only place that defines what a placeholder is.
//
// A binary packet travels as JSON in which each attachment is replaced by
// an object {"_placeholder":true,"num":N}. Two parts of ioswarm have to
// recognise those objects in JSON text: the parser, which validates what a
// client sends and checks that every placeholder names an attachment, and
// the Redis adapter, which transcodes packets to msgpack for other nodes and
// must turn exactly the same objects into binary values. Each used to have
// its own scanner, and the two had already drifted apart (see the rules
// below). With one tokenizer they cannot disagree: a packet the parser
// accepts is transcoded with the same attachments at the same places.
//
// # Placeholder rules
//
// The rules are those of socket.io-parser's reconstructPacket, which is what
// turns placeholders back into Buffers on a Node.js peer:
//
//   - A placeholder is an object whose own "_placeholder" member is the
//     literal true. Keys are compared after unescaping ("_pl\u0061ceholder"
//     counts), and when a key is repeated the last member wins, as with
//     JSON.parse.
//   - Its "num" member names the attachment: a number with a non-negative
//     integral value (0, 7, 1.0, 1e0 and -0 all are, as JSON.parse reads
//     them) is that index; anything else, including a missing num, makes an
//     invalid placeholder (Num -1), which callers reject. Node would accept a
//     fractional num and look up an attachment that does not exist; here
//     that is an error instead. Numbers at or above MaxNum count as MaxNum,
//     which is out of range for any packet.
//   - The contents of a placeholder are not looked at: placeholders nested
//     inside one are neither reported nor checked, as reconstructPacket
//     returns the attachment without descending. (The Redis transcoder used
//     to reject an out-of-range placeholder nested inside a valid one while
//     the parser accepted it; both now follow Node.)
//
// Whether placeholders mean anything at all (they do not in a packet
// without attachments) is up to the caller, which asks for them with
// Scanner.FindPlaceholders.
//
// # Depth
//
// Nesting is client input. Values are accepted up to MaxDepth levels, like
// encoding/json, and a value nested that deep must not cost megabytes of
// goroutine stack: the scanner recurses only for the first few levels,
// where recursion is fastest, and walks deeper levels with explicit stacks
// on the heap, in proportion to the input.
package jsonscan
