package engineio

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
)

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

// savedRequest is what a session keeps of its handshake request: method,
// request URI, protocol, host, remote address and headers packed into one
// string ("\n" between fields: net/http refuses it inside any of them), and
// the TLS state. It holds nothing of the original request object that
// net/http, the router and middleware attach things to, nor its context or
// body; Request unpacks a new copy.
type savedRequest struct {
	packed string
	tls    *tls.ConnectionState
}

func saveRequest(r *http.Request) savedRequest {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + len(r.RemoteAddr) + 5
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range []string{r.Method, r.RequestURI, r.Proto, r.Host, r.RemoteAddr} {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteByte(':')
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return savedRequest{packed: b.String(), tls: r.TLS}
}

// request unpacks a new copy of the saved request.
func (s savedRequest) request() *http.Request {
	var f [5]string
	rest := s.packed
	for i := range f {
		f[i], rest, _ = strings.Cut(rest, "\n")
	}
	r := &http.Request{
		Method:     f[0],
		RequestURI: f[1],
		Proto:      f[2],
		Host:       f[3],
		RemoteAddr: f[4],
		Header:     make(http.Header, strings.Count(rest, "\n")),
		Body:       http.NoBody,
		TLS:        s.tls,
	}
	r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(r.Proto)
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		r.URL = u
	} else {
		r.URL = &url.URL{}
	}
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		k, v, _ := strings.Cut(line, ":")
		r.Header[k] = append(r.Header[k], v)
	}
	return r
}
