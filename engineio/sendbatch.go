package engineio

import "syscall"

// sendBatch is a writer's batch of connections written with one ring
// submission (uring_linux.go): for each, the queue taken from it, the bytes
// of its frames, and what the kernel said. While a connection is in the
// batch its writer holds its bufConn.mu, as writeNow does, so that no other
// write (a control frame) goes between; the lock is a leaf and no holder of
// one waits for another, so holding several cannot deadlock (LOCKING.md).
type sendBatch struct {
	conns  []*Conn
	ws     []*wsConn
	msgs   [][]*Message
	fds    []int
	bufs   [][]byte
	pooled []*[]byte // coalesce buffers to give back, nil for a single frame
	res    []int32
}

// add takes the queue of c, taken off the writers' list, into the batch —
// or writes it the usual way when the batch cannot carry it — and reports
// whether the batch is full.
func (b *sendBatch) add(c *Conn) bool {
	c.mu.Lock()
	w := c.ws
	if w == nil || w.owner != ownListed {
		c.mu.Unlock()
		return false
	}
	if c.closed {
		c.startWriterLocked(w) // it flushes if asked and hangs up
		c.mu.Unlock()
		return false
	}
	if len(c.queue) == 0 {
		w.owner = ownNone
		c.mu.Unlock()
		return false
	}
	msgs := c.takeLocked()
	c.mu.Unlock()

	var p []byte
	var pooled *[]byte
	if len(msgs) == 1 {
		p = msgs[0].wsFrame() // shared by every recipient, not copied
	} else {
		total := 0
		for _, m := range msgs {
			total += len(m.wsFrame())
		}
		if total <= coalesceLimit {
			pooled = coalescePool.Get().(*[]byte)
			buf := (*pooled)[:0]
			for _, m := range msgs {
				buf = append(buf, m.wsFrame()...)
			}
			*pooled = buf
			p = buf
		}
	}
	if p == nil || w.nc.fd < 0 {
		if pooled != nil {
			coalescePool.Put(pooled)
		}
		c.writeOwned(w, msgs) // a long batch: written in pieces
		return false
	}
	w.nc.mu.Lock()
	b.conns = append(b.conns, c)
	b.ws = append(b.ws, w)
	b.msgs = append(b.msgs, msgs)
	b.fds = append(b.fds, w.nc.fd)
	b.bufs = append(b.bufs, p)
	b.pooled = append(b.pooled, pooled)
	return len(b.conns) == ringSize
}

// flush sends the batch through r and passes each connection on. It
// reports false when the ring failed: the batch was then written the usual
// way, and the writer should stop using the ring.
func (b *sendBatch) flush(r *ring) bool {
	if len(b.conns) == 0 {
		return true
	}
	if cap(b.res) < len(b.conns) {
		b.res = make([]int32, ringSize)
	}
	b.res = b.res[:len(b.conns)]
	err := r.sendAll(b.fds, b.bufs, b.res)
	for i, c := range b.conns {
		w := b.ws[i]
		w.nc.mu.Unlock()
		if pb := b.pooled[i]; pb != nil {
			*pb = (*pb)[:0]
			coalescePool.Put(pb)
		}
		if err != nil {
			c.writeOwned(w, b.msgs[i])
			continue
		}
		n, werr := int(b.res[i]), error(nil)
		if n < 0 {
			if e := syscall.Errno(-n); e != syscall.EAGAIN {
				werr = e
			}
			n = 0
		}
		c.afterWrite(w, b.msgs[i], n, werr == nil && n == len(b.bufs[i]), werr)
	}
	clear(b.conns)
	clear(b.ws)
	clear(b.msgs)
	clear(b.bufs)
	clear(b.pooled)
	b.conns, b.ws, b.msgs, b.fds, b.bufs, b.pooled = b.conns[:0], b.ws[:0], b.msgs[:0], b.fds[:0], b.bufs[:0], b.pooled[:0]
	return err == nil
}
