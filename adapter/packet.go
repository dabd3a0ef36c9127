package adapter

import (
	"encoding/json"
	"sync"

	"github.com/ioswarm/ioswarm/parser"
)

// Packet is a Socket.IO EVENT on its way to many sockets. It is encoded at
// most once, the first time a recipient needs it, and every recipient
// writes the same Engine.IO messages.
//
// A Packet must not be modified once handed to an adapter, except that
// BroadcastWithAck sets the ack id before the first delivery.
type Packet struct {
	// Nsp is the namespace name.
	Nsp string
	// Data is the JSON array [event, ...args], whose binary placeholders
	// refer to Attachments.
	Data json.RawMessage
	// Attachments are the binary parts, in placeholder order.
	Attachments [][]byte
	// ID is the ack id, valid when HasID.
	ID    uint64
	HasID bool
	// Seq is the packet's place in the recovery log of the adapter that
	// logged it — higher is newer, in the order of the offsets — and 0
	// when it is not logged (see Recoverer).
	Seq uint64

	once sync.Once
	enc  any // Encoded

	outOnce sync.Once
	event   string
	args    []parser.Raw
	argsErr error

	pace pacer // pace.go
}

// NewPacket returns a packet of an EVENT for namespace nsp.
func NewPacket(nsp string, data json.RawMessage, attachments [][]byte) *Packet {
	return &Packet{Nsp: nsp, Data: data, Attachments: attachments}
}

// Encoded returns what encode makes of the packet, made once — by the
// first recipient on this node — and shared by every other: the server
// keeps the packet's transport frames there, so that a broadcast is encoded
// once however many sockets it reaches. Every caller must pass the same
// encode (the server's); the result must not be modified.
func (p *Packet) Encoded(encode func(*Packet) any) any {
	p.once.Do(func() { p.enc = encode(p) })
	return p.enc
}

// Args splits the packet's data into the event name and raw arguments,
// for outgoing listeners. It decodes once, the first time it is called;
// the result is shared and must not be modified.
func (p *Packet) Args() (event string, args []parser.Raw, err error) {
	p.outOnce.Do(func() {
		raws, err := parser.NewRawArgs(p.Data, p.Attachments)
		if err != nil || len(raws) == 0 {
			p.argsErr = err
			return
		}
		if err := json.Unmarshal(raws[0].JSON, &p.event); err != nil {
			p.argsErr = err
			return
		}
		p.args = raws[1:]
	})
	return p.event, p.args, p.argsErr
}
