package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// newID returns a session id: the unpadded base64url form of 15 random
// bytes, always 20 characters of A-Za-z0-9-_.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24 crashes instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newConn returns a connection that is not yet registered nor accepted.
func (s *Server) newConn(r *http.Request) *Conn {
	return &Conn{
		srv: s,
		id:  newID(),
		req: saveRequest(r),
	}
}

// openPacket returns the open packet, with Node's keys in Node's order.
func (s *Server) openPacket(sid string, upgrades bool) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `0{"sid":"`...)
	b = append(b, sid...)
	if upgrades {
		b = append(b, `","upgrades":["websocket"],"pingInterval":`...)
	} else {
		b = append(b, `","upgrades":[],"pingInterval":`...)
	}
	b = strconv.AppendInt(b, int64(s.cfg.PingInterval/time.Millisecond), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, int64(s.cfg.PingTimeout/time.Millisecond), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, s.cfg.MaxPayload, 10)
	return append(b, '}')
}

// cookie returns the session cookie for sid, or nil if none is configured.
func (s *Server) cookie(sid string) *http.Cookie {
	if s.cfg.Cookie == nil {
		return nil
	}
	ck := *s.cfg.Cookie
	ck.Value = sid
	return &ck
}

// handshakePolling opens a polling session: the response body is the open
// packet (followed by a close packet if accept closed the session at once).
func (s *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	c := s.newConn(r)
	c.runAccept(s.accept)
	if !s.register(c) {
		c.closeWith(ReasonForcedClose, nil)
		http.Error(w, "engineio: server closed", http.StatusServiceUnavailable)
		return
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.startHeartbeatLocked()
	}
	c.mu.Unlock()
	if closed {
		s.unregister(c) // closed during accept, before it was registered
	}
	s.log.Debug("engineio: session opened", "sid", c.id, "transport", TransportPolling)

	body := s.openPacket(c.id, s.upgrades)
	if closed {
		body = append(body, recordSeparator, typeClose)
	}
	if ck := s.cookie(c.id); ck != nil {
		http.SetCookie(w, ck)
	}
	_ = writePayload(w, body)
}

// handshakeWebSocket opens a WebSocket-first session. The open packet is the
// first frame; "upgrades" is empty.
func (s *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request) {
	c := s.newConn(r)
	var hdr http.Header
	if ck := s.cookie(c.id); ck != nil {
		if v := ck.String(); v != "" {
			hdr = http.Header{"Set-Cookie": {v}}
		}
	}
	ws := s.upgradeConn(w, r, hdr)
	if ws == nil {
		return
	}
	c.queue = append(c.queue, &Message{typ: typeOpen, data: s.openPacket(c.id, false)[1:]})
	c.ws = ws
	c.runAccept(s.accept)
	registered := s.register(c)
	// The writer starts once the Handler is in place and the session is
	// registered, so a client that has the sid can use it. If c is closed
	// by now, the writer flushes and hangs up.
	c.mu.Lock()
	ws.ready = true
	c.scheduleLocked(ws)
	c.mu.Unlock()
	if !registered {
		c.closeWith(ReasonForcedClose, nil)
		return
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.startHeartbeatLocked()
	}
	c.mu.Unlock()
	if closed {
		s.unregister(c)
		return
	}
	s.log.Debug("engineio: session opened", "sid", c.id, "transport", TransportWebSocket)
	s.wg.Add(1)
	go c.readLoop(ws)
}
