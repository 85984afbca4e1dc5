package core_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// FanOut calls the activity "Work" once for each of 0..n-1 in parallel and
// returns the sum of the results.
func FanOut(ctx *core.OrchestrationContext, n int) (int, error) {
	fs := make([]*core.Future[int], n)
	all := make([]core.Awaitable, n)
	for i := range n {
		fs[i] = core.CallActivity[int](ctx, "Work", i)
		all[i] = fs[i]
	}
	if err := core.WhenAll(ctx, all...); err != nil {
		return 0, err
	}
	sum := 0
	for _, f := range fs {
		v, err := f.Await(ctx)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// runs counts the calls of "Work" by input; with a gate, each call first
// reports that it started and waits until the gate opens or it is cancelled.
type runs struct {
	mu      sync.Mutex
	byInput map[int]int
	started chan int
	gate    chan struct{}
}

func newRuns(gated bool) *runs {
	r := &runs{byInput: map[int]int{}, started: make(chan int, 1000)}
	if gated {
		r.gate = make(chan struct{})
	}
	return r
}

func (r *runs) work(ctx core.ActivityContext, n int) (int, error) {
	r.mu.Lock()
	r.byInput[n]++
	r.mu.Unlock()
	if r.gate != nil {
		r.started <- n
		select {
		case <-r.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return n, nil
}

func (r *runs) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := 0
	for _, c := range r.byInput {
		t += c
	}
	return t
}

func (r *runs) count(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byInput[n]
}

func fanOutRegistry(t *testing.T, r *runs) *core.Registry {
	t.Helper()
	reg := core.NewRegistry()
	if err := core.RegisterOrchestration(reg, FanOut); err != nil {
		t.Fatal(err)
	}
	if err := core.RegisterActivity(reg, r.work, core.WithName("Work")); err != nil {
		t.Fatal(err)
	}
	return reg
}

func startRuntime(t *testing.T, o core.Options) *core.Runtime {
	t.Helper()
	o.PollMaxInterval = 50 * time.Millisecond
	rt, err := core.NewRuntime(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, rt) })
	return rt
}

func shutdown(t *testing.T, rt *core.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func newStore(t *testing.T, partitions int) *memory.Provider {
	t.Helper()
	p, err := memory.New(memory.Options{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds; the test fails when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// A fan-out far wider than the activity slots runs entirely on the owner:
// what finds no free slot waits in the backlog, none goes to the work-item queue.
func TestFanOutBeyondSlotsRunsLocally(t *testing.T) {
	const n, slots = 200, 2
	ctx := testContext(t)
	r := newRuns(false)
	rt := startRuntime(t, core.Options{Provider: newStore(t, 2), Registry: fanOutRegistry(t, r), ActivityConcurrency: slots})
	c := rt.Client()
	id, err := c.Start(ctx, FanOut, core.WithInput(n))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := core.WaitForResult[int](ctx, c, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := n * (n - 1) / 2; sum != want {
		t.Fatalf("sum = %d, want %d", sum, want)
	}
	s := rt.Stats()
	if s.ActivitiesOffloaded != 0 || s.ActivitiesRemote != 0 || s.ActivitiesLocal != n {
		t.Fatalf("activities: %d local, %d offloaded, %d from the queue; want %d, 0, 0",
			s.ActivitiesLocal, s.ActivitiesOffloaded, s.ActivitiesRemote, n)
	}
	if got := r.total(); got != n {
		t.Fatalf("%d activity calls, want %d", got, n)
	}
}

// Beyond Options.ActivityBacklog, activities go to the work-item queue, and
// the fan-out still completes.
func TestActivityBacklogBoundOffloadsTheRest(t *testing.T) {
	const n, slots, backlog = 20, 1, 3
	ctx := testContext(t)
	r := newRuns(true)
	rt := startRuntime(t, core.Options{Provider: newStore(t, 1), Registry: fanOutRegistry(t, r),
		ActivityConcurrency: slots, ActivityBacklog: backlog})
	c := rt.Client()
	id, err := c.Start(ctx, FanOut, core.WithInput(n))
	if err != nil {
		t.Fatal(err)
	}
	// While the gate is closed no activity ends, so at most the slot's
	// holder and the backlog keep their activities: the others are offloaded.
	// (The work-item poller may hold the slot during the dispatch and hand it
	// to the backlog's oldest, which lets one more activity wait.)
	waitFor(ctx, t, "the activities beyond the backlog to be offloaded", func() bool {
		return rt.Stats().ActivitiesOffloaded >= n-2*slots-backlog
	})
	close(r.gate)
	sum, err := core.WaitForResult[int](ctx, c, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := n * (n - 1) / 2; sum != want {
		t.Fatalf("sum = %d, want %d", sum, want)
	}
	s := rt.Stats()
	if s.ActivitiesLocal+s.ActivitiesOffloaded != n {
		t.Fatalf("%d activities local and %d offloaded, want %d in all", s.ActivitiesLocal, s.ActivitiesOffloaded, n)
	}
}

// An activity that waits in the backlog when the orchestration cancels it
// (here by terminating the instance) never starts.
func TestCancelledActivitiesLeaveTheBacklog(t *testing.T) {
	const n = 10
	ctx := testContext(t)
	r := newRuns(true)
	rt := startRuntime(t, core.Options{Provider: newStore(t, 1), Registry: fanOutRegistry(t, r), ActivityConcurrency: 1})
	c := rt.Client()
	id, err := c.Start(ctx, FanOut, core.WithInput(n))
	if err != nil {
		t.Fatal(err)
	}
	<-r.started // one runs; the others wait for its slot
	if err := c.Terminate(ctx, id, "test", false); err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != core.StatusTerminated {
		t.Fatalf("status %s, want Terminated", st.Status)
	}
	waitFor(ctx, t, "the host to be idle", rt.Idle)
	shutdown(t, rt)
	if got := r.total(); got != 1 {
		t.Fatalf("%d activities started, want 1 (the cancelled ones waiting for a slot must not start)", got)
	}
	if s := rt.Stats(); s.ActivitiesOffloaded != 0 {
		t.Fatalf("%d activities offloaded, want 0", s.ActivitiesOffloaded)
	}
}

// handOver owns partition 0 until release is closed, then releases it
// and closes released.
type handOver struct {
	release, released chan struct{}
}

func (o *handOver) Run(ctx context.Context, h core.PartitionHandler) error {
	if err := h.PartitionAcquired(ctx, 0); err != nil {
		return err
	}
	select {
	case <-o.release:
	case <-ctx.Done():
	}
	h.PartitionReleased(context.WithoutCancel(ctx), 0)
	close(o.released)
	<-ctx.Done()
	return ctx.Err()
}

// When a host releases a partition whose activities wait in its backlog, it
// drops them without running them, and the partition's next owner runs each
// of them (and the one that was running) exactly once.
func TestReleasedPartitionBacklogRunsOnceOnNextOwner(t *testing.T) {
	const n = 5
	ctx := testContext(t)
	store := newStore(t, 1)
	onA, onB := newRuns(true), newRuns(false)
	own := &handOver{release: make(chan struct{}), released: make(chan struct{})}
	a := startRuntime(t, core.Options{Provider: store, Registry: fanOutRegistry(t, onA), Ownership: own,
		HostID: "a", ActivityConcurrency: 1})
	id, err := a.Client().Start(ctx, FanOut, core.WithInput(n))
	if err != nil {
		t.Fatal(err)
	}
	first := <-onA.started // it holds the only slot; the others wait in the backlog
	waitFor(ctx, t, "the others to wait in the backlog", func() bool { return a.Stats().ActivitiesWaiting == n-1 })
	close(own.release)
	<-own.released

	b := startRuntime(t, core.Options{Provider: store, Registry: fanOutRegistry(t, onB), HostID: "b"})
	sum, err := core.WaitForResult[int](ctx, b.Client(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want := n * (n - 1) / 2; sum != want {
		t.Fatalf("sum = %d, want %d", sum, want)
	}
	close(onA.gate) // the activity A was running ends; its result is dropped
	shutdown(t, a)

	if got := onA.total(); got != 1 || onA.count(first) != 1 {
		t.Fatalf("host a ran %d activities, want only the one it had started", got)
	}
	for i := range n {
		if got := onB.count(i); got != 1 {
			t.Fatalf("host b ran activity %d %d times, want once", i, got)
		}
	}
	if s := a.Stats(); s.ActivitiesOffloaded != 0 {
		t.Fatalf("host a offloaded %d activities, want 0", s.ActivitiesOffloaded)
	}
}
