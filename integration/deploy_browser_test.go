package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// ---------------------------------------------------------------- browser

// requireChromium returns the Chromium executable ($IOSWARM_CHROMIUM, else Debian's
// chromium), skipping the test when there is none.
func requireChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IOSWARM_CHROMIUM"); p != "" {
		return p
	}
	for _, c := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
	return ""
}

// browserLog logs to t until the test ends; Chromium's own output (noisy: D-Bus, GPU, …) is
// kept, the last lines of it, and logged only when the test fails.
type browserLog struct {
	mu     sync.Mutex
	t      *testing.T
	done   bool
	output []string
}

func (l *browserLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf(format, args...)
	}
}

// Write takes Chromium's output.
func (l *browserLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		l.output = append(l.output, sc.Text())
	}
	if n := len(l.output); n > 200 {
		l.output = append(l.output[:0:0], l.output[n-200:]...)
	}
	return len(p), nil
}

// stop ends the logging; after a failure it logs Chromium's output first.
func (l *browserLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t.Failed() && len(l.output) > 0 {
		l.t.Logf("chromium output (last lines):\n%s", strings.Join(l.output, "\n"))
	}
	l.done = true
}

// TestBrowserDemo opens the demo page through nginx in two browser contexts (separate
// cookies and storage, like two users), pinned to node1 and node2 by the page's ?node= hint,
// which the page passes on every Socket.IO request and nginx routes on. A message typed in
// one page appears in the other, labelled node1 → node2.
func TestBrowserDemo(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	tp := startDeployTopology(t)
	start := time.Now()

	log := &browserLog{t: t}
	t.Cleanup(log.stop)
	userData := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(userData),
		chromedp.CombinedOutput(log),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithErrorf(log.logf))
	defer cancelBrowser()
	testkit.NoError(t, chromedp.Do(browser), "start chromium")
	defer func() {
		// Close the browser gracefully (within ctx's deadline), then make sure no process
		// of it is left.
		if err := chromedp.Cancel(browser); err != nil && !errors.Is(err, context.Canceled) {
			log.logf("close chromium: %v", err)
		}
		cancelAlloc()
		for _, pid := range processesWith(userData) {
			t.Errorf("chromium process %d left running; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()

	type page struct {
		name, node string
		ctx        context.Context
	}
	var pages []*page
	for _, p := range []struct{ name, node string }{{"alice", "node1"}, {"bob", "node2"}} {
		pctx, pcancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer pcancel()
		testkit.NoError(t, chromedp.Do(pctx), "%s: new browser context", p.name)
		go func() {
			for m, err := range chromedp.Console(pctx) {
				if err != nil {
					return
				}
				log.logf("%s console: %s", p.name, m)
			}
		}()
		pages = append(pages, &page{name: p.name, node: p.node, ctx: pctx})
	}
	show := func(pg *page) string {
		s, _ := chromedp.Run(pg.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		return s
	}
	poll := func(pg *page, what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(pg.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: %s: %v\npage text:\n%s", pg.name, what, err, show(pg))
		}
	}

	for _, pg := range pages {
		url := fmt.Sprintf("%s/?node=%s&name=%s&room=browser", tp.lb, pg.node, pg.name)
		testkit.NoError(t, chromedp.Do(pg.ctx, chromedp.Navigate(url)), "%s: open %s", pg.name, url)
	}
	for _, pg := range pages {
		poll(pg, "connected to "+pg.node, fmt.Sprintf(`document.body.dataset.node === %q`, pg.node))
		// Polling first, then the upgrade to WebSocket through nginx.
		poll(pg, "upgraded to websocket", `document.getElementById("transport").textContent === "websocket"`)
		poll(pg, "three nodes up on the panel", `document.querySelectorAll("#nodes tr.up").length === 3`)
	}
	t.Logf("both pages connected and upgraded after %v", time.Since(start).Round(time.Millisecond))

	alice, bob := pages[0], pages[1]
	const text = "hello bob, from node1"
	testkit.NoError(t, chromedp.Do(alice.ctx,
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send")),
	), "alice sends")
	find := fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].find(li => li.dataset.text === %q)`, text)
	poll(bob, "alice's message", find+` !== undefined`)
	got, err := chromedp.Run(bob.ctx, chromedp.Evaluate[map[string]string](`(() => { const li = `+find+`;
		return {from: li.dataset.from, via: li.dataset.via, who: li.querySelector(".who").textContent,
			route: li.querySelector(".route").textContent}; })()`))
	testkit.NoError(t, err)
	testkit.Equal(t, got, map[string]string{"from": "node1", "via": "node2", "who": "alice", "route": "node1 → node2"})
	// And alice sees her own message, delivered by her node.
	poll(alice, "her own message", find+`?.dataset.via === "node1"`)

	// Connection state recovery. Each page started a new session.
	sid := func(pg *page) string {
		t.Helper()
		id, err := chromedp.Run(pg.ctx, chromedp.Evaluate[string](`document.body.dataset.sid`))
		testkit.NoError(t, err)
		testkit.True(t, id != "", "%s: no socket id on the page", pg.name)
		return id
	}
	systemLine := func(prefix string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("#messages li.system")].some(li => li.textContent.startsWith(%q))`, prefix)
	}
	recovered := func(pg *page, id string) string {
		return fmt.Sprintf(`document.body.dataset.session === "recovered" && document.body.dataset.sid === %q && `+
			`document.body.dataset.node === %q && document.getElementById("session").textContent === " (recovered)" && `, id, pg.node) +
			systemLine("recovered: same id "+id)
	}
	for _, pg := range pages {
		poll(pg, "new session", `document.body.dataset.session === "new session" && `+systemLine("new session "+sid(pg)))
	}

	// Same node (works on one node, no cross-node recovery needed): bob drops his connection
	// (the page's button: the transport closes, no goodbye); the page reconnects to node2 and
	// shows that its session was recovered, with the same socket id; alice's message of the
	// meantime reaches it.
	bobID := sid(bob)
	testkit.NoError(t, chromedp.Do(bob.ctx, chromedp.Click(chromedp.CSS("#drop"))), "bob drops his connection")
	const whileDropped = "bob, are you there?"
	testkit.NoError(t, chromedp.Do(alice.ctx,
		chromedp.SendKeys(chromedp.CSS("#text"), whileDropped),
		chromedp.Click(chromedp.CSS("#send")),
	), "alice sends while bob is away")
	poll(bob, "recovered on node2 after a dropped connection", recovered(bob, bobID))
	poll(bob, "alice's message of the meantime", fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].some(li => li.dataset.text === %q)`, whileDropped))
	t.Logf("bob recovered after a dropped connection (%v)", time.Since(start).Round(time.Millisecond))

	// node1 restarts (SIGTERM, then started again): alice's page, pinned to node1, reconnects
	// to it and shows "recovered" with the same socket id, and gets bob's message of the
	// meantime. The session outlives node1's process only in Redis: this needs cross-node
	// connection state recovery in the Redis adapter.
	aliceID := sid(alice)
	t.Cleanup(func() {
		if !processAlive(tp.pids(t)["node1"]) {
			_, _ = tp.sh("start", "node1")
		}
	})
	out, err := tp.sh("stop", "node1")
	testkit.NoError(t, err, "cluster.sh stop node1:\n%s", out)
	poll(alice, "disconnected from node1", `document.body.dataset.node === ""`)
	const whileRestarting = "alice, node1 is restarting"
	testkit.NoError(t, chromedp.Do(bob.ctx,
		chromedp.SendKeys(chromedp.CSS("#text"), whileRestarting),
		chromedp.Click(chromedp.CSS("#send")),
	), "bob sends while node1 is down")
	poll(bob, "his own message", fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].some(li => li.dataset.text === %q)`, whileRestarting))
	out, err = tp.sh("start", "node1")
	testkit.NoError(t, err, "cluster.sh start node1:\n%s", out)
	poll(alice, "reconnected to node1 after its restart", `document.body.dataset.node === "node1"`)
	state, err := chromedp.Run(alice.ctx, chromedp.Evaluate[map[string]string](`({session: document.body.dataset.session, sid: document.body.dataset.sid})`))
	testkit.NoError(t, err)
	if state["session"] != "recovered" || state["sid"] != aliceID {
		t.Fatalf("alice's page, pinned to node1, reconnected after node1's restart with a %s (socket id %s, was %s), not recovered: "+
			"recovery across a node restart needs cross-node connection state recovery (sessions kept in Redis by the Redis adapter)\npage text:\n%s",
			state["session"], state["sid"], aliceID, show(alice))
	}
	poll(alice, "recovered on node1 after its restart", recovered(alice, aliceID))
	poll(alice, "bob's message of the meantime", fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].some(li => li.dataset.text === %q)`, whileRestarting))
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// processesWith returns the pids of the live processes whose command line contains s.
func processesWith(s string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) && processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
