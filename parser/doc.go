// Package parser encodes and decodes Socket.IO protocol v5 packets (the
// protocol of Socket.IO 3 and 4, carried by Engine.IO v4) and the
// application values they carry.
//
// # Overview
//
// A Packet is one Socket.IO packet. AppendEncode writes its text form, the
// content of one Engine.IO message; the binary attachments of a
// BINARY_EVENT or BINARY_ACK packet follow as separate binary messages. A
// Decoder turns the incoming sequence of messages back into packets,
// reassembling binary packets with their attachments; Decode parses a text
// packet alone.
//
// Event and acknowledgement arguments are JSON arrays. AppendValues builds
// one from Go values, replacing every []byte it finds by a placeholder and
// collecting the bytes as attachments, and writes JSON exactly as
// JavaScript's JSON.stringify would. On the way in, NewRawArgs splits a
// received array into Raw values, which keep the JSON text and the
// attachments their placeholders name; Raw.Decode and Raw.Value convert
// them into Go values, and AppendValues writes them out again unchanged (with
// placeholders renumbered), which makes forwarding cheap.
//
// The package does no I/O and starts no goroutines.
//
// # Grammar
//
// The text form of a packet, as the reference implementation writes it and
// as Decode accepts it:
//
//	packet      = type [count "-"] [nsp ("," / end)] [id] [payload]
//	type        = "0" / "1" / "2" / "3" / "4" / "5" / "6"
//	count       = 1*DIGIT    ; types 5 and 6 only, at most the configured maximum (10)
//	nsp         = "/" *(any byte but ",")   ; "/" when absent
//	id          = 1*DIGIT    ; the ack id, at most 2^64-1
//	payload     = JSON value, optionally surrounded by whitespace
//
// The namespace ends at the first ',' or at the end of the text, so
// "0/admin" and "0/admin," both connect to "/admin"; the encoder writes the
// namespace only when it is not "/", always followed by ','. The payload
// rules per type are:
//
//	0 CONNECT        object, or none
//	1 DISCONNECT     none
//	2 EVENT          non-empty array whose first element is a number, or a string
//	5 BINARY_EVENT   that is not a reserved event name (see IsReservedEvent)
//	3 ACK            array
//	6 BINARY_ACK     array
//	4 CONNECT_ERROR  string or object, or none
//
// In a BINARY_EVENT or BINARY_ACK payload, an object whose own
// "_placeholder" member is true stands for the attachment numbered by its
// "num" member, which must be an integer below the announced count; such
// objects are written {"_placeholder":true,"num":N}. Placeholders are
// replaced as a whole: placeholders nested inside one are ignored. In other
// packet types these objects are ordinary data.
//
// Examples:
//
//	0                                           CONNECT to "/"
//	0/admin,{"token":"123"}                     CONNECT to "/admin" with auth
//	2/admin,13["x"]                             EVENT "x" on "/admin" with ack id 13
//	312[]                                       ACK 12 without arguments
//	51-["baz",{"_placeholder":true,"num":0}]    BINARY_EVENT, one attachment follows
//
// # Concurrency
//
// A Decoder holds the state of one connection and is not safe for
// concurrent use. Everything else (the functions, and the methods of Type
// and Raw) is safe for concurrent use, as long as the arguments are not
// modified concurrently.
//
// # Ownership
//
// Decoded packets alias the messages they were decoded from (Data, and each
// attachment, are the caller's slices); callers hand these over and must not
// modify them afterwards. AppendValues does not copy []byte values either:
// they become attachments as they are, and must not be modified until sent.
//
// # Compatibility
//
// The encoder output was checked byte for byte against the npm
// socket.io-parser 4.2.4 (see testdata/golden.json and
// integration/node/gen-parser-golden.js), and the decoder against its
// decodeString on valid and malformed input. Decode is stricter than the
// reference on input no Socket.IO implementation produces, where the
// reference relies on JavaScript's loose number conversion:
//
//   - an empty or whitespace-only packet is an error (the reference reads a
//     CONNECT);
//   - whitespace before the payload is not an ack id (the reference reads
//     "2 [...]" as ack id 0); it is skipped, as JSON allows;
//   - the attachment count must be plain digits ("5-[...]" is an error, the
//     reference reads a count of 0), and more than the maximum is
//     ErrTooManyAttachments (socket.io-parser 4.2.4 has no limit; later
//     versions default to 10, as here);
//   - ack ids must fit in a uint64 (the reference rounds them to a float64);
//   - EVENT, ACK and the binary types require a payload (the reference
//     accepts "2" and dispatches an event without a name);
//   - placeholders are checked as soon as the header arrives, and a
//     fractional index such as 0.5 is an error (the reference would yield
//     undefined);
//   - arrays and objects may nest at most 10000 levels, like encoding/json.
//
// Decoded packets keep their wire type: a binary event arrives as
// BinaryEvent (even with zero attachments), so servers should treat Event
// and BinaryEvent (and Ack and BinaryAck) alike. AppendEncode, conversely,
// writes an Event or Ack with attachments as its binary form.
//
// AppendValues writes numbers as JavaScript does: -0 as 0, NaN and ±Inf as
// null. Go maps are written with sorted keys (JavaScript keeps insertion
// order; Raw values keep the order they were received in).
package parser
