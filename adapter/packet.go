package adapter

import (
	"encoding/json"
	"sync"

	"github.com/ioswarm/ioswarm/engineio"
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

	once sync.Once
	msgs []*engineio.Message

	pace pacer // pace.go
}

// NewPacket returns a packet of an EVENT for namespace nsp.
func NewPacket(nsp string, data json.RawMessage, attachments [][]byte) *Packet {
	return &Packet{Nsp: nsp, Data: data, Attachments: attachments}
}

// Messages returns the packet's Engine.IO messages: the text header, then
// one binary message per attachment. The result is shared and must not be
// modified.
func (p *Packet) Messages() []*engineio.Message {
	p.once.Do(func() {
		pkt := parser.Packet{
			Type:        parser.Event,
			Nsp:         p.Nsp,
			ID:          p.ID,
			HasID:       p.HasID,
			Data:        p.Data,
			Attachments: p.Attachments,
		}
		msgs := make([]*engineio.Message, 0, 1+len(p.Attachments))
		msgs = append(msgs, engineio.NewMessage(parser.AppendEncode(nil, &pkt), false))
		for _, a := range p.Attachments {
			msgs = append(msgs, engineio.NewMessage(a, true))
		}
		p.msgs = msgs
	})
	return p.msgs
}

// Args splits the packet's data into the event name and raw arguments, for
// outgoing listeners. It decodes on every call; call it only when needed.
func (p *Packet) Args() (event string, args []parser.Raw, err error) {
	raws, err := parser.NewRawArgs(p.Data, p.Attachments)
	if err != nil || len(raws) == 0 {
		return "", nil, err
	}
	if err := json.Unmarshal(raws[0].JSON, &event); err != nil {
		return "", nil, err
	}
	return event, raws[1:], nil
}
