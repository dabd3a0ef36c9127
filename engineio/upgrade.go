package engineio

import (
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// upgradeCheckInterval is how often a parked polling GET is answered with a
// noop while an upgrade is in progress (Node: 100 ms).
const upgradeCheckInterval = 100 * time.Millisecond

// serveUpgrade accepts a WebSocket for an existing session. If the session
// can upgrade, the socket becomes its probe; otherwise (upgrades disabled,
// already upgrading or upgraded) it is closed at once, as Node does.
func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request, c *Conn) {
	ws := s.upgradeConn(w, r, nil)
	if ws == nil {
		return
	}
	c.mu.Lock()
	ok := s.upgrades && !c.closed && c.ws == nil && c.probe == nil
	if ok {
		c.probe = ws
		c.armLocked(&c.upgradeTimer, s.cfg.UpgradeTimeout, (*Conn).onUpgradeTimeout)
		s.wg.Add(1)
	}
	c.mu.Unlock()
	if !ok {
		ws.shutdown()
		return
	}
	go c.upgradeLoop(ws)
}

// upgradeLoop is the reader goroutine of an upgrading WebSocket: it runs the
// probe exchange and, once the switch is done, reads the session's packets.
func (c *Conn) upgradeLoop(w *wsConn) {
	defer c.srv.wg.Done()
	if c.runProbe(w) {
		c.readPackets(w)
	}
}

// runProbe answers "2probe" with "3probe" until "5" completes the upgrade
// (true). Anything else, a read error or the upgrade being cancelled
// aborts it (false): the socket is closed, the session stays on polling.
func (c *Conn) runProbe(w *wsConn) bool {
	for {
		mt, data, err := w.readMessage(c.srv.cfg.MaxPayload)
		if err != nil {
			c.abortUpgrade(w)
			return false
		}
		var p packet
		if mt == websocket.TextMessage {
			p, err = decodePacket(data)
		}
		switch {
		case mt != websocket.TextMessage || err != nil:
		case p.Type == typePing && string(p.Data) == "probe":
			if c.onProbe(w) {
				continue
			}
		case p.Type == typeUpgrade:
			if c.switchTo(w) {
				return true
			}
		}
		c.abortUpgrade(w)
		return false
	}
}

// onProbe answers a probe and starts the noop checks for the polling GET.
// The probe socket has no writer goroutine yet, so its reader writes.
func (c *Conn) onProbe(w *wsConn) bool {
	pm, err := probePacket.prepared()
	if err == nil {
		err = w.ws.WritePreparedMessage(pm)
	}
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.probe != w {
		return false
	}
	c.noopCheckLocked()
	c.armLocked(&c.checkTimer, upgradeCheckInterval, (*Conn).onUpgradeCheck)
	return true
}

// noopCheckLocked answers a parked polling GET with a noop, so that the
// client's pending poll returns and it can send "5".
func (c *Conn) noopCheckLocked() {
	if c.getPending && (len(c.queue) == 0 || c.queue[len(c.queue)-1] != noopPacket) {
		c.pushLocked(noopPacket)
	}
}

// onUpgradeCheck runs every upgradeCheckInterval while upgrading.
func (c *Conn) onUpgradeCheck(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.firedLocked(&c.checkTimer, gen) || c.probe == nil {
		return
	}
	c.noopCheckLocked()
	c.armLocked(&c.checkTimer, upgradeCheckInterval, (*Conn).onUpgradeCheck)
}

// onUpgradeTimeout closes a probe that did not complete in time.
func (c *Conn) onUpgradeTimeout(gen uint64) {
	c.mu.Lock()
	if !c.firedLocked(&c.upgradeTimer, gen) || c.probe == nil {
		c.mu.Unlock()
		return
	}
	w := c.probe
	c.probe = nil
	t := c.checkTimer.detach()
	c.mu.Unlock()
	stopTimer(c.srv, t)
	c.srv.log.Debug("engineio: upgrade timed out", "sid", c.id)
	w.closeSocket()
}

// switchTo makes w the session's transport. From now on its writer drains
// the same queue, so nothing queued before or during the switch is lost or
// reordered; a parked polling GET is answered with a noop.
func (c *Conn) switchTo(w *wsConn) bool {
	c.mu.Lock()
	if c.closed || c.probe != w {
		c.mu.Unlock()
		return false
	}
	c.probe = nil
	t1, t2 := c.upgradeTimer.detach(), c.checkTimer.detach()
	c.ws = w
	if c.getPending {
		notify(c.pollWake)
	}
	w.ready = true
	if len(c.queue) > 0 {
		c.scheduleLocked(w)
	}
	c.mu.Unlock()
	stopTimer(c.srv, t1)
	stopTimer(c.srv, t2)
	c.srv.log.Debug("engineio: session upgraded", "sid", c.id)
	return true
}

// abortUpgrade cancels the upgrade to w, if it is still in progress, and
// closes w. The session continues on polling.
func (c *Conn) abortUpgrade(w *wsConn) {
	c.mu.Lock()
	var t1, t2 *time.Timer
	if c.probe == w {
		c.probe = nil
		t1, t2 = c.upgradeTimer.detach(), c.checkTimer.detach()
	}
	c.mu.Unlock()
	stopTimer(c.srv, t1)
	stopTimer(c.srv, t2)
	w.shutdown()
}
