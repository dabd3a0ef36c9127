package testkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ListeningPrefix starts the line a server program prints once it is ready.
const ListeningPrefix = "listening on "

// Process is a server program started by StartProcess.
type Process struct {
	// Addr is the address from the "listening on ADDR" line.
	Addr string
	// Name names the process in the test log.
	Name string

	cmd      *exec.Cmd
	drained  sync.WaitGroup // output copiers
	exited   chan struct{}  // closed once cmd.Wait returned
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// URL is "http://" + Addr.
func (p *Process) URL() string { return "http://" + p.Addr }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// StartProcess starts a server program, waits for its "listening on ADDR" line on stdout
// (until ctx is done, or 30 s when ctx has no deadline) and logs its output to the test
// log. At cleanup it stops the program with SIGTERM and fails the test unless it exits
// with status 0 within 5 s.
func StartProcess(t testing.TB, ctx context.Context, name string, args ...string) *Process {
	t.Helper()
	return startProcess(t, ctx, listeningLine, name, args...)
}

// listeningLine recognises "listening on ADDR".
func listeningLine(line string) (string, bool) {
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), ListeningPrefix)
	return strings.TrimSpace(addr), ok
}

// startProcess is StartProcess with a custom readiness line: ready returns the address and
// true for the line that tells the program is ready.
func startProcess(t testing.TB, ctx context.Context, ready func(line string) (string, bool), name string, args ...string) *Process {
	t.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	p := &Process{Name: filepath.Base(name), exited: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("testkit: %s: %v", p.Name, err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatalf("testkit: %s: %v", p.Name, err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testkit: start %s: %v", p.Name, err)
	}
	prefix := fmt.Sprintf("%s[%d]: ", p.Name, p.cmd.Process.Pid)

	readyc := make(chan string, 1)
	p.drained.Add(2)
	go func() {
		defer p.drained.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			t.Logf("%s%s", prefix, line)
			if !found {
				if addr, ok := ready(line); ok {
					found = true
					readyc <- addr
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		defer p.drained.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			t.Logf("%sstderr: %s", prefix, sc.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		p.drained.Wait() // Wait must not run before the pipes are read to the end
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()

	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("testkit: %v", err)
		}
	})

	select {
	case p.Addr = <-readyc:
		return p
	case <-p.exited:
		p.stopOnce.Do(func() {}) // reported here; nothing left for the cleanup to say
		t.Fatalf("testkit: %s exited before it was ready: %v", p.Name, p.waitErr)
	case <-ctx.Done():
		t.Fatalf("testkit: %s was not ready in time: %v", p.Name, ctx.Err())
	}
	return nil
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM and waits up to 5 s for the process to exit; it reports an error unless
// the exit status is 0 (it kills the process if it does not exit). Later calls return the
// first result. StartProcess calls it at cleanup.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop(syscall.SIGTERM, 5*time.Second) })
	return p.stopErr
}

// Kill kills the process (SIGKILL) and waits for it; the cleanup then checks nothing.
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

func (p *Process) stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("%s exited early: %w", p.Name, p.waitErr)
		}
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("%s did not exit cleanly after %v: %w", p.Name, sig, p.waitErr)
		}
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not exit within %v of %v; killed", p.Name, grace, sig)
	}
}
