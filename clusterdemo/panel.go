package main

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/server"
)

// eventStatus is the serverSideEmit every node answers with its nodeStatus.
const eventStatus = "cluster:status"

// Timing of the cluster panel.
const (
	// askTimeout bounds the wait for the other nodes' answers: a node that
	// did not answer by then is shown as down.
	askTimeout = 1500 * time.Millisecond
	// reuseFor is how long one round of answers serves every page that asks:
	// many pages polling a node cost one round per second, not one each.
	reuseFor = time.Second
)

// nodeStatus is what a node says about itself.
type nodeStatus struct {
	Node    string    `json:"node"`
	Clients int       `json:"clients"`
	Started time.Time `json:"started"`
}

// panelNode is one row of the cluster panel.
type panelNode struct {
	nodeStatus
	Up       bool      `json:"up"`
	LastSeen time.Time `json:"lastSeen"`
	Self     bool      `json:"self,omitempty"`
}

// panelView answers a page's "cluster" request: the node it asked and every
// node known to it, sorted by name.
type panelView struct {
	Node  string      `json:"node"`
	Nodes []panelNode `json:"nodes"`
}

// peer is what a node remembers of another node.
type peer struct {
	status   nodeStatus
	lastSeen time.Time
	up       bool
}

// panel is a node's view of the cluster. It asks the other nodes on demand,
// at most one round at a time and once per reuseFor, and remembers the nodes
// it saw: a node that stops answering is shown as down for forget, then
// dropped. It is safe for concurrent use.
type panel struct {
	self   string
	status func() nodeStatus                              // this node, now
	ask    func(ctx context.Context) (server.Args, error) // serverSideEmit with ack to the others
	forget time.Duration
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	peers    map[string]*peer
	asked    time.Time     // when the last round ended
	inflight chan struct{} // closed when the running round ends; nil when none runs
}

func newPanel(self string, status func() nodeStatus, ask func(context.Context) (server.Args, error), forget time.Duration, logger *slog.Logger) *panel {
	return &panel{self: self, status: status, ask: ask, forget: forget, log: logger, now: time.Now, peers: map[string]*peer{}}
}

// view returns the cluster as this node sees it, asking the other nodes when
// the last answers are older than reuseFor. It waits at most askTimeout (or
// until ctx ends, returning what it knows).
func (p *panel) view(ctx context.Context) panelView {
	p.mu.Lock()
	for p.inflight != nil {
		ch := p.inflight
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return p.snapshot()
		}
		p.mu.Lock()
	}
	if p.now().Sub(p.asked) < reuseFor {
		p.mu.Unlock()
		return p.snapshot()
	}
	ch := make(chan struct{})
	p.inflight = ch
	p.mu.Unlock()

	answers := p.askPeers()

	p.mu.Lock()
	p.recordLocked(answers)
	p.inflight = nil
	close(ch)
	p.mu.Unlock()
	return p.snapshot()
}

// askPeers runs one round: every other node answers with its status. Its own
// timeout is not the page's: pages waiting for the same round may leave.
func (p *panel) askPeers() []nodeStatus {
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	answers, err := p.ask(ctx)
	if err != nil {
		// Some node did not answer in time (it hangs, or left after being
		// counted): the others' answers still count.
		p.log.Debug("clusterdemo: cluster status", "answers", answers.Len(), "err", err)
	}
	out := make([]nodeStatus, 0, answers.Len())
	for i := range answers.Len() {
		var st nodeStatus
		if err := answers.Decode(i, &st); err != nil || st.Node == "" {
			p.log.Warn("clusterdemo: bad cluster status answer", "answer", string(answers[i].JSON), "err", err)
			continue
		}
		out = append(out, st)
	}
	return out
}

// recordLocked updates the memory of the other nodes with one round of
// answers.
func (p *panel) recordLocked(answers []nodeStatus) {
	now := p.now()
	p.asked = now
	answered := make(map[string]bool, len(answers))
	for _, st := range answers {
		if st.Node == p.self {
			p.log.Warn("clusterdemo: another node answers with this node's name; give each node its own -node", "node", st.Node)
			continue
		}
		answered[st.Node] = true
		pe := p.peers[st.Node]
		if pe == nil {
			pe = &peer{}
			p.peers[st.Node] = pe
		}
		if !pe.up {
			p.log.Info("clusterdemo: node up", "node", st.Node)
		}
		pe.status, pe.lastSeen, pe.up = st, now, true
	}
	for name, pe := range p.peers {
		if answered[name] {
			continue
		}
		if pe.up {
			pe.up = false
			p.log.Info("clusterdemo: node down", "node", name, "lastSeen", pe.lastSeen)
		}
		if now.Sub(pe.lastSeen) >= p.forget {
			delete(p.peers, name)
			p.log.Info("clusterdemo: node forgotten", "node", name)
		}
	}
}

// snapshot returns the panel: this node (its status now) and the others as
// remembered.
func (p *panel) snapshot() panelView {
	self := p.status() // outside p.mu: it asks the server
	p.mu.Lock()
	defer p.mu.Unlock()
	v := panelView{Node: p.self, Nodes: make([]panelNode, 0, len(p.peers)+1)}
	v.Nodes = append(v.Nodes, panelNode{nodeStatus: self, Up: true, LastSeen: p.now().UTC(), Self: true})
	for _, pe := range p.peers {
		v.Nodes = append(v.Nodes, panelNode{nodeStatus: pe.status, Up: pe.up, LastSeen: pe.lastSeen.UTC()})
	}
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Node < v.Nodes[j].Node })
	return v
}
