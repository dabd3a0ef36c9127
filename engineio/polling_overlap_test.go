package engineio

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// flushProbe is a ResponseWriter that records, when the answer is flushed
// to the client, whether the session still counts its GET as active.
type flushProbe struct {
	*httptest.ResponseRecorder
	c             *Conn
	activeAtFlush bool
	flushed       bool
}

func (p *flushProbe) Flush() {
	p.c.mu.Lock()
	p.activeAtFlush = p.c.getActive
	p.c.mu.Unlock()
	p.flushed = true
	p.ResponseRecorder.Flush()
}

// TestPollingGetOverBeforeAnswerLeaves: a client may send its next GET the
// moment it has read the previous answer, and that GET must not find the
// previous one still active (two GETs at once close the session). So the
// session must end the GET before its answer is flushed — on a loaded
// machine the request goroutine can lose the CPU between the two.
func TestPollingGetOverBeforeAnswerLeaves(t *testing.T) {
	e := newEnv(t, quietConfig(), nil)
	sid := e.handshake(t)
	r := e.rec(t, sid)
	if err := r.conn.Send(NewMessage([]byte("x"), false)); err != nil {
		t.Fatal(err)
	}
	p := &flushProbe{ResponseRecorder: httptest.NewRecorder(), c: r.conn}
	e.srv.ServeHTTP(p, httptest.NewRequest(http.MethodGet, e.url("EIO=4&transport=polling&sid="+sid), nil))
	if p.Code != http.StatusOK || p.Body.String() != "4x" {
		t.Fatalf("GET: %d %q", p.Code, p.Body.String())
	}
	if !p.flushed {
		t.Fatal("the answer was not flushed by the GET")
	}
	if p.activeAtFlush {
		t.Fatal("the GET was still active when its answer was flushed")
	}
}
