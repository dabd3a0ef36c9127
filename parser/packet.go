package parser

import (
	"encoding/json"
	"strconv"
)

// Type is a Socket.IO packet type, written on the wire as one decimal digit.
type Type byte

// Packet types of Socket.IO protocol v5.
const (
	Connect      Type = iota // 0: connect to a namespace / connect reply
	Disconnect               // 1: leave a namespace
	Event                    // 2: event with JSON arguments
	Ack                      // 3: acknowledgement with JSON arguments
	ConnectError             // 4: namespace connection refused
	BinaryEvent              // 5: event whose arguments contain binary attachments
	BinaryAck                // 6: acknowledgement whose arguments contain binary attachments
)

// DefaultMaxAttachments is the attachment limit used when Decoder.MaxAttachments
// (or the maxAttachments argument of Decode) is zero or negative. It matches the
// reference implementation's default.
const DefaultMaxAttachments = 10

var typeNames = [...]string{
	Connect:      "CONNECT",
	Disconnect:   "DISCONNECT",
	Event:        "EVENT",
	Ack:          "ACK",
	ConnectError: "CONNECT_ERROR",
	BinaryEvent:  "BINARY_EVENT",
	BinaryAck:    "BINARY_ACK",
}

// String returns the reference name of t, such as "BINARY_EVENT", or
// "Type(N)" for values outside the protocol.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Packet is one Socket.IO packet.
//
// For EVENT, ACK and their binary forms, Data is a JSON array; in the binary
// forms the objects {"_placeholder":true,"num":N} inside it stand for
// Attachments[N]. Use NewRawArgs to split it into arguments.
type Packet struct {
	Type Type
	// Nsp is the namespace; "/" when absent on the wire.
	Nsp string
	// ID is the acknowledgement id; it is meaningful only when HasID is set.
	ID    uint64
	HasID bool
	// Data is the JSON payload, nil when the packet has none. Decoded packets
	// carry it without surrounding whitespace; AppendEncode writes it verbatim.
	Data json.RawMessage
	// Attachments are the binary attachments of BINARY_EVENT and BINARY_ACK
	// packets, in placeholder order.
	Attachments [][]byte
}

// IsReservedEvent reports whether name is one of the event names that Socket.IO
// reserves and that a peer may not send: connect, connect_error, disconnect,
// disconnecting, newListener and removeListener.
func IsReservedEvent(name string) bool {
	switch name {
	case "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener":
		return true
	}
	return false
}
