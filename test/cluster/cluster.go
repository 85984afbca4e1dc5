// Package cluster runs worker hosts (cmd/worker) as real processes against
// one task hub, for the demo, the multi-host tests, the chaos tests and the
// benchmark. It builds the worker binary once, starts hosts with their own
// host ids, finds each host's HTTP address from its first log lines, reads
// its /status, and delivers signals (SIGTERM, SIGKILL, SIGSTOP, SIGCONT).
//
// Hosts run in their own process group with Pdeathsig set, so a dying parent
// takes them along; Close stops every host that is still running.
package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
)

// Options configure a cluster.
type Options struct {
	// ConnectionString of the storage; passed to the hosts through the
	// environment, never on the command line.
	ConnectionString string
	// TaskHub and Partitions of the hosts.
	TaskHub    string
	Partitions int
	// Args are extra worker flags for every host.
	Args []string
	// Env are extra environment variables (KEY=VALUE) for every host.
	Env []string
	// Binary is the worker executable. Empty builds cmd/worker into Dir.
	Binary string
	// Dir holds the binary and the hosts' logs. Empty makes a temporary
	// folder that Close removes.
	Dir string
	// Logs, if set, also receives every host's output, each line prefixed
	// with the host id.
	Logs io.Writer
}

// Cluster is a set of worker hosts on one task hub.
type Cluster struct {
	opts    Options
	bin     string
	dir     string
	ownsDir bool

	mu    sync.Mutex
	hosts []*Host
}

// New builds the worker binary (unless Options.Binary is set) and returns an
// empty cluster.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	c := &Cluster{opts: opts, dir: opts.Dir, bin: opts.Binary}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "azdurable-cluster-*")
		if err != nil {
			return nil, err
		}
		c.dir, c.ownsDir = d, true
	}
	if c.bin == "" {
		bin, err := BuildWorker(ctx, c.dir)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.bin = bin
	}
	return c, nil
}

// BuildWorker compiles cmd/worker into dir and returns the binary's path.
func BuildWorker(ctx context.Context, dir string) (string, error) {
	root, err := azurite.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/worker")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build cmd/worker: %v\n%s", err, out)
	}
	return bin, nil
}

// Dir is the folder with the binary and the host logs.
func (c *Cluster) Dir() string { return c.dir }

// Hosts returns every host started so far, running or not.
func (c *Cluster) Hosts() []*Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Host(nil), c.hosts...)
}

// Host is one worker process.
type Host struct {
	ID      string
	Addr    string // host:port of its HTTP server
	LogPath string
	Started time.Time

	cmd     *exec.Cmd
	done    chan struct{}
	exited  time.Time
	waitErr error
}

// StartHost starts a worker with the given host id and waits until it
// reports its HTTP address.
func (c *Cluster) StartHost(ctx context.Context, id string, args ...string) (*Host, error) {
	h := &Host{ID: id, LogPath: filepath.Join(c.dir, id+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(h.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	argv := []string{"-host-id", id, "-taskhub", c.opts.TaskHub, "-http", "127.0.0.1:0", "-log-format", "json"}
	if c.opts.Partitions > 0 {
		argv = append(argv, "-partitions", fmt.Sprint(c.opts.Partitions))
	}
	argv = append(argv, c.opts.Args...)
	argv = append(argv, args...)
	cmd := exec.Command(c.bin, argv...)
	cmd.Env = append(os.Environ(), "AZDURABLE_CONNECTION_STRING="+c.opts.ConnectionString)
	cmd.Env = append(cmd.Env, c.opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	h.cmd = cmd

	started := make(chan error, 1)
	go func() {
		// Pdeathsig follows the thread that started the child: keep it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		h.Started = time.Now()
		started <- nil
		h.waitErr = cmd.Wait()
		h.exited = time.Now()
		pw.Close()
		close(h.done)
	}()
	if err := <-started; err != nil {
		logf.Close()
		return nil, fmt.Errorf("start host %s: %w", id, err)
	}
	addr := make(chan string, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if c.opts.Logs != nil {
				fmt.Fprintf(c.opts.Logs, "[%s] %s\n", id, line)
			}
			if !found {
				if a := listenAddr(line); a != "" {
					found = true
					addr <- a
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	c.mu.Lock()
	c.hosts = append(c.hosts, h)
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	select {
	case h.Addr = <-addr:
		return h, nil
	case <-h.done:
		return nil, fmt.Errorf("host %s exited before listening (%v); log: %s\n%s", id, h.waitErr, h.LogPath, tail(h.LogPath))
	case <-ctx.Done():
		h.Kill()
		return nil, fmt.Errorf("host %s did not report its HTTP address: %w; log: %s", id, ctx.Err(), h.LogPath)
	}
}

// listenAddr finds the address in the worker's "listening" log line.
func listenAddr(line string) string {
	var rec struct {
		Msg  string `json:"message"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Addr == "" {
		return ""
	}
	if !strings.Contains(rec.Msg, "listening") {
		return ""
	}
	return rec.Addr
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// PID is the host's process id.
func (h *Host) PID() int { return h.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (h *Host) Running() bool {
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// Done is closed when the process has exited.
func (h *Host) Done() <-chan struct{} { return h.done }

// ExitedAt is when the process exited (zero while it runs).
func (h *Host) ExitedAt() time.Time {
	select {
	case <-h.done:
		return h.exited
	default:
		return time.Time{}
	}
}

// Signal sends sig to the host process.
func (h *Host) Signal(sig syscall.Signal) error {
	if !h.Running() {
		return nil
	}
	return h.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the exit.
func (h *Host) Kill() {
	h.Signal(syscall.SIGKILL)
	<-h.done
}

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
// It returns the process's exit error (nil on a clean exit).
func (h *Host) Stop(timeout time.Duration) error {
	h.Signal(syscall.SIGCONT) // a stopped process cannot handle SIGTERM
	h.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-h.done:
		return h.waitErr
	case <-t.C:
		h.Kill()
		return fmt.Errorf("host %s did not exit within %v of SIGTERM", h.ID, timeout)
	}
}

// ExitErr is the result of the process's Wait, once it has exited.
func (h *Host) ExitErr() error {
	<-h.done
	return h.waitErr
}

// Status is the worker's /status document.
type Status struct {
	HostID  string             `json:"hostId"`
	Owned   []int              `json:"ownedPartitions"`
	Ready   bool               `json:"ready"`
	Runtime *core.RuntimeStats `json:"runtime,omitempty"`
	// Storage counts the host's storage operations by kind.
	Storage map[string]int64 `json:"storage,omitempty"`
}

// Episodes is how many episodes the host has committed.
func (s *Status) Episodes() int64 {
	if s.Runtime == nil {
		return 0
	}
	return s.Runtime.Episodes
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// Status reads the host's /status.
func (h *Host) Status(ctx context.Context) (*Status, error) {
	if !h.Running() {
		return nil, errors.New("host " + h.ID + " is not running")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.Addr+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("host %s: /status: %s", h.ID, resp.Status)
	}
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("host %s: /status: %w", h.ID, err)
	}
	return &s, nil
}

// Get fetches a path from the host's HTTP server and returns the body.
func (h *Host) Get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.Addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Ownership reads /status of every running host and returns host id →
// owned partitions. Hosts that do not answer are left out.
func (c *Cluster) Ownership(ctx context.Context) map[string][]int {
	out := map[string][]int{}
	for _, h := range c.Hosts() {
		if !h.Running() {
			continue
		}
		if s, err := h.Status(ctx); err == nil {
			out[h.ID] = s.Owned
		}
	}
	return out
}

// Close stops every running host (SIGTERM, then SIGKILL after 10 s) and
// removes the temporary folder.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, h := range c.Hosts() {
		wg.Add(1)
		go func() { defer wg.Done(); h.Stop(10 * time.Second) }()
	}
	wg.Wait()
	if c.ownsDir {
		os.RemoveAll(c.dir)
	}
}
