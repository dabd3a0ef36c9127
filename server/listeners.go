package server

import (
	"slices"
	"sync/atomic"
)

// ListenerID identifies a listener added with On, OnAny or OnAnyOutgoing,
// for Off, OffAny and OffAnyOutgoing. IDs are unique within the process.
type ListenerID uint64

var lastListenerID atomic.Uint64

func newListenerID() ListenerID { return ListenerID(lastListenerID.Add(1)) }

// eventListener is one listener of a named event.
type eventListener struct {
	id ListenerID
	h  EventHandler
}

// listenerMap holds the listeners of named events, in the order they were
// added. Its slices are never modified in place (copied on change), so a
// dispatcher may use one after releasing the owner's lock.
type listenerMap map[string][]eventListener

func (m *listenerMap) add(event string, h EventHandler) ListenerID {
	if *m == nil {
		*m = make(listenerMap)
	}
	id := newListenerID()
	old := (*m)[event]
	ls := make([]eventListener, len(old), len(old)+1)
	copy(ls, old)
	(*m)[event] = append(ls, eventListener{id, h})
	return id
}

// remove drops the given listeners of event, or all of them when ids is
// empty.
func (m listenerMap) remove(event string, ids []ListenerID) {
	if len(ids) == 0 {
		delete(m, event)
		return
	}
	var kept []eventListener
	for _, l := range m[event] {
		if !slices.Contains(ids, l.id) {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		delete(m, event)
		return
	}
	m[event] = kept
}

// clone copies the map (the slices are shared: they are never modified).
func (m listenerMap) clone() listenerMap {
	c := make(listenerMap, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
