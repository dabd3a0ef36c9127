package engineio

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
)

var payloadPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// writePayload writes a 200 polling response.
func writePayload(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
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
			last = closePacket
			switch c.reason {
			case ReasonTransportClose:
				last = noopPacket
			case ReasonForcedClose:
				batch = c.takeLocked()
			}
			break
		}
		if c.transport != TransportPolling {
			last = noopPacket // upgraded: the queue now belongs to the WebSocket
			break
		}
		if len(c.queue) > 0 {
			batch = c.takeLocked()
			break
		}
		c.getPending = true
		c.mu.Unlock()
		select {
		case <-c.pollWake:
		case <-c.done:
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
	writePayload(w, body)
	if cap(body) <= 64<<10 {
		*bp = body[:0]
		payloadPool.Put(bp)
	}

	c.mu.Lock()
	c.getActive = false
	if batch != nil {
		c.recycleLocked(batch)
	}
	c.mu.Unlock()
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
	max := c.srv.cfg.MaxPayload
	if r.ContentLength > max {
		writeStatus(w, http.StatusRequestEntityTooLarge)
		return
	}
	body, err := readBody(r.Body, r.ContentLength, max)
	if errors.Is(err, errTooLarge) {
		writeStatus(w, http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest)
		c.closeWith(ReasonTransportError, errPostAborted)
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

var errTooLarge = errors.New("engineio: payload too large")

// readBody reads a request body of at most max bytes, never buffering more
// than max+1. n is the declared Content-Length (-1 if unknown, ≤ max).
func readBody(r io.Reader, n, max int64) ([]byte, error) {
	if n >= 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) > max {
		return nil, errTooLarge
	}
	return buf, nil
}
