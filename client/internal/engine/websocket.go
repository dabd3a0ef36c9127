package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// wsReadLoop is the reader of a WebSocket session: one packet per frame, a
// binary frame being a binary message.
func (c *Conn) wsReadLoop(ws *websocket.Conn) {
	defer c.wg.Done()
	c.readFrames(ws)
}

func (c *Conn) readFrames(ws *websocket.Conn) {
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			// The JS client reports any end of its WebSocket as
			// "transport close"; a message over our limit is ours to report.
			reason := ReasonTransportClose
			if errors.Is(err, websocket.ErrReadLimit) {
				reason = ReasonTransportError
			}
			c.closeWith(reason, fmt.Errorf("engine: websocket read: %w", err))
			return
		}
		var p eio.Packet
		if mt == websocket.BinaryMessage {
			p = eio.Packet{Type: eio.Message, Binary: true, Data: data}
		} else if p, err = eio.DecodePacket(data); err != nil {
			c.closeWith(ReasonParseError, err)
			return
		}
		if !c.handlePacket(p) {
			return
		}
	}
}

// writeFrames writes one frame per packet, within ctx's deadline if it has
// one, else within pingInterval+pingTimeout: by then the server has given up
// on us anyway.
func (c *Conn) writeFrames(ctx context.Context, ws *websocket.Conn, pkts []packet) error {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.pingInterval + c.pingTimeout)
	}
	if err := ws.SetWriteDeadline(dl); err != nil {
		return err
	}
	for _, p := range pkts {
		if err := writeFrame(ws, p); err != nil {
			return err
		}
	}
	return nil
}

func writeFrame(ws *websocket.Conn, p packet) error {
	mt := websocket.TextMessage
	if p.binary {
		mt = websocket.BinaryMessage
	}
	w, err := ws.NextWriter(mt)
	if err != nil {
		return err
	}
	if !p.binary {
		if _, err := w.Write([]byte{p.typ}); err != nil {
			return err
		}
	}
	if _, err := w.Write(p.data); err != nil {
		return err
	}
	return w.Close()
}
