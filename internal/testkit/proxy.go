package testkit

import (
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// SwitchProxy forwards TCP connections to one node, then to another once
// switched: a load balancer whose node went away. Cut closes every
// connection it carries.
type SwitchProxy struct {
	target atomic.Value // "host:port"
	ln     net.Listener
	url    string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewSwitchProxy starts a proxy to the server at URL to, closed at cleanup.
func NewSwitchProxy(t testing.TB, to string) *SwitchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	NoError(t, err)
	p := &SwitchProxy{ln: ln, url: "http://" + ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.To(t, to)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *SwitchProxy) serve(c net.Conn) {
	// Tracked from its accept, not once its upstream is dialed: a Cut while
	// it dials closes it too (a connection that slipped past a Cut kept a
	// long-poll open to a dead node).
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	b, err := net.Dial("tcp", p.target.Load().(string))
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(b) {
		_ = c.Close()
		return
	}
	defer p.untrack(b)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = b.Close()
	<-done
}

func (p *SwitchProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *SwitchProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// To sends the next connections to the server at URL to.
func (p *SwitchProxy) To(t testing.TB, to string) {
	u, err := url.Parse(to)
	NoError(t, err)
	p.target.Store(u.Host)
}

// Cut closes the connections in flight.
func (p *SwitchProxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
}

// URL is the proxy's "http://host:port".
func (p *SwitchProxy) URL() string { return p.url }
