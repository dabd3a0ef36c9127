package client

import "sync"

// managerHooks are the handlers of a Manager's reconnection events (the JS
// client's reconnect_attempt, reconnect, reconnect_error and
// reconnect_failed). They run on the manager's handler goroutine, one at a
// time and in order, and may block (only other hooks wait).
type managerHooks struct {
	mu       sync.Mutex
	attempts []func(attempt int)
	ok       []func(attempt int)
	errs     []func(err error)
	failed   []func()
}

// OnReconnectAttempt registers a handler called before each reconnection
// attempt, with its number (1, 2, ...).
func (m *Manager) OnReconnectAttempt(h func(attempt int)) {
	m.hooks.mu.Lock()
	m.hooks.attempts = append(m.hooks.attempts, h)
	m.hooks.mu.Unlock()
}

// OnReconnect registers a handler called when a reconnection succeeded,
// with the number of attempts it took; the sockets then send their
// CONNECT (their OnConnect handlers say when each is back).
func (m *Manager) OnReconnect(h func(attempt int)) {
	m.hooks.mu.Lock()
	m.hooks.ok = append(m.hooks.ok, h)
	m.hooks.mu.Unlock()
}

// OnReconnectError registers a handler called with the error of each
// failed reconnection attempt.
func (m *Manager) OnReconnectError(h func(err error)) {
	m.hooks.mu.Lock()
	m.hooks.errs = append(m.hooks.errs, h)
	m.hooks.mu.Unlock()
}

// OnReconnectFailed registers a handler called when ReconnectionAttempts
// attempts failed: the manager gives up, and its sockets are disconnected
// for good (Connect may try again).
func (m *Manager) OnReconnectFailed(h func()) {
	m.hooks.mu.Lock()
	m.hooks.failed = append(m.hooks.failed, h)
	m.hooks.mu.Unlock()
}

func (h *managerHooks) attempt(m *Manager, n int) {
	h.mu.Lock()
	hs := h.attempts
	h.mu.Unlock()
	if len(hs) > 0 {
		m.exec.do(func() {
			for _, f := range hs {
				f(n)
			}
		})
	}
}

func (h *managerHooks) reconnect(m *Manager, n int) {
	h.mu.Lock()
	hs := h.ok
	h.mu.Unlock()
	if len(hs) > 0 {
		m.exec.do(func() {
			for _, f := range hs {
				f(n)
			}
		})
	}
}

func (h *managerHooks) reconnectError(m *Manager, err error) {
	h.mu.Lock()
	hs := h.errs
	h.mu.Unlock()
	if len(hs) > 0 {
		m.exec.do(func() {
			for _, f := range hs {
				f(err)
			}
		})
	}
}

func (h *managerHooks) reconnectFailed(m *Manager) {
	h.mu.Lock()
	hs := h.failed
	h.mu.Unlock()
	if len(hs) > 0 {
		m.exec.do(func() {
			for _, f := range hs {
				f()
			}
		})
	}
}
