package main

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/parser"
	"github.com/ioswarm/ioswarm/server"
)

// fakeCluster answers a panel's rounds with scripted answers, on a fake clock.
type fakeCluster struct {
	mu      sync.Mutex
	now     time.Time
	answers []nodeStatus
	err     error
	rounds  atomic.Int32
	block   chan struct{} // when not nil, a round waits for it to close
}

func (f *fakeCluster) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeCluster) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakeCluster) set(err error, answers ...nodeStatus) {
	f.mu.Lock()
	f.answers, f.err = answers, err
	f.mu.Unlock()
}

func (f *fakeCluster) ask(ctx context.Context) (server.Args, error) {
	f.rounds.Add(1)
	f.mu.Lock()
	block, answers, err := f.block, f.answers, f.err
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var args server.Args
	for _, a := range answers {
		b, _ := json.Marshal(a)
		args = append(args, parser.Raw{JSON: b})
	}
	return args, err
}

func newFakePanel(t *testing.T, forget time.Duration) (*panel, *fakeCluster) {
	f := &fakeCluster{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	self := func() nodeStatus { return nodeStatus{Node: "a", Clients: 7, Started: f.now} }
	p := newPanel("a", self, f.ask, forget, testLogger(t))
	p.now = f.clock
	return p, f
}

func TestClusterPanelMemory(t *testing.T) {
	p, f := newFakePanel(t, 10*time.Second)
	ctx := context.Background()
	b := nodeStatus{Node: "b", Clients: 1}
	c := nodeStatus{Node: "c", Clients: 2}

	f.set(nil, c, b)
	seen := f.clock()
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7", "b:up:1", "c:up:2"})
	testkit.Equal(t, f.rounds.Load(), int32(1))

	// Within reuseFor the answers are reused.
	f.set(nil)
	f.advance(reuseFor / 2)
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7", "b:up:1", "c:up:2"})
	testkit.Equal(t, f.rounds.Load(), int32(1))

	// c does not answer in time: down, with its last status and when it was seen.
	f.advance(reuseFor)
	f.set(errors.New("timeout reached: only 1 responses received out of 2"), nodeStatus{Node: "b", Clients: 3})
	v := p.view(ctx)
	testkit.Equal(t, rows(v), []string{"a:up:7", "b:up:3", "c:down:2"})
	testkit.True(t, v.Nodes[2].LastSeen.Equal(seen), "c last seen %v, want %v", v.Nodes[2].LastSeen, seen)

	// An answer carrying this node's own name is ignored.
	f.advance(reuseFor)
	f.set(nil, b, nodeStatus{Node: "a", Clients: 99})
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7", "b:up:1", "c:down:2"})

	// Forgotten forget after it was last seen; back when it answers again.
	f.advance(10*time.Second - reuseFor/2 - 3*reuseFor)
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7", "b:up:1", "c:down:2"})
	f.advance(reuseFor)
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7", "b:up:1"})
	f.advance(reuseFor)
	f.set(nil, b, c)
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7", "b:up:1", "c:up:2"})

	// Bad answers are skipped.
	f.advance(reuseFor)
	f.set(nil, b, nodeStatus{})
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7", "b:up:1", "c:down:2"})
}

// Pages asking at once share one round; a page that gives up gets what is
// known.
func TestClusterPanelOneRound(t *testing.T) {
	p, f := newFakePanel(t, time.Minute)
	f.set(nil, nodeStatus{Node: "b", Clients: 1})
	f.block = make(chan struct{})

	const pages = 8
	var wg sync.WaitGroup
	views := make([][]string, pages)
	for i := range pages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i] = rows(p.view(context.Background()))
		}()
	}
	// A page whose request ends while the round runs.
	eventually(t, 5*time.Second, "round started", func() (bool, any) { return f.rounds.Load() == 1, f.rounds.Load() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	testkit.Equal(t, rows(p.view(ctx)), []string{"a:up:7"})

	close(f.block)
	wg.Wait()
	testkit.Equal(t, f.rounds.Load(), int32(1))
	for i, v := range views {
		testkit.Equal(t, v, []string{"a:up:7", "b:up:1"}, "page %d", i)
	}
}

// A round never waits longer than askTimeout, whatever the other nodes do.
func TestClusterPanelAskTimeout(t *testing.T) {
	p, f := newFakePanel(t, time.Minute)
	f.block = make(chan struct{}) // never closed: only the round's own timeout ends it
	start := time.Now()
	testkit.Equal(t, rows(p.view(context.Background())), []string{"a:up:7"})
	took := time.Since(start)
	testkit.True(t, took >= askTimeout && took < askTimeout+time.Second, "round took %v", took)
}
