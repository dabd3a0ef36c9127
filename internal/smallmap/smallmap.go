// Package smallmap is a map for the few keys that most of its instances
// hold: the namespaces of one connection, the rooms of one socket. Up to
// eight entries live in a slice, searched in order, then in a Go map.
//
// A Go map costs about 250 bytes however few entries it holds, a slice of
// one entry the size of that entry: at 10,000 connections, each with a
// map or two of one entry, that is most of a kilobyte per connection. The
// switch to a Go map bounds the cost of a lookup when one instance grows
// large (a client that connects to thousands of namespaces).
//
// A Map is not safe for concurrent use; its zero value is empty and ready.
package smallmap

// few is the most entries kept in the slice.
const few = 8

// Map maps keys to values.
type Map[K comparable, V any] struct {
	few  []entry[K, V]
	many map[K]V
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int {
	if m.many != nil {
		return len(m.many)
	}
	return len(m.few)
}

// Get returns the value of key and whether it is there.
func (m *Map[K, V]) Get(key K) (V, bool) {
	if m.many != nil {
		v, ok := m.many[key]
		return v, ok
	}
	for i := range m.few {
		if m.few[i].key == key {
			return m.few[i].val, true
		}
	}
	var zero V
	return zero, false
}

// Has reports whether key is there.
func (m *Map[K, V]) Has(key K) bool {
	_, ok := m.Get(key)
	return ok
}

// Set sets the value of key.
func (m *Map[K, V]) Set(key K, val V) {
	if m.many != nil {
		m.many[key] = val
		return
	}
	for i := range m.few {
		if m.few[i].key == key {
			m.few[i].val = val
			return
		}
	}
	if len(m.few) < few {
		m.few = append(m.few, entry[K, V]{key, val})
		return
	}
	m.many = make(map[K]V, 2*few)
	for _, e := range m.few {
		m.many[e.key] = e.val
	}
	m.many[key] = val
	m.few = nil
}

// Delete removes key. An emptied Map holds no memory.
func (m *Map[K, V]) Delete(key K) {
	if m.many != nil {
		delete(m.many, key)
		if len(m.many) == 0 {
			m.many = nil
		}
		return
	}
	for i := range m.few {
		if m.few[i].key == key {
			last := len(m.few) - 1
			m.few[i] = m.few[last]
			m.few[last] = entry[K, V]{}
			m.few = m.few[:last]
			if last == 0 {
				m.few = nil
			}
			return
		}
	}
}

// All calls yield for every entry, in no particular order, until it
// returns false. The Map must not change meanwhile.
func (m *Map[K, V]) All(yield func(K, V) bool) {
	if m.many != nil {
		for k, v := range m.many {
			if !yield(k, v) {
				return
			}
		}
		return
	}
	for _, e := range m.few {
		if !yield(e.key, e.val) {
			return
		}
	}
}
