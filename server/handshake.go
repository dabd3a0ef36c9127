package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Handshake describes the request that opened a socket's connection, as
// Node's socket.handshake does.
type Handshake struct {
	// Headers of the first HTTP request of the connection.
	Headers http.Header
	// Time the connection was opened.
	Time time.Time
	// Address is the client's IP address.
	Address string
	// XDomain reports whether the request carried an Origin header.
	XDomain bool
	// Secure reports whether the connection uses TLS.
	Secure bool
	// URL is the request URI of the first request.
	URL string
	// Query is the query of the first request (EIO, transport, and the
	// client's own parameters).
	Query url.Values
	// Auth is the payload of the client's CONNECT packet; {} when it sent
	// none.
	Auth json.RawMessage
}

func newHandshake(r *http.Request, auth json.RawMessage, t time.Time) *Handshake {
	addr := r.RemoteAddr
	if i := strings.LastIndexByte(addr, ':'); i > 0 && !strings.HasSuffix(addr, "]") {
		addr = addr[:i]
	}
	addr = strings.Trim(addr, "[]")
	return &Handshake{
		Headers: r.Header,
		Time:    t,
		Address: addr,
		XDomain: r.Header.Get("Origin") != "",
		Secure:  r.TLS != nil,
		URL:     r.URL.RequestURI(),
		Query:   r.URL.Query(),
		Auth:    auth,
	}
}

// jsDate formats t as JavaScript's Date.prototype.toString does in UTC.
const jsDate = "Mon Jan 02 2006 15:04:05 GMT-0700"

// handshakeJSON is the shape of Node's socket.handshake through JSON.
type handshakeJSON struct {
	Headers map[string]string `json:"headers"`
	Time    string            `json:"time"`
	Address string            `json:"address"`
	XDomain bool              `json:"xdomain"`
	Secure  bool              `json:"secure"`
	Issued  int64             `json:"issued"`
	URL     string            `json:"url"`
	Query   map[string]any    `json:"query"`
	Auth    json.RawMessage   `json:"auth"`
}

// MarshalJSON writes the handshake as the Node.js server does: lower-case
// header names, the time as JavaScript's Date string plus "issued" in
// milliseconds, and the query as an object (repeated keys as arrays).
func (h *Handshake) MarshalJSON() ([]byte, error) {
	j := handshakeJSON{
		Headers: make(map[string]string, len(h.Headers)),
		Time:    h.Time.UTC().Format(jsDate) + " (Coordinated Universal Time)",
		Address: h.Address,
		XDomain: h.XDomain,
		Secure:  h.Secure,
		Issued:  h.Time.UnixMilli(),
		URL:     h.URL,
		Query:   make(map[string]any, len(h.Query)),
		Auth:    h.Auth,
	}
	for k, v := range h.Headers {
		j.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	for k, v := range h.Query {
		if len(v) == 1 {
			j.Query[k] = v[0]
		} else {
			j.Query[k] = v
		}
	}
	if len(j.Auth) == 0 {
		j.Auth = json.RawMessage("{}")
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the Node.js shape written by MarshalJSON.
func (h *Handshake) UnmarshalJSON(b []byte) error {
	var j struct {
		Headers map[string]any             `json:"headers"`
		Issued  int64                      `json:"issued"`
		Address string                     `json:"address"`
		XDomain bool                       `json:"xdomain"`
		Secure  bool                       `json:"secure"`
		URL     string                     `json:"url"`
		Query   map[string]json.RawMessage `json:"query"`
		Auth    json.RawMessage            `json:"auth"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = Handshake{
		Headers: make(http.Header, len(j.Headers)),
		Time:    time.UnixMilli(j.Issued),
		Address: j.Address,
		XDomain: j.XDomain,
		Secure:  j.Secure,
		URL:     j.URL,
		Query:   make(url.Values, len(j.Query)),
		Auth:    j.Auth,
	}
	for k, v := range j.Headers {
		switch v := v.(type) {
		case string:
			h.Headers.Set(k, v)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					h.Headers.Add(k, s)
				}
			}
		}
	}
	for k, raw := range j.Query {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			h.Query.Set(k, one)
			continue
		}
		var many []string
		if json.Unmarshal(raw, &many) == nil {
			h.Query[k] = many
		}
	}
	return nil
}
