// Package azurite starts and stops the Azurite storage emulator for tests,
// the demo and chaos experiments.
//
// Azurite is pinned in test/azurite/package.json and installed into
// test/azurite/node_modules with `npm ci` (done automatically, under a file
// lock, the first time a test needs it). Only the Go standard library is used
// here, so importing this package adds nothing to go.mod.
//
// Test packages that need storage get a connection string with ForTest and
// must call Main from their TestMain so the shared server is stopped when the
// test binary ends:
//
//	func TestMain(m *testing.M) { azurite.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		connStr := azurite.ForTest(t)
//		...
//	}
//
// Setting AZDURABLE_TEST_STORAGE to a connection string makes ForTest use
// that storage instead of starting Azurite.
//
// Flags follow the measured facts in shared/AZURITE.md: --silent,
// --skipApiVersionCheck and --disableTelemetry are always passed, data lives
// on disk in a fresh --location folder, and --inMemoryPersistence is never
// used.
package azurite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// AccountName is Azurite's well-known development account.
	AccountName = "devstoreaccount1"
	// AccountKey is the well-known key of AccountName.
	AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

	// Default ports, used by UseDevelopmentStorage=true.
	DefaultBlobPort  = 10000
	DefaultQueuePort = 10001
	DefaultTablePort = 10002

	// EnvTestStorage, when set, is the connection string ForTest returns
	// instead of starting Azurite.
	EnvTestStorage = "AZDURABLE_TEST_STORAGE"
	// EnvBin overrides the path of the azurite executable.
	EnvBin = "AZURITE_BIN"

	// Host is the loopback address Azurite listens on.
	Host = "127.0.0.1"

	defaultStartTimeout = 30 * time.Second
	defaultStopTimeout  = 10 * time.Second
	npmTimeout          = 10 * time.Minute
	tailSize            = 8 << 10
	maxPortAttempts     = 5
)

// Options configure Start. The zero value is ready to use.
type Options struct {
	// BlobPort, QueuePort and TablePort are the ports to listen on. Zero
	// picks a free loopback port.
	BlobPort, QueuePort, TablePort int

	// Location is the data folder. Empty means a fresh temporary folder,
	// which Stop removes unless KeepData is set. A folder given here is
	// never removed.
	Location string

	// KeepData keeps the temporary data folder after Stop.
	KeepData bool

	// StartTimeout bounds how long Start (and Restart) wait for the three
	// ports to accept connections. Default 30s.
	StartTimeout time.Duration

	// StopTimeout bounds how long Stop waits after SIGTERM before it sends
	// SIGKILL. Default 10s.
	StopTimeout time.Duration

	// ExtraArgs are appended to the azurite command line.
	ExtraArgs []string

	// Output, if set, also receives Azurite's stdout and stderr.
	Output io.Writer
}

// Server is a running Azurite process. Its methods are safe for concurrent
// use.
type Server struct {
	bin          string
	location     string
	ownsLocation bool
	keepData     bool
	startTimeout time.Duration
	stopTimeout  time.Duration
	extraArgs    []string
	output       io.Writer

	blobPort, queuePort, tablePort int

	mu      sync.Mutex
	proc    *process // nil when not running
	stopped bool     // Stop was called
}

// process is one run of the azurite executable.
type process struct {
	cmd     *exec.Cmd
	pid     int
	tail    *tailBuffer
	started time.Time
	done    chan struct{} // closed when the process has exited and been reaped
	waitErr error         // valid after done is closed
}

// Start starts Azurite and waits until its blob, queue and table ports
// accept TCP connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := findBinary(ctx)
	if err != nil {
		return nil, err
	}
	s := &Server{
		bin:          bin,
		location:     opts.Location,
		keepData:     opts.KeepData,
		startTimeout: opts.StartTimeout,
		stopTimeout:  opts.StopTimeout,
		extraArgs:    append([]string(nil), opts.ExtraArgs...),
		output:       opts.Output,
	}
	if s.startTimeout <= 0 {
		s.startTimeout = defaultStartTimeout
	}
	if s.stopTimeout <= 0 {
		s.stopTimeout = defaultStopTimeout
	}
	if s.location == "" {
		dir, err := os.MkdirTemp("", "azurite-*")
		if err != nil {
			return nil, fmt.Errorf("azurite: data folder: %w", err)
		}
		s.location = dir
		s.ownsLocation = true
	} else if err := os.MkdirAll(s.location, 0o755); err != nil {
		return nil, fmt.Errorf("azurite: data folder: %w", err)
	}

	pickPorts := opts.BlobPort == 0 || opts.QueuePort == 0 || opts.TablePort == 0
	attempts := 1
	if pickPorts {
		attempts = maxPortAttempts
	}
	for attempt := 1; ; attempt++ {
		s.blobPort, s.queuePort, s.tablePort = opts.BlobPort, opts.QueuePort, opts.TablePort
		if pickPorts {
			if err := s.pickFreePorts(); err != nil {
				s.removeData()
				return nil, err
			}
		}
		s.mu.Lock()
		err = s.startLocked(ctx)
		s.mu.Unlock()
		if err == nil {
			return s, nil
		}
		// A picked port may have been taken between our probe and Azurite's
		// bind: pick again, unless the busy port is one the caller fixed.
		var inUse *addrInUseError
		if attempt < attempts && errors.As(err, &inUse) && ctx.Err() == nil &&
			(inUse.port == 0 || !slices.Contains([]int{opts.BlobPort, opts.QueuePort, opts.TablePort}, inUse.port)) {
			continue
		}
		s.removeData()
		return nil, err
	}
}

var errAddrInUse = errors.New("address already in use")

// addrInUseError is a startup failure because a port was taken (Azurite's
// "listen EADDRINUSE: address already in use 127.0.0.1:PORT").
type addrInUseError struct {
	port int // 0 if not found in the output
	err  error
}

func (e *addrInUseError) Error() string { return e.err.Error() }
func (e *addrInUseError) Unwrap() error { return e.err }
func (e *addrInUseError) Is(target error) bool {
	return target == errAddrInUse
}

var addrInUseRE = regexp.MustCompile(`EADDRINUSE[^\n]*?:(\d+)`)

// pickFreePorts fills the ports that are zero with distinct free loopback
// ports, found by listening on port 0 and closing the listeners.
func (s *Server) pickFreePorts() error {
	var ports [3]int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
		if err != nil {
			return fmt.Errorf("azurite: pick free port: %w", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	for i, p := range []*int{&s.blobPort, &s.queuePort, &s.tablePort} {
		if *p == 0 {
			*p = ports[i]
		}
	}
	return nil
}

func (s *Server) args() []string {
	args := []string{
		"--silent",
		"--skipApiVersionCheck",
		"--disableTelemetry",
		"--blobHost", Host,
		"--queueHost", Host,
		"--tableHost", Host,
		"--blobPort", strconv.Itoa(s.blobPort),
		"--queuePort", strconv.Itoa(s.queuePort),
		"--tablePort", strconv.Itoa(s.tablePort),
		"--location", s.location,
	}
	return append(args, s.extraArgs...)
}

// startLocked launches the process and waits for readiness. s.mu is held.
func (s *Server) startLocked(ctx context.Context) error {
	p, err := s.launch()
	if err != nil {
		return err
	}
	if err := s.waitReady(ctx, p); err != nil {
		p.kill()
		return err
	}
	s.proc = p
	return nil
}

// launch starts the process in its own process group. It is started from a
// goroutine locked to its OS thread that stays alive until the process exits,
// so that Pdeathsig (which Linux ties to the creating thread) kills Azurite
// if the test binary dies without calling Stop, for example on a test
// timeout.
func (s *Server) launch() (*process, error) {
	p := &process{tail: &tailBuffer{}, done: make(chan struct{})}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.location
	cmd.Stdin = nil
	var out io.Writer = p.tail
	if s.output != nil {
		out = io.MultiWriter(p.tail, s.output)
	}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd = cmd

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		p.started = time.Now()
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("azurite: start %s: %w", s.bin, err)
	}
	return p, nil
}

// waitReady waits until all three ports accept connections and the process
// has reported that it listens on them, or fails if the process exits, ctx
// ends or the start timeout passes.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, s.startTimeout)
	defer cancel()
	ports := []int{s.blobPort, s.queuePort, s.tablePort}
	up := make([]bool, len(ports))
	var allUpSince time.Time
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		allUp := true
		for i, port := range ports {
			if !up[i] {
				up[i] = dialOK(port, 200*time.Millisecond)
			}
			allUp = allUp && up[i]
		}
		if allUp {
			if allUpSince.IsZero() {
				allUpSince = time.Now()
			}
			// Azurite prints "successfully listening at http://host:port"
			// even with --silent. Seeing it for every port proves that this
			// process, not some other one, owns the ports. If the output
			// format ever changes, a process still alive 2s after the ports
			// opened is accepted too.
			if p.tail.listeningOnAll(ports) || time.Since(allUpSince) > 2*time.Second {
				select {
				case <-p.done:
				default:
					return nil
				}
			}
		}
		select {
		case <-p.done:
			tail := p.tail.String()
			err := fmt.Errorf("azurite exited during startup (%v) on ports %d/%d/%d; output tail:\n%s",
				p.waitErr, s.blobPort, s.queuePort, s.tablePort, tail)
			if strings.Contains(tail, "EADDRINUSE") {
				e := &addrInUseError{err: err}
				if m := addrInUseRE.FindStringSubmatch(tail); m != nil {
					e.port, _ = strconv.Atoi(m[1])
				}
				return e
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("azurite not ready on ports %d/%d/%d after %v: %w; output tail:\n%s",
				s.blobPort, s.queuePort, s.tablePort, time.Since(p.started).Round(time.Millisecond),
				context.Cause(ctx), p.tail.String())
		case <-tick.C:
		}
	}
}

func dialOK(port int, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(Host, strconv.Itoa(port)), timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// signal sends sig to the process group.
func (p *process) signal(sig syscall.Signal) error {
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// kill sends SIGKILL to the group and waits for the exit.
func (p *process) kill() {
	_ = p.signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM to the group and waits up to timeout, then SIGKILL.
// It reports whether SIGKILL was needed.
func (p *process) terminate(timeout time.Duration) (killed bool, err error) {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("azurite: SIGTERM %d: %w", p.pid, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		// Reap any child left in the group (Azurite has none today).
		_ = p.signal(syscall.SIGKILL)
		return false, nil
	case <-t.C:
	}
	p.kill()
	return true, nil
}

// Stop sends SIGTERM to Azurite's process group, waits for the exit (up to
// Options.StopTimeout, then SIGKILL), and removes the temporary data folder
// unless Options.KeepData was set. Calling Stop again does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	if p := s.proc; p != nil {
		s.proc = nil
		if _, err := p.terminate(s.stopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.removeData(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Kill sends SIGKILL to Azurite and waits for it to exit, keeping the data
// folder. This is the hard crash: Azurite loses up to its last ~5s of
// writes. Restart brings it back.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("azurite: server stopped")
	}
	if p := s.proc; p != nil {
		s.proc = nil
		p.kill()
	}
	return nil
}

// Restart stops Azurite with SIGTERM (which keeps all data) and starts it
// again on the same ports with the same data folder. It works after Kill too.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("azurite: server stopped")
	}
	if p := s.proc; p != nil {
		s.proc = nil
		if _, err := p.terminate(s.stopTimeout); err != nil {
			return err
		}
	}
	// The old ports are free again at once (node listens with SO_REUSEADDR),
	// but retry a bind failure briefly in case another process raced us.
	deadline := time.Now().Add(s.startTimeout)
	for {
		err := s.startLocked(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errAddrInUse) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) removeData() error {
	if !s.ownsLocation || s.keepData || s.location == "" {
		return nil
	}
	if err := os.RemoveAll(s.location); err != nil {
		return fmt.Errorf("azurite: remove data folder: %w", err)
	}
	return nil
}

// ConnectionString is the explicit connection string for this server.
func (s *Server) ConnectionString() string {
	return ConnectionString(s.blobPort, s.queuePort, s.tablePort)
}

// BlobPort is the blob service port.
func (s *Server) BlobPort() int { return s.blobPort }

// QueuePort is the queue service port.
func (s *Server) QueuePort() int { return s.queuePort }

// TablePort is the table service port.
func (s *Server) TablePort() int { return s.tablePort }

// Location is the data folder.
func (s *Server) Location() string { return s.location }

// PID is the process id of the running Azurite, or 0 when it is not running
// (after Stop or Kill). It changes on Restart.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid
}

// Output returns the last few KiB of Azurite's stdout and stderr from the
// current (or last) run.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return ""
	}
	return s.proc.tail.String()
}

// ConnectionString builds the explicit devstoreaccount1 connection string
// for Azurite listening on 127.0.0.1 with the given ports.
func ConnectionString(blob, queue, table int) string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"+
		"BlobEndpoint=http://%s:%d/%s;QueueEndpoint=http://%s:%d/%s;TableEndpoint=http://%s:%d/%s;",
		AccountName, AccountKey,
		Host, blob, AccountName, Host, queue, AccountName, Host, table, AccountName)
}

// Expand turns "UseDevelopmentStorage=true" (which none of the Go Azure SDKs
// accept) into the explicit connection string for Azurite on its default
// ports 10000/10001/10002. Any other connection string is returned
// unchanged.
func Expand(connStr string) string {
	isDev := false
	for _, part := range strings.Split(connStr, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return connStr
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !strings.EqualFold(k, "UseDevelopmentStorage") {
			// DevelopmentStorageProxyUri and the like: not supported, leave
			// the string alone.
			return connStr
		}
		if !strings.EqualFold(v, "true") {
			return connStr
		}
		isDev = true
	}
	if !isDev {
		return connStr
	}
	return ConnectionString(DefaultBlobPort, DefaultQueuePort, DefaultTablePort)
}

// --- shared server for tests ---

var shared struct {
	once   sync.Once
	mu     sync.Mutex
	server *Server
	err    error
}

// ForTest returns a storage connection string for a test. If the
// AZDURABLE_TEST_STORAGE environment variable is set, its value is returned
// (with UseDevelopmentStorage=true expanded). Otherwise one Azurite server,
// shared by every test in the test binary, is started on first use; Main
// stops it. If Azurite cannot start, the test fails (it is never skipped).
//
// Tests sharing the server must use their own containers, queues and tables
// (e.g. names derived from t.Name() plus a random suffix), and must not stop,
// kill or restart it: chaos tests that restart storage Start their own
// Server.
func ForTest(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvTestStorage); v != "" {
		return Expand(v)
	}
	s, err := sharedServer()
	if err != nil {
		t.Fatalf("azurite: cannot start the Azurite storage emulator needed by this test: %v\n"+
			"(install Node.js and npm, run `npm ci --prefix test/azurite`, or set %s to a storage connection string)",
			err, EnvTestStorage)
	}
	return s.ConnectionString()
}

func sharedServer() (*Server, error) {
	shared.once.Do(func() {
		s, err := Start(context.Background(), Options{})
		shared.mu.Lock()
		shared.server, shared.err = s, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.server, shared.err
}

// Main runs the tests and then stops the shared server started by ForTest,
// if any, and exits. Test packages that use ForTest call it from TestMain:
//
//	func TestMain(m *testing.M) { azurite.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	s := shared.server
	shared.mu.Unlock()
	if s != nil {
		if err := s.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "azurite: stop shared server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// --- finding and installing the binary ---

// findBinary returns the azurite executable: $AZURITE_BIN, or
// <repo>/test/azurite/node_modules/.bin/azurite, running `npm ci` first if
// it is not installed.
func findBinary(ctx context.Context) (string, error) {
	if bin := os.Getenv(EnvBin); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("azurite: %s=%s: %w", EnvBin, bin, err)
		}
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "test", "azurite")
	bin := filepath.Join(dir, "node_modules", ".bin", "azurite")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := npmInstall(ctx, dir, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// repoRoot walks up from the working directory (a test's working directory
// is its package folder) to the folder holding go.mod and test/azurite.
// If that fails, it tries the folder of this source file.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, "test", "azurite", "package.json")) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("azurite: cannot find the repository root (a folder with go.mod and test/azurite/package.json) above %v; set %s", starts, EnvBin)
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// npmInstall runs `npm ci` in dir under an exclusive flock, so parallel test
// binaries install once.
func npmInstall(ctx context.Context, dir, bin string) error {
	lockPath := filepath.Join(dir, ".npm-install.lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("azurite: open %s: %w", lockPath, err)
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("azurite: flock %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	if _, err := os.Stat(bin); err == nil {
		return nil // another process installed it while we waited
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("azurite: %s is not installed and npm is not on PATH (install Node.js and npm): %w", bin, err)
	}
	ctx, cancel := context.WithTimeout(ctx, npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("azurite: npm ci in %s: %w\n%s", dir, err, lastBytes(out.Bytes(), tailSize))
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("azurite: npm ci in %s succeeded but %s is missing: %w", dir, bin, err)
	}
	return nil
}

// --- output tail ---

// tailBuffer keeps the last tailSize bytes written to it, and remembers the
// ports Azurite said it listens on.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	line      []byte
	listening map[int]bool
}

const listeningMarker = "successfully listening at http://"

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*tailSize {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailSize:]...)
	}
	for _, c := range p {
		if c != '\n' {
			if len(b.line) < 1024 {
				b.line = append(b.line, c)
			}
			continue
		}
		b.scanLine()
		b.line = b.line[:0]
	}
	return len(p), nil
}

func (b *tailBuffer) scanLine() {
	line := string(b.line)
	i := strings.Index(line, listeningMarker)
	if i < 0 {
		return
	}
	hostPort := strings.TrimSpace(line[i+len(listeningMarker):])
	_, portStr, err := net.SplitHostPort(hostPort)
	if err != nil {
		return
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return
	}
	if b.listening == nil {
		b.listening = map[int]bool{}
	}
	b.listening[port] = true
}

func (b *tailBuffer) listeningOnAll(ports []int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range ports {
		if !b.listening[p] {
			return false
		}
	}
	return true
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(lastBytes(b.buf, tailSize))
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
