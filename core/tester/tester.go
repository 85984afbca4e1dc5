// Package tester runs orchestrations in unit tests: a real runtime over the
// in-memory provider, with virtual time that jumps ahead whenever every
// instance waits for a timer, and activities that can be replaced by mocks.
// A test of a workflow with a 30-day timer takes milliseconds.
//
//	tt := tester.New(t)
//	core.RegisterOrchestration(tt.Registry(), Checkout)
//	tester.MockActivity(tt, "Reserve", func(o Order) (Reservation, error) { return Reservation{ID: "r1"}, nil })
//	receipt, err := tester.Run[Receipt](tt, Checkout, order)
package tester

import (
	"context"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// Tester is a runtime with virtual time over the in-memory provider.
type Tester struct {
	t        testing.TB
	clock    *VirtualClock
	provider *memory.Provider
	reg      *core.Registry
	rt       *core.Runtime
	client   *core.Client
	cancel   context.CancelFunc
	stopped  chan struct{}
	timeout  time.Duration
	cfgTweak func(*core.Options)
}

// Option configures a tester.
type Option func(*config)

type config struct {
	start      time.Time
	partitions int
	timeout    time.Duration
	tweak      func(*core.Options)
}

// WithStartTime sets where virtual time starts (default 2026-01-01 UTC).
func WithStartTime(t time.Time) Option { return func(c *config) { c.start = t } }

// WithTimeout bounds each Run in real time (default 10s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithRuntimeOptions changes the runtime's options before it starts.
func WithRuntimeOptions(f func(*core.Options)) Option { return func(c *config) { c.tweak = f } }

// New returns a tester; register orchestrations and activities (or mocks) on
// Registry before the first Run or Client call.
func New(t testing.TB, opts ...Option) *Tester {
	c := config{start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), partitions: 2, timeout: 10 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	clock := NewVirtualClock(c.start)
	p, err := memory.New(memory.Options{Partitions: c.partitions, Clock: clock.Now})
	if err != nil {
		t.Fatalf("tester: %v", err)
	}
	x := &Tester{t: t, clock: clock, provider: p, reg: core.NewRegistry(), timeout: c.timeout}
	x.cfgTweak = c.tweak
	return x
}

// Registry is where the test registers orchestrations, activities and mocks.
func (x *Tester) Registry() *core.Registry { return x.reg }

// Clock is the virtual clock.
func (x *Tester) Clock() *VirtualClock { return x.clock }

// Provider is the in-memory provider under the runtime.
func (x *Tester) Provider() *memory.Provider { return x.provider }

// Client returns the client, starting the runtime on first use.
func (x *Tester) Client() *core.Client {
	x.start()
	return x.client
}

// MockActivity registers fn as the activity called name (a name or the real
// function, whose name is used), so that orchestrations under test call the
// mock instead.
func MockActivity[In, Out any](x *Tester, name any, fn func(In) (Out, error)) {
	n, ok := name.(string)
	if !ok {
		n = core.FuncName(name)
	}
	err := core.RegisterActivity(x.reg, func(_ core.ActivityContext, in In) (Out, error) { return fn(in) }, core.WithName(n))
	if err != nil {
		x.t.Fatalf("tester: mock %q: %v", n, err)
	}
}

// Run starts the orchestration with input and waits, in virtual time, for its result.
func Run[R any](x *Tester, orchestration any, input any, opts ...core.StartOption) (R, error) {
	var zero R
	c := x.Client()
	ctx, cancel := context.WithTimeout(context.Background(), x.timeout)
	defer cancel()
	id, err := c.Start(ctx, orchestration, append([]core.StartOption{core.WithInput(input)}, opts...)...)
	if err != nil {
		return zero, err
	}
	r, err := core.WaitForResult[R](ctx, c, id)
	if ctx.Err() != nil {
		x.t.Fatalf("tester: instance %q did not finish within %s of real time (virtual time %s); "+
			"is an activity neither registered nor mocked, or is it waiting for an event?", id, x.timeout, x.clock.Now())
	}
	return r, err
}

func (x *Tester) start() {
	if x.rt != nil {
		return
	}
	o := core.Options{Provider: x.provider, Registry: x.reg, Clock: x.clock, HostID: "tester"}
	if x.cfgTweak != nil {
		x.cfgTweak(&o)
	}
	rt, err := core.NewRuntime(o)
	if err != nil {
		x.t.Fatalf("tester: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := rt.Start(ctx); err != nil {
		cancel()
		x.t.Fatalf("tester: %v", err)
	}
	x.rt, x.client, x.cancel, x.stopped = rt, rt.Client(), cancel, make(chan struct{})
	go x.advance(ctx)
	x.t.Cleanup(func() {
		cancel()
		<-x.stopped
		sctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := rt.Shutdown(sctx); err != nil {
			x.t.Errorf("tester: shutdown: %v", err)
		}
	})
}

// advance moves virtual time to the next durable timer whenever nothing else
// can make progress. Idleness is sampled a few times in a row so that work
// handed between goroutines is not mistaken for rest.
func (x *Tester) advance(ctx context.Context) {
	defer close(x.stopped)
	quiet := 0
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !x.idle() {
			quiet = 0
			continue
		}
		if quiet++; quiet < 5 {
			continue
		}
		quiet = 0
		if next, ok := x.nextTimer(ctx); ok {
			x.clock.AdvanceTo(next)
		}
	}
}

func (x *Tester) idle() bool {
	if !x.rt.Idle() || x.provider.WorkItemDepth() > 0 {
		return false
	}
	for p := range x.provider.Partitions() {
		if x.provider.QueueDepth(p) > 0 {
			return false
		}
	}
	return x.rt.Idle()
}

func (x *Tester) nextTimer(ctx context.Context) (time.Time, bool) {
	var next time.Time
	for p := range x.provider.Partitions() {
		st, err := x.provider.OpenPartition(ctx, p)
		if err != nil {
			return next, false
		}
		for _, t := range st.Timers {
			if next.IsZero() || t.FireAt.Before(next) {
				next = t.FireAt
			}
		}
	}
	return next, !next.IsZero()
}
