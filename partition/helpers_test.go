package partition

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
)

// testOptions are short timings for in-process clusters: the defaults
// divided by 50, except the lease. Tests share two cores with other test
// binaries, and a process stalled for a second or two (GC, the race
// detector, an overloaded machine) must not pass for a dead host: a 4s
// lease lets a healthy host miss renewals for about 3s.
func testOptions(store leases.Store, id string, partitions int) Options {
	return Options{Store: store, HostID: id, Partitions: partitions,
		LeaseDuration: 4 * time.Second, RenewInterval: 200 * time.Millisecond,
		AcquireInterval: 30 * time.Millisecond, DrainTimeout: 100 * time.Millisecond}
}

// Logs of tests (PARTITION_TEST_LOG=1 with -v) need sub-millisecond times.
func init() { zerolog.TimeFieldFormat = "15:04:05.000000" }

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checker records which host runs each partition and reports a partition
// that two hosts run at once.
type checker struct {
	mu         sync.Mutex
	running    map[int]string
	violations []string
}

func newChecker() *checker { return &checker{running: map[int]string{}} }

func (c *checker) acquired(host string, p int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if other, ok := c.running[p]; ok {
		c.violations = append(c.violations, fmt.Sprintf("%s %s acquired partition %d while %s ran it", time.Now().Format("15:04:05.000000"), host, p, other))
	}
	c.running[p] = host
}

func (c *checker) released(host string, p int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[p] != host {
		c.violations = append(c.violations, fmt.Sprintf("%s %s released partition %d, run by %q", time.Now().Format("15:04:05.000000"), host, p, c.running[p]))
		return
	}
	delete(c.running, p)
}

func (c *checker) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.violations {
		t.Error(v)
	}
}

// fakeHandler is a core.PartitionHandler that records what it runs and can
// be told to fail opens or to drain slowly.
type fakeHandler struct {
	host string
	c    *checker
	// failOpen, when set, is asked before each open.
	failOpen func(p int) error
	// drain is how long PartitionReleased takes at most (until its ctx ends).
	drain time.Duration

	mu       sync.Mutex
	running  map[int]bool
	releases int
}

func (f *fakeHandler) PartitionAcquired(ctx context.Context, p int) error {
	if f.failOpen != nil {
		if err := f.failOpen(p); err != nil {
			return err
		}
	}
	f.c.acquired(f.host, p)
	f.mu.Lock()
	f.running[p] = true
	f.mu.Unlock()
	return nil
}

func (f *fakeHandler) PartitionReleased(ctx context.Context, p int) {
	if f.drain > 0 {
		select {
		case <-time.After(f.drain):
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	if !f.running[p] {
		f.mu.Unlock()
		panic(fmt.Sprintf("%s: PartitionReleased(%d) for a partition it does not run", f.host, p))
	}
	delete(f.running, p)
	f.releases++
	f.mu.Unlock()
	f.c.released(f.host, p)
}

func (f *fakeHandler) runningNow() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.running))
}

// errInjected is the failure a faultyStore returns.
var errInjected = &core.StorageError{Op: "test", Resource: "injected", Status: 503, Transient: true, Err: errors.New("injected fault")}

// faultyStore wraps a store, counts calls, and can fail or hang every call.
type faultyStore struct {
	leases.Store
	fail, hang atomic.Bool
	mu         sync.Mutex
	calls      map[string]int
}

func newFaultyStore(s leases.Store) *faultyStore {
	return &faultyStore{Store: s, calls: map[string]int{}}
}

func (f *faultyStore) call(ctx context.Context, op string) error {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
	if f.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if f.fail.Load() {
		return errInjected
	}
	return nil
}

func (f *faultyStore) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

func (f *faultyStore) Acquire(ctx context.Context, p int, owner string, d time.Duration) (*leases.Lease, error) {
	if err := f.call(ctx, "acquire"); err != nil {
		return nil, err
	}
	return f.Store.Acquire(ctx, p, owner, d)
}

func (f *faultyStore) Renew(ctx context.Context, l *leases.Lease) error {
	if err := f.call(ctx, "renew"); err != nil {
		return err
	}
	return f.Store.Renew(ctx, l)
}

func (f *faultyStore) Release(ctx context.Context, l *leases.Lease) error {
	if err := f.call(ctx, "release"); err != nil {
		return err
	}
	return f.Store.Release(ctx, l)
}

func (f *faultyStore) Change(ctx context.Context, l *leases.Lease, owner string) (*leases.Lease, error) {
	if err := f.call(ctx, "change"); err != nil {
		return nil, err
	}
	return f.Store.Change(ctx, l, owner)
}

func (f *faultyStore) List(ctx context.Context) (*leases.Snapshot, error) {
	if err := f.call(ctx, "list"); err != nil {
		return nil, err
	}
	return f.Store.List(ctx)
}

func (f *faultyStore) PutHost(ctx context.Context, h *leases.Host) error {
	if err := f.call(ctx, "put-host"); err != nil {
		return err
	}
	return f.Store.PutHost(ctx, h)
}

func (f *faultyStore) DeleteHost(ctx context.Context, id string) error {
	if err := f.call(ctx, "delete-host"); err != nil {
		return err
	}
	return f.Store.DeleteHost(ctx, id)
}

// cluster is several managers in one process on one store.
type cluster struct {
	t          *testing.T
	store      leases.Store
	partitions int
	c          *checker
	hosts      []*testHost
	// options adjusts each host's options.
	options func(*Options)
	// timings adjusts each host's derived timings.
	timings func(*timings)
}

type testHost struct {
	id      string
	m       *Manager
	h       *fakeHandler
	store   *faultyStore
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func newCluster(t *testing.T, store leases.Store, partitions int) *cluster {
	c := &cluster{t: t, store: store, partitions: partitions, c: newChecker()}
	t.Cleanup(func() {
		for _, h := range c.hosts {
			h.stop(t)
		}
		c.c.check(t)
	})
	return c
}

// start runs a new manager; tweak adjusts the host before it runs.
func (c *cluster) start(id string, tweak ...func(*testHost)) *testHost {
	c.t.Helper()
	fs := newFaultyStore(c.store)
	o := testOptions(fs, id, c.partitions)
	if c.options != nil {
		c.options(&o)
	}
	if testing.Verbose() && os.Getenv("PARTITION_TEST_LOG") != "" {
		l := zerolog.New(zerolog.NewTestWriter(c.t)).With().Timestamp().Logger()
		o.Logger = &l
	}
	m, err := New(o)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.timings != nil {
		c.timings(&m.t)
	}
	h := &fakeHandler{host: id, c: c.c, running: map[int]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	th := &testHost{id: id, m: m, h: h, store: fs, cancel: cancel, done: make(chan error, 1)}
	for _, f := range tweak {
		f(th)
	}
	go func() { th.done <- m.Run(ctx, h) }()
	c.hosts = append(c.hosts, th)
	return th
}

// stop cancels the host's Run and checks that it gave everything back.
func (h *testHost) stop(t *testing.T) {
	t.Helper()
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	select {
	case err := <-h.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Run returned %v, want context.Canceled", h.id, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: Run did not return", h.id)
	}
	if r := h.h.runningNow(); len(r) != 0 {
		t.Errorf("%s: still runs %v after Run returned", h.id, r)
	}
	if o := h.m.Owned(); len(o) != 0 {
		t.Errorf("%s: Owned() = %v after Run returned", h.id, o)
	}
}

// running returns the hosts whose Run has not been stopped.
func (c *cluster) running() []*testHost {
	var out []*testHost
	for _, h := range c.hosts {
		if !h.stopped {
			out = append(out, h)
		}
	}
	return out
}

// balanced reports whether the given hosts run every partition between
// them, each exactly once, with shares differing by at most one.
func (c *cluster) balanced(hosts ...*testHost) bool {
	seen := make([]int, c.partitions)
	lo, hi := c.partitions, 0
	for _, h := range hosts {
		owned := h.m.Owned()
		lo, hi = min(lo, len(owned)), max(hi, len(owned))
		for _, p := range owned {
			seen[p]++
		}
	}
	for _, n := range seen {
		if n != 1 {
			return false
		}
	}
	return hi-lo <= 1
}

// describe lists what each host owns, for failure messages.
func (c *cluster) describe() string {
	var b strings.Builder
	for _, h := range c.hosts {
		fmt.Fprintf(&b, "%s%s: %v %+v\n", h.id, map[bool]string{true: " (stopped)"}[h.stopped], h.m.Owned(), h.m.Stats())
	}
	return b.String()
}

// awaitBalance waits until the running hosts share every partition evenly.
func (c *cluster) awaitBalance(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !c.balanced(c.running()...) {
		if time.Now().After(deadline) {
			c.t.Fatalf("no balance after %v:\n%s", timeout, c.describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
