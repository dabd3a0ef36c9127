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
	handlers     listenerMap
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

// On adds an event listener inherited by children created from now on
// (see Namespace.On). The ID removes it from the parent (Off), so from
// children created later, and from a child with Namespace.Off.
func (p *ParentNamespace) On(event string, h EventHandler) ListenerID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handlers.add(event, h)
}

// Off removes the given listeners of an event from the parent, or all of
// them when no id is given; children keep what they inherited.
func (p *ParentNamespace) Off(event string, ids ...ListenerID) {
	p.mu.Lock()
	p.handlers.remove(event, ids)
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
	evs := p.handlers.clone()
	p.mu.Unlock()
	ns.mu.Lock()
	ns.middlewares = append(mws, ns.middlewares...)
	ns.onConnection = append(hs, ns.onConnection...)
	for k, ls := range ns.handlers {
		evs[k] = append(evs[k][:len(evs[k]):len(evs[k])], ls...)
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
