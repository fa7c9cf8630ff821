package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Proc is one process of the cluster: how to start it and, once started,
// its pid. Started by Start it is a child of this process (tests);
// started by StartDetached it outlives it (abacus dev cluster up).
type Proc struct {
	Name string   `json:"name"`
	Kind string   `json:"kind"` // nats, abacus or balancer
	Args []string `json:"args"` // Args[0] is the binary
	Env  []string `json:"env,omitempty"`
	Log  string   `json:"log"`
	// HTTP is the host:port whose /readyz says the process is ready
	// (empty for nats nodes: their client port answering is enough).
	HTTP  string   `json:"http,omitempty"`
	Roles []string `json:"roles,omitempty"`
	Dial  string   `json:"dial,omitempty"` // host:port that accepts TCP once up
	Pid   int      `json:"pid,omitempty"`

	cmd  *exec.Cmd
	done chan struct{}
}

func (p *Proc) command() (*exec.Cmd, *os.File, error) {
	if err := os.MkdirAll(filepath.Dir(p.Log), 0o750); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(f, "\n==== %s start %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(p.Args, " "))
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd, f, nil
}

// Start starts the process as a child of this one.
func (p *Proc) Start() error {
	cmd, f, err := p.command()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	p.cmd, p.Pid = cmd, cmd.Process.Pid
	done := make(chan struct{})
	p.done = done
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	return nil
}

// StartDetached starts the process in its own session, so it keeps
// running after this one exits and a terminal's Ctrl-C does not reach it.
func (p *Proc) StartDetached() error {
	cmd, f, err := p.command()
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	p.Pid = cmd.Process.Pid
	return cmd.Process.Release()
}

// Alive tells whether the process runs.
func (p *Proc) Alive() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	if p.Pid <= 0 {
		return false
	}
	if err := syscall.Kill(p.Pid, 0); err != nil {
		return false
	}
	// A zombie or a reused pid is not ours: check the command line.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid))
	if err != nil {
		return true // no /proc: trust kill(0)
	}
	return strings.HasPrefix(string(b), p.Args[0]) || strings.Contains(string(b), filepath.Base(p.Args[0]))
}

// Exited is closed when a child started by Start has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Signal sends sig; a process not running is no error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s (pid %d): %w", p.Name, p.Pid, err)
	}
	return nil
}

// Kill sends SIGKILL (kill -9) and waits until the process is gone.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.Wait(10 * time.Second)
}

// Stop sends SIGTERM, waits up to timeout, then kills.
func (p *Proc) Stop(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if p.Wait(timeout) == nil {
		return nil
	}
	return p.Kill()
}

// Wait waits until the process has exited.
func (p *Proc) Wait(timeout time.Duration) error {
	deadline := time.After(timeout)
	if p.done != nil {
		select {
		case <-p.done:
			return nil
		case <-deadline:
			return fmt.Errorf("%s (pid %d) still runs after %s", p.Name, p.Pid, timeout)
		}
	}
	for p.Alive() {
		select {
		case <-deadline:
			return fmt.Errorf("%s (pid %d) still runs after %s", p.Name, p.Pid, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Ready tells whether the process answers: /readyz 200 for HTTP nodes, an
// accepted TCP connection for the others.
func (p *Proc) Ready(ctx context.Context) bool {
	if p.HTTP != "" {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTP+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if p.Dial != "" {
		return dialable(p.Dial)
	}
	return p.Alive()
}

// WaitReady waits until Ready, the process exits or timeout passes.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.Ready(ctx) {
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("%s exited before it was ready; its log %s ends:\n%s", p.Name, p.Log, p.Tail(3000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; its log %s ends:\n%s", p.Name, timeout, p.Log, p.Tail(3000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Tail is the end of the process's log, at most n bytes.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
