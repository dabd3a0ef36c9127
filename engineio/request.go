package engineio

import "net/http"

// headerSize returns the size of r's head as Node's HTTP parser counts it
// against --max-http-header-size: the bytes of the request target and of
// every header name and value, without the separators (measured against
// Node 20: with the default 16384, a head counting 16383 is accepted and
// one counting 16384 is refused).
func headerSize(r *http.Request) int {
	n := len(r.RequestURI)
	if r.Host != "" { // net/http moves the Host header out of r.Header
		n += len("Host") + len(r.Host)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

// headerTooLarge reports whether r's head is over Config.MaxHeaderBytes,
// and if so answers it as Node does: 431 and the connection closed.
func (s *Server) headerTooLarge(w http.ResponseWriter, r *http.Request) bool {
	if headerSize(r) < s.cfg.MaxHeaderBytes {
		return false
	}
	w.Header().Set("Connection", "close")
	writeStatus(w, http.StatusRequestHeaderFieldsTooLarge)
	return true
}

// compactRequest returns what a session keeps of its handshake request
// (Conn.Request): method, URL, host, remote address, TLS state and a copy
// of the headers. It holds nothing else of the original: not the request
// object that net/http, the router and middleware attach things to, nor
// its context or body. The header copy lives in one allocation for its
// values.
func compactRequest(r *http.Request) *http.Request {
	u := *r.URL
	return &http.Request{
		Method:     r.Method,
		URL:        &u,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     r.Header.Clone(),
		Body:       http.NoBody,
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		RequestURI: r.RequestURI,
		TLS:        r.TLS,
	}
}
