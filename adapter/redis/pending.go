package redis

import (
	"context"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
)

// pending is what an adapter (classic or sharded) waits for from the other
// nodes: its requests with answers, by request id, and its broadcasts with
// acks. mu also guards the adapter's closed flag; both adapters embed it.
type pending struct {
	mu       sync.Mutex
	closed   bool
	requests map[string]*request
	acks     map[string]*ackRequest
}

func newPending() pending {
	return pending{requests: make(map[string]*request), acks: make(map[string]*ackRequest)}
}

// addRequest registers req under a new request id from newID.
func (p *pending) addRequest(req *request, newID func() string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", adapter.ErrClosed
	}
	for {
		id := newID()
		if _, dup := p.requests[id]; !dup {
			p.requests[id] = req
			return id, nil
		}
	}
}

// dropRequest forgets a pending request; false if it already completed.
func (p *pending) dropRequest(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.requests[id]; !ok {
		return false
	}
	delete(p.requests, id)
	return true
}

// await publishes a request and waits for its answers until wait or ctx's
// deadline (errTimedOut: Node's timeout text follows, with what came), or
// ctx's cancellation. Afterwards the request's fields are the caller's.
func (p *pending) await(ctx context.Context, id string, req *request, wait time.Duration, publish func() error) error {
	if err := publish(); err != nil {
		p.dropRequest(id)
		return err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case <-req.done:
		return req.err
	case <-timer.C:
		err = errTimedOut
	case <-ctx.Done():
		err = ctx.Err()
		if err == context.DeadlineExceeded {
			err = errTimedOut
		}
	}
	if !p.dropRequest(id) {
		<-req.done // completed meanwhile
		return req.err
	}
	return err
}

// trackAck registers a broadcast with acks under id, forgotten when its
// timeout is over (whether every client of every node answered is unknown
// here, as on Node), then publishes it.
func (p *pending) trackAck(id string, req *ackRequest, wait time.Duration, publish func() error) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return adapter.ErrClosed
	}
	p.acks[id] = req
	req.timer = time.AfterFunc(wait, func() {
		p.mu.Lock()
		delete(p.acks, id)
		p.mu.Unlock()
	})
	p.mu.Unlock()
	if err := publish(); err != nil {
		p.mu.Lock()
		delete(p.acks, id)
		p.mu.Unlock()
		req.timer.Stop()
		return err
	}
	return nil
}

// closeAll marks the adapter closed, ends its requests with
// adapter.ErrClosed and forgets its broadcasts with acks; false if it was
// closed already.
func (p *pending) closeAll() bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.closed = true
	reqs, acks := p.requests, p.acks
	p.requests, p.acks = nil, nil
	for _, r := range reqs {
		r.finish(adapter.ErrClosed)
	}
	p.mu.Unlock()
	for _, r := range acks {
		r.timer.Stop()
	}
	return true
}
