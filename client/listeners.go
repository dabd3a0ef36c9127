package client

import (
	"slices"
	"sync/atomic"
)

// ListenerID identifies a listener added with On, OnAny or OnAnyOutgoing,
// for Off, OffAny and OffAnyOutgoing. IDs are unique within the process.
type ListenerID uint64

var lastListenerID atomic.Uint64

func newListenerID() ListenerID { return ListenerID(lastListenerID.Add(1)) }

// listener is one registered handler. Lists of them are never modified in
// place (copied on change), so a dispatcher may use one after releasing the
// socket's lock.
type listener[H any] struct {
	id ListenerID
	h  H
}

// appendListener returns a copy of ls with h added.
func appendListener[H any](ls []listener[H], h H) ([]listener[H], ListenerID) {
	id := newListenerID()
	out := make([]listener[H], len(ls), len(ls)+1)
	copy(out, ls)
	return append(out, listener[H]{id, h}), id
}

// removeListeners returns a copy of ls without the given ids, or nil when
// ids is empty.
func removeListeners[H any](ls []listener[H], ids []ListenerID) []listener[H] {
	if len(ids) == 0 {
		return nil
	}
	var kept []listener[H]
	for _, l := range ls {
		if !slices.Contains(ids, l.id) {
			kept = append(kept, l)
		}
	}
	return kept
}
