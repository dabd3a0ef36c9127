package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
)

// Pending is what an adapter (classic, or a cluster Adapter) waits for
// from the other nodes: its requests with answers, by request id, and its
// broadcasts with acks. Mu also guards the adapter's Closed flag.
type Pending struct {
	Mu       sync.Mutex
	Closed   bool
	Requests map[string]*Request
	Acks     map[string]*AckRequest
}

// NewPending returns an empty table.
func NewPending() Pending {
	return Pending{Requests: make(map[string]*Request), Acks: make(map[string]*AckRequest)}
}

// AddRequest registers req under a new request id from newID.
func (p *Pending) AddRequest(req *Request, newID func() string) (string, error) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if p.Closed {
		return "", adapter.ErrClosed
	}
	for {
		id := newID()
		if _, dup := p.Requests[id]; !dup {
			p.Requests[id] = req
			return id, nil
		}
	}
}

// dropRequest forgets a pending request; false if it already completed.
func (p *Pending) dropRequest(id string) bool {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if _, ok := p.Requests[id]; !ok {
		return false
	}
	delete(p.Requests, id)
	return true
}

// Await publishes a request and waits for its answers until wait or ctx's
// deadline (errTimedOut: Node's timeout text follows, with what came), or
// ctx's cancellation. Afterwards the request's fields are the caller's.
func (p *Pending) Await(ctx context.Context, id string, req *Request, wait time.Duration, publish func() error) error {
	if err := publish(); err != nil {
		p.dropRequest(id)
		return err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case <-req.Done:
		return req.Err
	case <-timer.C:
		err = ErrTimedOut
	case <-ctx.Done():
		err = ctx.Err()
		if err == context.DeadlineExceeded {
			err = ErrTimedOut
		}
	}
	if !p.dropRequest(id) {
		<-req.Done // completed meanwhile
		return req.Err
	}
	return err
}

// TrackAck registers a broadcast with acks under id, forgotten when its
// timeout is over (whether every client of every node answered is unknown
// here, as on Node), then publishes it.
func (p *Pending) TrackAck(id string, req *AckRequest, wait time.Duration, publish func() error) error {
	p.Mu.Lock()
	if p.Closed {
		p.Mu.Unlock()
		return adapter.ErrClosed
	}
	p.Acks[id] = req
	req.Timer = time.AfterFunc(wait, func() {
		p.Mu.Lock()
		delete(p.Acks, id)
		p.Mu.Unlock()
	})
	p.Mu.Unlock()
	if err := publish(); err != nil {
		p.Mu.Lock()
		delete(p.Acks, id)
		p.Mu.Unlock()
		req.Timer.Stop()
		return err
	}
	return nil
}

// CloseAll marks the adapter closed, ends its requests with
// adapter.ErrClosed and forgets its broadcasts with acks; false if it was
// closed already.
func (p *Pending) CloseAll() bool {
	p.Mu.Lock()
	if p.Closed {
		p.Mu.Unlock()
		return false
	}
	p.Closed = true
	reqs, acks := p.Requests, p.Acks
	p.Requests, p.Acks = nil, nil
	for _, r := range reqs {
		r.Finish(adapter.ErrClosed)
	}
	p.Mu.Unlock()
	for _, r := range acks {
		r.Timer.Stop()
	}
	return true
}

// AckRequest routes the answers to a broadcast with acks this node sent.
type AckRequest struct {
	OnClientCount func(int)
	OnAck         func([]parser.Raw)
	Timer         *time.Timer
}
