package cluster

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ioswarm/ioswarm/adapter"
)

// ErrTimedOut ends a request whose answers did not all come in time; the
// callers turn it into Node's error text.
var ErrTimedOut = errors.New("redis: request timed out")

// Request is a request of this node waiting for the answers of the others.
// Its fields are guarded by Pending.Mu until Done is closed or the request
// is removed from Pending.Requests.
type Request struct {
	Typ       int
	Expected  int // answers expected: the other nodes
	Received  int
	Sockets   []adapter.SocketInfo
	Rooms     map[string]struct{}
	Responses []json.RawMessage
	Done      chan struct{}
	Err       error
}

// NewRequest returns a request of type typ waiting for expected answers.
func NewRequest(typ, expected int) *Request {
	return &Request{Typ: typ, Expected: expected, Done: make(chan struct{})}
}

// Finish completes the request; the caller holds Pending.Mu and has
// removed it from Pending.Requests.
func (r *Request) Finish(err error) {
	r.Err = err
	close(r.Done)
}

// AnswerLen returns the size of a REMOTE_FETCH answer that starts with
// head (up to its last socket, comma excluded) and goes on with socks.
func AnswerLen(head []byte, socks []adapter.SocketInfo) int {
	n := len(head) + len("]}")
	var scratch []byte
	first := len(head) > 0 && head[len(head)-1] == '['
	for i, s := range socks {
		if i > 0 || !first {
			n++ // comma
		}
		hs, data := s.Handshake, s.Data
		s.Handshake, s.Data = nil, nil
		scratch = AppendSocket(scratch[:0], s) // "null" for both
		n += len(scratch)
		if len(hs) > 0 {
			n += len(hs) - len("null")
		}
		if len(data) > 0 {
			n += len(data) - len("null")
		}
	}
	return n
}

// AppendSocket writes a socket of a REMOTE_FETCH answer:
// {"id","handshake","rooms","data"}.
func AppendSocket(dst []byte, s adapter.SocketInfo) []byte {
	m := JSONMsg{B: append(dst, `{"id":`...)} // key() adds the commas from here on
	m.B = AppendJSStringText(m.B, s.ID)
	m.Raw("handshake", s.Handshake)
	m.Strs("rooms", s.Rooms)
	m.Raw("data", s.Data)
	return append(m.B, '}')
}

// ---------------------------------------------------------------- answers too large

// CodeTooLarge is the code of an answer that exceeded the answering node's
// MaxMessageBytes.
const CodeTooLarge = "messageTooLarge"

// AnswerError is the "error" member of an answer that replaces one the
// answering node could not send. Node's adapter ignores members it does not
// know; the rest of the answer is Node's, with an empty result, so that a
// Node asker counts it.
type AnswerError struct {
	Code  string `json:"code"`
	UID   string `json:"uid"`   // the answering adapter
	Size  int    `json:"size"`  // bytes of the answer that was not sent
	Limit int    `json:"limit"` // the answering node's MaxMessageBytes
}

// DecodeAnswerError reads an "error" member; nil when there is none, or
// when it is not one of ours.
func DecodeAnswerError(raw json.RawMessage) *AnswerError {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var ae AnswerError
	if json.Unmarshal(raw, &ae) != nil || ae.Code == "" {
		return nil
	}
	return &ae
}

// RemoteError is the error of a request another node answered with an
// error.
type RemoteError struct {
	Op string
	E  AnswerError
}

func (r *RemoteError) Error() string {
	if r.E.Code == CodeTooLarge {
		return fmt.Sprintf("redis: %s: node %s answered too large (%d bytes > %d)", r.Op, r.E.UID, r.E.Size, r.E.Limit)
	}
	return fmt.Sprintf("redis: %s: node %s could not answer (%s)", r.Op, r.E.UID, r.E.Code)
}

// Is reports whether target is ErrMessageTooLarge and the answer was too
// large.
func (r *RemoteError) Is(target error) bool {
	return target == ErrMessageTooLarge && r.E.Code == CodeTooLarge
}
