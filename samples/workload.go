package samples

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/core"
)

// WorkloadOptions configure NewWorkload. Zero fields take the defaults given.
type WorkloadOptions struct {
	// Seed chooses the mix: the same options plan the same instances.
	Seed uint64
	// Instances is how many instances to plan (default 24).
	Instances int
	// IDPrefix starts every instance id (default "wl<seed>"). Give each run
	// on a task hub its own prefix: ids must be new.
	IDPrefix string
	// Samples restricts the mix to these orchestrations, by name (default
	// all: HelloSequence, FanOutFanIn, Approval, BookTrip, Monitor,
	// ProvisionEnvironment).
	Samples []string
	// MaxFanOut bounds FanOutFanIn's n (default 10).
	MaxFanOut int
	// Interval is the wait of the mix's timers: the monitor's interval and
	// the readiness polls of provisioning (default 50ms).
	Interval time.Duration
	// ApprovalTimeout is the timeout of the approvals that nobody decides
	// (default 500ms); approvals that get a decision wait for it up to
	// DefaultApprovalTimeout.
	ApprovalTimeout time.Duration
	// FailureShare is the share of sagas and provisionings that take their
	// failure path (default 0.3; negative for none).
	FailureShare float64
}

// SampleNames lists the orchestrations a workload mixes, in a fixed order.
func SampleNames() []string {
	return []string{"HelloSequence", "FanOutFanIn", "Approval", "BookTrip", "Monitor", "ProvisionEnvironment"}
}

// Workload is a planned mix of sample instances. Start them with Start,
// then check them with Verify.
type Workload struct {
	// Instances are the planned instances, in the order Start starts them.
	Instances []*Planned
}

// Planned is one instance of a workload.
type Planned struct {
	ID            string
	Orchestration string
	Input         any
	// Event, if set, is raised on the instance once it has started.
	Event *PlannedEvent
	// Expect says in words what the instance should end with.
	Expect string

	check  func(ctx context.Context, c *core.Client, id string) error
	raised atomic.Bool // claimed by a RaiseEvents call, or raised
}

// PlannedEvent is an external event a workload raises.
type PlannedEvent struct {
	Name string
	Data any
}

// Result is how one instance of a workload ended.
type Result struct {
	ID            string
	Orchestration string
	Status        core.Status
	// Err says how the instance differs from what was expected; nil when it
	// ended as expected.
	Err error
}

// NewWorkload plans a mix of instances from the options.
func NewWorkload(o WorkloadOptions) (*Workload, error) {
	if o.Instances == 0 {
		o.Instances = 24
	}
	if o.IDPrefix == "" {
		o.IDPrefix = fmt.Sprintf("wl%d", o.Seed)
	}
	if len(o.Samples) == 0 {
		o.Samples = SampleNames()
	}
	if o.MaxFanOut == 0 {
		o.MaxFanOut = 10
	}
	if o.Interval == 0 {
		o.Interval = 50 * time.Millisecond
	}
	if o.ApprovalTimeout == 0 {
		o.ApprovalTimeout = 500 * time.Millisecond
	}
	if o.FailureShare == 0 {
		o.FailureShare = 0.3
	}
	switch {
	case o.Instances < 0:
		return nil, fmt.Errorf("%w: workload: Instances is %d; it must not be negative", core.ErrInvalidInput, o.Instances)
	case o.MaxFanOut < 1 || o.MaxFanOut > MaxFanOut:
		return nil, fmt.Errorf("%w: workload: MaxFanOut is %d; it must be between 1 and %d", core.ErrInvalidInput, o.MaxFanOut, MaxFanOut)
	case o.Interval < 0 || o.ApprovalTimeout < 0:
		return nil, fmt.Errorf("%w: workload: Interval and ApprovalTimeout must not be negative", core.ErrInvalidInput)
	case o.FailureShare > 1:
		return nil, fmt.Errorf("%w: workload: FailureShare is %v; it must be at most 1", core.ErrInvalidInput, o.FailureShare)
	}
	for _, s := range o.Samples {
		if !slices.Contains(SampleNames(), s) {
			return nil, fmt.Errorf("%w: workload: %q is not a sample; choose from %v", core.ErrInvalidInput, s, SampleNames())
		}
	}
	pl := &planner{o: o, rnd: rand.New(rand.NewPCG(o.Seed, 0x5a3d1e))}
	w := &Workload{}
	for i := range o.Instances {
		w.Instances = append(w.Instances, pl.plan(i))
	}
	return w, nil
}

// planner draws the instances of a workload.
type planner struct {
	o   WorkloadOptions
	rnd *rand.Rand
}

var (
	cities    = []string{"Oslo", "Lima", "Kyoto", "Accra", "Quito", "Perth", "Riga", "Dakar"}
	targets   = []string{"checkout-api", "search-api", "orders-db", "payments-queue", "inventory-cache"}
	envPrefix = []string{"dev", "test", "staging", "perf", "demo"}
)

func (pl *planner) pick(from []string) string { return from[pl.rnd.IntN(len(from))] }
func (pl *planner) fails() bool               { return pl.rnd.Float64() < pl.o.FailureShare }

func (pl *planner) plan(i int) *Planned {
	name := pl.o.Samples[pl.rnd.IntN(len(pl.o.Samples))]
	p := &Planned{ID: fmt.Sprintf("%s-%04d", pl.o.IDPrefix, i), Orchestration: name}
	switch name {
	case "HelloSequence":
		names := HelloCities()
		if pl.rnd.IntN(2) == 0 {
			names = []string{pl.pick(cities), pl.pick(cities), pl.pick(cities), pl.pick(cities), pl.pick(cities)}
		}
		want := make([]string, len(names))
		for j, n := range names {
			want[j] = Greeting(n)
		}
		p.Input, p.Expect = names, fmt.Sprintf("greetings %q", want)
		p.check = expectResult(want)
	case "FanOutFanIn":
		n := 1 + pl.rnd.IntN(pl.o.MaxFanOut)
		p.Input, p.Expect = n, fmt.Sprintf("sum of squares %d", SumOfSquares(n))
		p.check = expectResult(SumOfSquares(n))
	case "Approval":
		req := ApprovalRequest{ID: fmt.Sprintf("req-%d", i), Requester: fmt.Sprintf("team-%d", pl.rnd.IntN(9)), Amount: int64(100 + pl.rnd.IntN(9900))}
		var decision *ApprovalDecision
		switch pl.rnd.IntN(3) {
		case 0:
			req.Timeout = pl.o.ApprovalTimeout
		case 1:
			decision = &ApprovalDecision{Approved: true, Approver: "approver-1"}
		default:
			decision = &ApprovalDecision{Approved: false, Approver: "approver-2"}
		}
		if decision != nil {
			p.Event = &PlannedEvent{Name: ApprovalEvent, Data: *decision}
		}
		want := ExpectedApproval(req, decision)
		p.Input, p.Expect = req, "approval "+want.Outcome
		p.check = expectResult(want)
	case "BookTrip":
		req := TripRequest{Traveler: fmt.Sprintf("traveler-%d", i), Destination: pl.pick(cities)}
		if pl.fails() {
			req.FailAt = pl.pick(TripSteps())
		}
		p.Input = req
		trip, cancelled, ok := ExpectedTrip(req)
		if ok {
			p.Expect = "trip booked"
			p.check = expectResult(trip)
		} else {
			p.Expect = fmt.Sprintf("%s fails, cancelled %v", TripNotBookedType, cancelled)
			p.check = expectFailure(TripNotBookedType, func(ctx context.Context, c *core.Client, id string) error {
				var st TripStatus
				if err := c.CustomStatus(ctx, id, &st); err != nil {
					return err
				}
				if !slices.Equal(st.Cancelled, cancelled) {
					return fmt.Errorf("cancelled %v, want %v", st.Cancelled, cancelled)
				}
				return nil
			})
		}
	case "Monitor":
		s := MonitorState{Target: pl.pick(targets), Interval: pl.o.Interval, MaxChecks: 2 + pl.rnd.IntN(3)}
		want, _ := ExpectedMonitorReport(s)
		p.Input, p.Expect = s, fmt.Sprintf("monitor report after %d checks", want.Checks)
		p.check = expectResult(want)
	case "ProvisionEnvironment":
		req := EnvironmentRequest{Name: fmt.Sprintf("%s%d", pl.pick(envPrefix), i), VMs: 1 + pl.rnd.IntN(3), PollInterval: pl.o.Interval}
		if pl.fails() {
			steps := append([]string{ResourceNetwork, ResourceDatabase, DNSStep}, vmNames(req.VMs)...)
			req.FailResource = pl.pick(steps)
		}
		p.Input = req
		env, deleted, ok := ExpectedProvisioning(req)
		if ok {
			p.Expect = fmt.Sprintf("environment %s with %d resources", env.Name, len(env.Resources))
			p.check = expectResult(env)
		} else {
			p.Expect = fmt.Sprintf("%s fails, deleted %v", ProvisioningFailedType, deleted)
			p.check = expectFailure(ProvisioningFailedType, func(ctx context.Context, c *core.Client, id string) error {
				var st ProvisioningStatus
				if err := c.CustomStatus(ctx, id, &st); err != nil {
					return err
				}
				if !slices.Equal(st.Deleted, deleted) {
					return fmt.Errorf("deleted %v, want %v", st.Deleted, deleted)
				}
				return nil
			})
		}
	}
	return p
}

// expectResult checks that an instance completed with want.
func expectResult[R any](want R) func(context.Context, *core.Client, string) error {
	return func(ctx context.Context, c *core.Client, id string) error {
		got, err := core.WaitForResult[R](ctx, c, id)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("result %+v, want %+v", got, want)
		}
		return nil
	}
}

// expectFailure checks that an instance failed with an application error of
// type typ, and then runs more checks.
func expectFailure(typ string, more func(context.Context, *core.Client, string) error) func(context.Context, *core.Client, string) error {
	return func(ctx context.Context, c *core.Client, id string) error {
		_, err := core.WaitForResult[core.RawPayload](ctx, c, id)
		var ae *core.ApplicationError
		switch {
		case err == nil:
			return fmt.Errorf("completed, want a %s failure", typ)
		case !errors.As(err, &ae):
			return err
		case ae.Type != typ:
			return fmt.Errorf("failed with %v, want a %s failure", err, typ)
		}
		return more(ctx, c, id)
	}
}

// Start starts every planned instance, in order. It stops at the first
// error.
func (w *Workload) Start(ctx context.Context, c *core.Client) error {
	for _, p := range w.Instances {
		if _, err := c.Start(ctx, p.Orchestration, core.WithInstanceID(p.ID), core.WithInput(p.Input)); err != nil {
			return fmt.Errorf("workload: start %s %q: %w", p.Orchestration, p.ID, err)
		}
	}
	return nil
}

// RaiseEvents raises the planned events that were not raised yet, each once
// its instance has started. Verify calls it; call it earlier to decide
// sooner. Concurrent calls raise each event once.
func (w *Workload) RaiseEvents(ctx context.Context, c *core.Client) error {
	for _, p := range w.Instances {
		// Claim the event, so that a concurrent call skips it.
		if p.Event == nil || !p.raised.CompareAndSwap(false, true) {
			continue
		}
		if err := raise(ctx, c, p); err != nil {
			p.raised.Store(false) // a later call tries again
			return err
		}
	}
	return nil
}

func raise(ctx context.Context, c *core.Client, p *Planned) error {
	if _, err := c.WaitForStart(ctx, p.ID); err != nil {
		return fmt.Errorf("workload: wait for %q to start: %w", p.ID, err)
	}
	if err := c.RaiseEvent(ctx, p.ID, p.Event.Name, p.Event.Data); err != nil {
		return fmt.Errorf("workload: raise %q on %q: %w", p.Event.Name, p.ID, err)
	}
	return nil
}

// verifyParallelism bounds the instances Verify waits for at once.
const verifyParallelism = 8

// Verify raises the events still to raise, waits until every instance has
// ended (or ctx is done), and checks each against what was planned. The
// results are in plan order; the error joins every instance that did not end
// as expected.
func (w *Workload) Verify(ctx context.Context, c *core.Client) ([]Result, error) {
	if err := w.RaiseEvents(ctx, c); err != nil {
		return nil, err
	}
	results := make([]Result, len(w.Instances))
	sem := make(chan struct{}, verifyParallelism)
	var wg sync.WaitGroup
	for i, p := range w.Instances {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = w.verify(ctx, c, p)
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", r.Orchestration, r.ID, r.Err))
		}
	}
	return results, errors.Join(errs...)
}

func (w *Workload) verify(ctx context.Context, c *core.Client, p *Planned) Result {
	r := Result{ID: p.ID, Orchestration: p.Orchestration}
	st, err := c.WaitForCompletion(ctx, p.ID)
	if err != nil {
		r.Err = err
		return r
	}
	r.Status = st.Status
	r.Err = p.check(ctx, c, p.ID)
	return r
}

// Run starts the workload and verifies it.
func (w *Workload) Run(ctx context.Context, c *core.Client) ([]Result, error) {
	if err := w.Start(ctx, c); err != nil {
		return nil, err
	}
	return w.Verify(ctx, c)
}
