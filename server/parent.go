package server

import (
	"encoding/json"
	"sort"
	"sync"
)

// ParentNamespace creates namespaces on demand (Node's io.of(regexp) and
// io.of(function)). A child inherits the middlewares and connection
// handlers the parent has when the child is created. Emitting on a parent
// emits on every child.
type ParentNamespace struct {
	srv    *Server
	accept func(name string, auth json.RawMessage) bool

	mu           sync.RWMutex
	middlewares  []Middleware
	onConnection []ConnectionHandler
	handlers     map[string]EventHandler
	children     map[*Namespace]struct{}
}

func newParent(s *Server, accept func(string, json.RawMessage) bool) *ParentNamespace {
	return &ParentNamespace{srv: s, accept: accept, children: make(map[*Namespace]struct{})}
}

// Use adds a middleware inherited by children created from now on.
func (p *ParentNamespace) Use(mw Middleware) {
	p.mu.Lock()
	p.middlewares = append(p.middlewares, mw)
	p.mu.Unlock()
}

// OnConnection registers a connection handler inherited by children
// created from now on.
func (p *ParentNamespace) OnConnection(h ConnectionHandler) {
	p.mu.Lock()
	p.onConnection = append(p.onConnection, h)
	p.mu.Unlock()
}

// On registers an event handler inherited by children created from now on
// (see Namespace.On).
func (p *ParentNamespace) On(event string, h EventHandler) {
	p.mu.Lock()
	if p.handlers == nil {
		p.handlers = make(map[string]EventHandler)
	}
	p.handlers[event] = h
	p.mu.Unlock()
}

// Children returns the child namespaces that exist, sorted by name
// (with Config.CleanupEmptyChildNamespaces, those that have sockets).
func (p *ParentNamespace) Children() []*Namespace {
	p.mu.RLock()
	out := make([]*Namespace, 0, len(p.children))
	for ns := range p.children {
		out = append(out, ns)
	}
	p.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// forget removes a child that was cleaned up.
func (p *ParentNamespace) forget(ns *Namespace) {
	p.mu.Lock()
	delete(p.children, ns)
	p.mu.Unlock()
}

// adopt gives a new child the parent's middlewares and handlers.
func (p *ParentNamespace) adopt(ns *Namespace) {
	p.mu.Lock()
	p.children[ns] = struct{}{}
	mws := append([]Middleware(nil), p.middlewares...)
	hs := append([]ConnectionHandler(nil), p.onConnection...)
	evs := make(map[string]EventHandler, len(p.handlers))
	for k, h := range p.handlers {
		evs[k] = h
	}
	p.mu.Unlock()
	ns.mu.Lock()
	ns.middlewares = append(mws, ns.middlewares...)
	ns.onConnection = append(hs, ns.onConnection...)
	for k, h := range ns.handlers {
		evs[k] = h
	}
	ns.handlers = evs
	ns.mu.Unlock()
}

// Emit emits on every child namespace.
func (p *ParentNamespace) Emit(event string, args ...any) error {
	for _, ns := range p.Children() {
		if err := ns.Emit(event, args...); err != nil {
			return err
		}
	}
	return nil
}

// ForEach calls fn for every child namespace created so far.
func (p *ParentNamespace) ForEach(fn func(*Namespace)) {
	for _, ns := range p.Children() {
		fn(ns)
	}
}
