package engineio

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"
)

var payloadPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// writePayload writes a 200 polling response.
func writePayload(w http.ResponseWriter, body []byte) error {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

// servePoll serves a polling GET. The request goroutine is the polling
// writer: it parks until packets are queued (or the session closes, or the
// upgrade completes) and answers with all of them in one payload.
func (c *Conn) servePoll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c.mu.Lock()
	if c.closed {
		if c.lingering {
			c.serveLastPoll(w) // unlocks
			return
		}
		c.mu.Unlock()
		writeError(w, codeUnknownSID, "", false)
		return
	}
	if c.getActive {
		// Node: the newcomer gets 400, the parked GET a close packet.
		c.mu.Unlock()
		writeStatus(w, http.StatusBadRequest)
		c.closeWith(ReasonTransportError, errPollOverlap)
		return
	}
	c.getActive = true
	var batch []*Message
	var last *Message // trailing control packet
	for {
		if c.closed && c.lingering {
			c.getActive = false
			c.serveLastPoll(w) // unlocks
			return
		}
		if c.closed {
			// The close packet goes alone, as Node's: what is still queued
			// is dropped (a session closed by the application lingers
			// instead, above, and gets it first). socket.io-client handles
			// an Engine.IO close at once but the Socket.IO packets before
			// it in the payload on the next tick: it would keep them past
			// "transport close", emit them after its next CONNECT, and a
			// recovering client, whose offset they did not move, would get
			// them again in what its recovery replays.
			last = closePacket
			if c.reason == ReasonTransportClose {
				last = noopPacket
			}
			break
		}
		if c.ws != nil {
			last = noopPacket // upgraded: the queue now belongs to the WebSocket
			break
		}
		if len(c.queue) > 0 {
			batch = c.takeLocked()
			break
		}
		if c.pollWake == nil {
			c.pollWake = make(chan struct{}, 1)
		}
		wake, done := c.pollWake, c.doneLocked()
		c.getPending = true
		c.mu.Unlock()
		select {
		case <-wake:
		case <-done:
		case <-ctx.Done():
		}
		c.mu.Lock()
		c.getPending = false
		if ctx.Err() != nil && !c.closed {
			// The client went away while its GET was held (Node closes the
			// session: "poll connection closed prematurely").
			c.getActive = false
			c.mu.Unlock()
			c.closeWith(ReasonTransportError, errPollAborted)
			return
		}
	}
	c.mu.Unlock()

	bp := payloadPool.Get().(*[]byte)
	body := appendPayload((*bp)[:0], batch)
	if last != nil {
		if len(batch) > 0 {
			body = append(body, recordSeparator)
		}
		body = last.appendPolling(body)
	}
	// The GET is over before its answer leaves: writePoll flushes, and the
	// client may send its next GET the moment it reads the answer, which
	// must not find this one still active (an overlap closes the session).
	c.mu.Lock()
	c.getActive = false
	if batch != nil {
		c.recycleLocked(batch)
	}
	c.mu.Unlock()

	err := c.writePoll(w, body)
	if cap(body) <= 64<<10 {
		*bp = body[:0]
		payloadPool.Put(bp)
	}
	if err != nil {
		c.closeWith(ReasonTransportError, fmt.Errorf("%w: %w", errPollWrite, err))
	}
}

// servePost serves a polling POST: the body is a payload of packets from
// the client, processed in order; the answer is "ok".
func (c *Conn) servePost(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		writeError(w, codeUnknownSID, "", false)
		return
	}
	if c.postActive {
		c.mu.Unlock()
		writeStatus(w, http.StatusBadRequest)
		c.closeWith(ReasonTransportError, errPostOverlap)
		return
	}
	c.postActive = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.postActive = false
		c.mu.Unlock()
	}()

	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/octet-stream" {
		writeStatus(w, http.StatusBadRequest)
		c.closeWith(ReasonTransportError, errBinaryContent)
		return
	}
	body, err := c.readPost(w, r)
	if errors.Is(err, errTooLarge) {
		writeStatus(w, http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest)
		c.closeWith(ReasonTransportError, fmt.Errorf("%w: %w", errPostAborted, err))
		return
	}

	pkts, perr := decodePayload(body, nil)
	c.readMu.Lock()
	open := true
	for _, p := range pkts {
		if open = c.handlePacket(p); !open {
			break
		}
	}
	c.readMu.Unlock()
	if perr != nil && open {
		writeStatus(w, http.StatusBadRequest)
		c.closeWith(ReasonParseError, perr)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// readPost reads a POST body as it arrives (readAtMost: memory follows the
// bytes received, never the announced Content-Length) and decodes it as
// Node does. A read deadline of PingInterval+PingTimeout bounds how long a
// client may take to deliver it: a client that cannot send its body in that
// time would be declared dead by the heartbeat anyway, and without the
// deadline a POST announcing a large body and sending nothing would hold
// its request, and the session's POST slot, forever.
func (c *Conn) readPost(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	max := c.srv.cfg.MaxPayload
	if r.ContentLength > max {
		return nil, errTooLarge
	}
	rc := http.NewResponseController(w)
	// ErrNotSupported (a ResponseWriter that cannot set deadlines) leaves
	// the body unbounded in time, as before; there is nothing better to do.
	_ = rc.SetReadDeadline(time.Now().Add(c.srv.cfg.PingInterval + c.srv.cfg.PingTimeout))
	body, err := readAtMost(r.Body, max, r.ContentLength)
	if err != nil {
		return nil, err
	}
	// Node reads a text body with Buffer.toString("utf8"): every invalid
	// sequence becomes U+FFFD, so what reaches the Handler is valid text.
	return toValidUTF8(body), nil
}

// writePoll writes a polling GET response within Config.WriteTimeout. A
// client that does not read its response (its receive window stays full)
// would otherwise hold the request goroutine, and the session's GET slot,
// for as long as it likes. The error, if any, means the response was not
// delivered.
func (c *Conn) writePoll(w http.ResponseWriter, body []byte) error {
	rc := http.NewResponseController(w)
	// net/http clears the deadline once the request is finished.
	_ = rc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	if err := writePayload(w, body); err != nil {
		return err
	}
	// Flush now, while the handler can still see a failed write: what stays
	// buffered is written by net/http after the handler returns.
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
