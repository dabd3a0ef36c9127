package engineio

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrClosed is returned by Send on a closed connection.
	ErrClosed = errors.New("engineio: connection closed")
	// ErrSlowConsumer is returned by Send, and passed to OnClose, when a
	// connection's send queue overflowed Config.MaxQueuedMessages or
	// Config.MaxQueuedBytes.
	ErrSlowConsumer = errors.New("engineio: slow consumer: send queue full")
)

// Errors passed to OnClose with reason "transport error".
var (
	errPollOverlap   = errors.New("engineio: overlapping polling GET request")
	errPostOverlap   = errors.New("engineio: overlapping polling POST request")
	errPollAborted   = errors.New("engineio: poll connection closed prematurely")
	errPostAborted   = errors.New("engineio: data request connection closed prematurely")
	errBinaryContent = errors.New("engineio: binary content in a v4 polling request")
	errClientPing    = errors.New("engineio: invalid heartbeat direction")
	errInvalidUTF8   = errors.New("engineio: invalid UTF-8 in a text message")
	errPollWrite     = errors.New("engineio: polling response not delivered")
)

// Close reasons passed to Handler.OnClose, as in Node's engine.io.
const (
	ReasonTransportClose = "transport close"
	ReasonTransportError = "transport error"
	ReasonPingTimeout    = "ping timeout"
	ReasonParseError     = "parse error"
	ReasonForcedClose    = "forced close"
)

// Engine.IO HTTP error codes (docs/protocol/engineio-v4.md §8).
const (
	codeTransportUnknown   = 0
	codeUnknownSID         = 1
	codeBadHandshakeMethod = 2
	codeBadRequest         = 3
	codeForbidden          = 4
	codeUnsupportedVersion = 5
)

var errorMessages = [...]string{
	codeTransportUnknown:   "Transport unknown",
	codeUnknownSID:         "Session ID unknown",
	codeBadHandshakeMethod: "Bad handshake method",
	codeBadRequest:         "Bad request",
	codeForbidden:          "Forbidden",
	codeUnsupportedVersion: "Unsupported protocol version",
}

// writeError answers a request rejected with an Engine.IO error code. Plain
// HTTP requests get Node's JSON body (403 for code 4, else 400). WebSocket
// handshakes get what Node writes on an aborted upgrade: 400 with the
// message as a text/html body, and the connection is closed.
func writeError(w http.ResponseWriter, code int, msg string, upgrade bool) {
	if msg == "" {
		msg = errorMessages[code]
	}
	h := w.Header()
	if upgrade {
		h.Set("Connection", "close")
		h.Set("Content-Type", "text/html")
		h.Set("Content-Length", strconv.Itoa(len(msg)))
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(msg))
		return
	}
	quoted, _ := json.Marshal(msg)
	body := make([]byte, 0, 32+len(quoted))
	body = append(body, `{"code":`...)
	body = strconv.AppendInt(body, int64(code), 10)
	body = append(body, `,"message":`...)
	body = append(body, quoted...)
	body = append(body, '}')
	status := http.StatusBadRequest
	if code == codeForbidden {
		status = http.StatusForbidden
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeStatus answers with a bare status code and an empty body.
func writeStatus(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}
