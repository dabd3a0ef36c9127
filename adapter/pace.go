package adapter

import (
	"sync"
	"time"
)

// pacer collects the recipients a broadcast found congested, so that its
// sender can wait for them before it sends more (see Packet.EnablePacing).
type pacer struct {
	mu      sync.Mutex
	enabled bool
	waits   []congested
}

type congested struct {
	drained <-chan struct{}
	slow    func()
}

// EnablePacing marks p as sent by a sender that waits for its congested
// recipients (an emit on this node): deliveries that leave a recipient's
// send queue past its high-water mark record it with NoteCongested, and the
// sender calls WaitPaced once the broadcast is delivered. Packets that
// arrive from other nodes are not paced: an adapter's receive loop never
// waits for a slow client. Call it before handing p to the adapter.
func (p *Packet) EnablePacing() { p.pace.enabled = true }

// Paced reports whether EnablePacing was called.
func (p *Packet) Paced() bool { return p.pace.enabled }

// NoteCongested records a recipient whose send queue is congested: drained
// is closed when its queue is taken (or it closes), and slow disconnects it
// as a slow consumer. It does nothing for a packet that is not paced.
func (p *Packet) NoteCongested(drained <-chan struct{}, slow func()) {
	if !p.pace.enabled || drained == nil {
		return
	}
	p.pace.mu.Lock()
	p.pace.waits = append(p.pace.waits, congested{drained, slow})
	p.pace.mu.Unlock()
}

// WaitPaced waits until every recipient recorded by NoteCongested has had
// its queue taken, for at most timeout in all; those still congested then
// are disconnected as slow consumers. A slow-but-steady reader so paces its
// sender (as TCP would); one that does not read at all costs the sender one
// timeout, once.
func (p *Packet) WaitPaced(timeout time.Duration) {
	p.pace.mu.Lock()
	waits := p.pace.waits
	p.pace.waits = nil
	p.pace.mu.Unlock()
	waitDrained(waits, timeout)
}

func waitDrained(waits []congested, timeout time.Duration) {
	if len(waits) == 0 {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for i, w := range waits {
		select {
		case <-w.drained:
		case <-t.C:
			for _, late := range waits[i:] {
				select {
				case <-late.drained:
				default:
					late.slow()
				}
			}
			return
		}
	}
}
