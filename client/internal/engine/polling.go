package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// pollLoop is the reader of a polling session: one GET at a time, each
// answer's packets processed in order. It exits on close, on an error
// (closing the connection), or once the upgrade has paused it.
func (c *Conn) pollLoop(first []eio.Packet, firstErr error) {
	defer c.wg.Done()
	defer close(c.pollerDone)
	if !c.handlePackets(first, firstErr) {
		return
	}
	for {
		c.mu.Lock()
		stop := c.closed || c.pausePoll
		c.mu.Unlock()
		if stop {
			return
		}
		body, err := c.get(c.ctx, c.id)
		if err != nil {
			c.closeWith(ReasonTransportError, fmt.Errorf("engine: poll: %w", err))
			return
		}
		pkts, perr := eio.DecodePayload(body, nil)
		if !c.handlePackets(pkts, perr) {
			return
		}
	}
}

// handlePackets processes a payload's packets, then its parse error if any.
func (c *Conn) handlePackets(pkts []eio.Packet, perr error) bool {
	for _, p := range pkts {
		if !c.handlePacket(p) {
			return false
		}
	}
	if perr != nil {
		c.closeWith(ReasonParseError, perr)
		return false
	}
	return true
}

// get sends one polling GET (the handshake when sid is empty) and returns
// its body, at most MaxIncoming bytes.
func (c *Conn) get(ctx context.Context, sid string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.ep.url(TransportPolling, sid), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxIncoming {
		return nil, errTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxIncoming+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxIncoming {
		return nil, errTooLarge
	}
	return body, nil
}

// post sends one payload.
func (c *Conn) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ep.url(TransportPolling, c.id), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	// The answer is "ok"; read it so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 512))
	return resp.Body.Close()
}

// do sends req with Options.Header and turns a non-200 answer into an
// *HTTPError.
func (c *Conn) do(req *http.Request) (*http.Response, error) {
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, httpError(resp)
	}
	return resp, nil
}

// appendBatch encodes queued packets as one polling payload, as many as fit
// in the server's maxPayload (at least one: a packet too large on its own is
// sent alone, and the server refuses it, as with the JS client). It returns
// the payload and how many packets it holds.
func appendBatch(dst []byte, queue []packet, maxPayload int) ([]byte, int) {
	n := 0
	for _, p := range queue {
		start := len(dst)
		if n > 0 {
			dst = append(dst, eio.RecordSeparator)
		}
		dst = eio.AppendText(dst, p.typ, p.data, p.binary)
		if n > 0 && len(dst) > maxPayload {
			return dst[:start], n
		}
		n++
	}
	return dst, n
}
