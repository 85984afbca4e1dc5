// Package tester runs orchestrations in unit tests: a real runtime over the
// in-memory provider, with virtual time and activities that can be replaced
// by mocks. A test of a workflow with a 30-day timer takes milliseconds.
//
//	tt := tester.New(t)
//	core.RegisterOrchestration(tt.Registry(), Checkout)
//	tester.MockActivity(tt, Reserve, func(o Order) (Reservation, error) { return Reservation{ID: "r1"}, nil })
//	tt.RaiseEventAfter(2*time.Hour, "order-1", "approved", Approval{By: "ann"})
//	receipt, err := tester.Run[Receipt](tt, Checkout, order, core.WithInstanceID("order-1"))
//
// # Virtual time
//
// Time stands still except while Run or Wait waits (or the test calls
// Clock().Advance). Then, whenever nothing can happen without time moving —
// no episode, activity or message in flight — the clock jumps to the next
// thing that is due: a durable timer (retry backoffs and scheduled starts
// are timers too), a delayed or abandoned message becoming visible again, or
// an action scheduled with RaiseEventAfter or After. Time does not move
// while an activity runs, so a mock that blocks holds virtual time still.
// The orchestration sees the virtual time in ctx.Now(), and so do mocks
// that read Clock().Now().
//
// # Stuck orchestrations
//
// When the instance waited for has not ended and nothing is due, Run
// returns an error matching ErrBlocked that says what the instance, and its
// sub-orchestrations, wait for. A pending activity or sub-orchestration whose
// name is registered nowhere (neither mocked nor registered) is reported the
// same way, as soon as everything else is at rest, and also matches
// core.ErrNotRegistered. If the instance still has not ended after the real
// time set by WithTimeout (say, an activity never returns), Run returns an
// error matching context.DeadlineExceeded.
//
// # Inspecting
//
// History returns an instance's history, Client the runtime's client (status,
// custom status, queries, starting more instances to Wait for) and Provider
// the in-memory store under it.
package tester

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// ErrBlocked is matched by the error of Run and Wait when the instance can
// never move on: it waits for something that nothing will bring.
var ErrBlocked = errors.New("orchestration blocked")

// DefaultTimeout bounds each Run and Wait in real time.
const DefaultTimeout = 10 * time.Second

// DefaultStartTime is where virtual time starts.
var DefaultStartTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// partitions is the in-memory task hub's partition count: more than one, so
// that messages between instances cross partitions as they do in production.
const partitions = 2

// TB is the part of testing.TB a tester uses; *testing.T and *testing.B
// satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

var _ TB = testing.TB(nil)

// Tester is a runtime with virtual time over the in-memory provider. Make
// one per test with New; it stops when the test's cleanups run.
type Tester struct {
	t       TB
	clock   *VirtualClock
	mem     *memory.Provider
	track   *tracker
	reg     *core.Registry
	timeout time.Duration
	tweak   func(*core.Options)

	startOnce sync.Once
	rt        *core.Runtime
	client    *core.Client

	// mu serialises the moves of Run and Wait calls running at once; moves
	// counts them, so that a caller whose view of the system predates
	// another's move does not move again on that stale view.
	mu      sync.Mutex
	moves   atomic.Uint64
	pending []*action
	nextSeq int
}

// Option configures a tester.
type Option func(*config)

type config struct {
	start   time.Time
	timeout time.Duration
	tweak   func(*core.Options)
}

// WithStartTime sets where virtual time starts (default DefaultStartTime).
func WithStartTime(t time.Time) Option { return func(c *config) { c.start = t } }

// WithTimeout bounds each Run and Wait in real time (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithRuntimeOptions changes the runtime's options before it starts, for
// example Options.OffloadActivities or Options.ExecutorCacheSize. Provider,
// Registry and Clock stay the tester's.
func WithRuntimeOptions(f func(*core.Options)) Option { return func(c *config) { c.tweak = f } }

// New returns a tester. Register orchestrations, activities and mocks on
// Registry; the runtime starts at the first Run, Wait or Client call, and
// what is registered later is available at once.
func New(t TB, opts ...Option) *Tester {
	t.Helper()
	c := config{start: DefaultStartTime, timeout: DefaultTimeout}
	for _, o := range opts {
		o(&c)
	}
	if c.timeout <= 0 {
		t.Fatalf("tester: WithTimeout(%s): the timeout must be positive", c.timeout)
	}
	clock := NewVirtualClock(c.start)
	mem, err := memory.New(memory.Options{Partitions: partitions, Clock: clock.Now})
	if err != nil {
		t.Fatalf("tester: %v", err)
	}
	return &Tester{t: t, clock: clock, mem: mem, track: newTracker(mem), reg: core.NewRegistry(), timeout: c.timeout, tweak: c.tweak}
}

// Registry is where the test registers orchestrations, activities and mocks.
func (x *Tester) Registry() *core.Registry { return x.reg }

// Clock is the virtual clock.
func (x *Tester) Clock() *VirtualClock { return x.clock }

// Provider is the in-memory provider under the runtime, for inspection.
func (x *Tester) Provider() *memory.Provider { return x.mem }

// Client returns the runtime's client, starting the runtime on first use.
func (x *Tester) Client() *core.Client {
	x.start()
	return x.client
}

// MockActivity registers fn as the activity that orchestrations under test
// call: activity is its name or the real function (whose registered name is
// used). fn returns a result or an error, as the real activity would; an
// error reaches the orchestration as a *core.ActivityError around a
// *core.ApplicationError. Register each name once, the mock instead of the
// real activity.
func MockActivity[In, Out any](x *Tester, activity any, fn func(In) (Out, error)) {
	x.t.Helper()
	name, ok := activity.(string)
	if !ok {
		name = core.FuncName(activity)
	}
	if name == "" {
		x.t.Fatalf("tester: MockActivity: activity must be a name or a function, not %T", activity)
	}
	err := core.RegisterActivity(x.reg, func(_ core.ActivityContext, in In) (Out, error) { return fn(in) }, core.WithName(name))
	if err != nil {
		x.t.Fatalf("tester: mock activity %q: %v", name, err)
	}
}

// Run starts the orchestration (its name or function) with input, waits for
// it in virtual time, and returns its result decoded into R. A failed
// instance returns a *core.FailureError (errors.As reaches the
// *core.ApplicationError of a failed activity); see the package comment for
// stuck instances. opts are the client's start options, for example
// core.WithInstanceID to know the id in advance.
func Run[R any](x *Tester, orchestration any, input any, opts ...core.StartOption) (R, error) {
	var zero R
	name, ok := orchestration.(string)
	if !ok {
		name = core.FuncName(orchestration)
	}
	if !x.hasOrchestration(name, "") {
		return zero, fmt.Errorf("tester: run: %w", &core.NotRegisteredError{Kind: "orchestration", Name: name})
	}
	c := x.Client()
	ctx, cancel := context.WithTimeout(context.Background(), x.timeout)
	defer cancel()
	id, err := c.Start(ctx, orchestration, append([]core.StartOption{core.WithInput(input)}, opts...)...)
	if err != nil {
		return zero, fmt.Errorf("tester: run: %w", err)
	}
	return wait[R](ctx, x, id)
}

// Wait waits in virtual time for an instance started with Client().Start
// (or by an orchestration) and returns its result decoded into R, as Run does.
func Wait[R any](x *Tester, instanceID string) (R, error) {
	x.start()
	ctx, cancel := context.WithTimeout(context.Background(), x.timeout)
	defer cancel()
	return wait[R](ctx, x, instanceID)
}

func wait[R any](ctx context.Context, x *Tester, id string) (R, error) {
	if err := x.drive(ctx, id); err != nil {
		var zero R
		return zero, err
	}
	return core.WaitForResult[R](ctx, x.client, id)
}

// RaiseEventAfter raises the external event name with data on the instance
// when virtual time reaches now+d, as a client would. The instance must
// exist then: start it with core.WithInstanceID to know its id in advance.
// An event for an instance that has ended meanwhile is dropped with a log
// line; any other failure fails the test.
func (x *Tester) RaiseEventAfter(d time.Duration, instanceID, name string, data any) {
	x.After(d, func(ctx context.Context, c *core.Client) error {
		return c.RaiseEvent(ctx, instanceID, name, data)
	})
}

// After calls f with the runtime's client when virtual time reaches now+d,
// for whatever a test does at a point in virtual time: suspend, terminate,
// start another instance. Like a timer, f runs only once the system is at
// rest at that time, and only while Run or Wait waits. An error from f that
// matches core.ErrInstanceCompleted is logged; any other fails the test.
func (x *Tester) After(d time.Duration, f func(ctx context.Context, c *core.Client) error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.nextSeq++
	x.pending = append(x.pending, &action{at: x.clock.Now().Add(d), seq: x.nextSeq, f: f})
	slices.SortFunc(x.pending, func(a, b *action) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
}

// History returns the history of the instance's current execution. It fails
// the test when the instance does not exist; call it from the test goroutine.
func (x *Tester) History(instanceID string) []*core.Event {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), x.timeout)
	defer cancel()
	h, err := x.Client().History(ctx, instanceID)
	if err != nil {
		x.t.Fatalf("tester: history of instance %q: %v", instanceID, err)
	}
	return h
}

// action is something a test scheduled at a virtual time.
type action struct {
	at  time.Time
	seq int
	f   func(ctx context.Context, c *core.Client) error
}

func (x *Tester) start() {
	x.startOnce.Do(func() {
		o := core.Options{HostID: "tester", PollMinInterval: pollInterval, PollMaxInterval: pollInterval}
		if x.tweak != nil {
			x.tweak(&o)
		}
		o.Provider, o.Registry, o.Clock = x.track, x.reg, x.clock
		rt, err := core.NewRuntime(o)
		if err != nil {
			x.t.Fatalf("tester: %v", err)
		}
		if err := rt.Start(context.Background()); err != nil {
			x.t.Fatalf("tester: %v", err)
		}
		x.rt, x.client = rt, rt.Client()
		x.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := rt.Shutdown(ctx); err != nil {
				x.t.Errorf("tester: shutdown: %v", err)
			}
		})
	})
}
