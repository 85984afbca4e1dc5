package samples_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
	"github.com/azdurable/azdurable/samples"
)

// host runs the samples on a runtime over the in-memory provider and
// returns its client.
func host(t *testing.T, opts ...func(*core.Options)) *core.Client {
	t.Helper()
	reg := core.NewRegistry()
	if err := samples.Register(reg); err != nil {
		t.Fatal(err)
	}
	return hostWith(t, reg, opts...)
}

func hostWith(t *testing.T, reg *core.Registry, opts ...func(*core.Options)) *core.Client {
	t.Helper()
	p, err := memory.New(memory.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	o := core.Options{Provider: p, Registry: reg, HostID: "samples-test"}
	for _, f := range opts {
		f(&o)
	}
	rt, err := core.NewRuntime(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rt.Client()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run starts an instance and waits for its result.
func run[R any](t *testing.T, c *core.Client, orchestration any, input any) (string, R, error) {
	t.Helper()
	ctx := testContext(t)
	id, err := c.Start(ctx, orchestration, core.WithInput(input))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	r, err := core.WaitForResult[R](ctx, c, id)
	if ctx.Err() != nil {
		t.Fatalf("instance %s did not finish: %v", id, err)
	}
	return id, r, err
}

// applicationError returns the application error of a failed instance's
// error, failing the test when there is none or its type is not typ.
func applicationError(t *testing.T, err error, typ string) *core.ApplicationError {
	t.Helper()
	var ae *core.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) holds no application error", err, err)
	}
	if ae.Type != typ {
		t.Fatalf("failure type %q (%v), want %q", ae.Type, err, typ)
	}
	return ae
}

func countScheduled(t *testing.T, c *core.Client, id, activity string) int {
	t.Helper()
	h, err := c.History(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range h {
		if ev.Kind == core.EventActivityScheduled && ev.Name == activity {
			n++
		}
	}
	return n
}

func TestHelloSequence(t *testing.T) {
	c := host(t)
	id, got, err := run[[]string](t, c, samples.HelloSequence, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Hello, Tokyo!", "Hello, Seattle!", "Hello, London!", "Hello, Cairo!", "Hello, Lima!"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := countScheduled(t, c, id, "SayHello"); n != 5 {
		t.Fatalf("%d SayHello activities in history, want 5", n)
	}

	_, got, err = run[[]string](t, c, "HelloSequence", []string{"Oslo", "Riga"})
	if err != nil || !slices.Equal(got, []string{"Hello, Oslo!", "Hello, Riga!"}) {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestFanOutFanIn(t *testing.T) {
	c := host(t)
	for _, n := range []int{0, 1, 25} {
		id, got, err := run[int64](t, c, samples.FanOutFanIn, n)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if want := samples.SumOfSquares(n); got != want {
			t.Fatalf("n=%d: got %d, want %d", n, got, want)
		}
		if k := countScheduled(t, c, id, "Square"); k != n {
			t.Fatalf("n=%d: %d Square activities, want %d", n, k, n)
		}
	}
	if samples.SumOfSquares(25) != 5525 {
		t.Fatalf("SumOfSquares(25) = %d, want 5525", samples.SumOfSquares(25))
	}
	if _, _, err := run[int64](t, c, samples.FanOutFanIn, -1); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("n=-1: %v, want ErrInvalidInput", err)
	}
}

func TestApproval(t *testing.T) {
	c := host(t)
	req := samples.ApprovalRequest{ID: "r1", Requester: "team-a", Amount: 250}

	decide := func(t *testing.T, d samples.ApprovalDecision) samples.ApprovalResult {
		ctx := testContext(t)
		id, err := c.Start(ctx, samples.Approval, core.WithInput(req))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitForStart(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := c.RaiseEvent(ctx, id, samples.ApprovalEvent, d); err != nil {
			t.Fatal(err)
		}
		r, err := core.WaitForResult[samples.ApprovalResult](ctx, c, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("approved", func(t *testing.T) {
		d := samples.ApprovalDecision{Approved: true, Approver: "lead"}
		got := decide(t, d)
		if want := samples.ExpectedApproval(req, &d); got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if got.Outcome != samples.OutcomeApproved || got.Note == "" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		d := samples.ApprovalDecision{Approved: false, Approver: "lead"}
		got := decide(t, d)
		if want := (samples.ApprovalResult{RequestID: "r1", Outcome: samples.OutcomeRejected, Approver: "lead"}); got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	t.Run("expired", func(t *testing.T) {
		expiring := req
		expiring.Timeout = 20 * time.Millisecond
		_, got, err := run[samples.ApprovalResult](t, c, samples.Approval, expiring)
		if err != nil {
			t.Fatal(err)
		}
		if want := samples.ExpectedApproval(expiring, nil); got != want || got.Outcome != samples.OutcomeExpired {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

func TestBookTrip(t *testing.T) {
	c := host(t)
	t.Run("booked", func(t *testing.T) {
		req := samples.TripRequest{Traveler: "t1", Destination: "Oslo"}
		_, got, err := run[samples.TripBooking](t, c, samples.BookTrip, req)
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := samples.ExpectedTrip(req)
		if !slices.Equal(got.Confirmations, want.Confirmations) || len(got.Confirmations) != 3 {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	for _, tc := range []struct {
		failAt    string
		cancelled []string
	}{
		{samples.BookingFlight, nil},
		{samples.BookingHotel, []string{"flight"}},
		{samples.BookingCar, []string{"hotel", "flight"}},
	} {
		t.Run("fails at "+tc.failAt, func(t *testing.T) {
			req := samples.TripRequest{Traveler: "t2", Destination: "Lima", FailAt: tc.failAt}
			id, _, err := run[samples.TripBooking](t, c, samples.BookTrip, req)
			ae := applicationError(t, err, samples.TripNotBookedType)
			if want := "no " + tc.failAt + " available to Lima"; !strings.Contains(ae.Message, want) {
				t.Fatalf("message %q does not say %q", ae.Message, want)
			}
			var st samples.TripStatus
			if err := c.CustomStatus(testContext(t), id, &st); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(st.Cancelled, tc.cancelled) {
				t.Fatalf("cancelled %v, want %v", st.Cancelled, tc.cancelled)
			}
			if _, want, ok := samples.ExpectedTrip(req); ok || !slices.Equal(want, tc.cancelled) {
				t.Fatalf("ExpectedTrip = %v, %v", want, ok)
			}
			if n := countScheduled(t, c, id, "CancelBooking"); n != len(tc.cancelled) {
				t.Fatalf("%d CancelBooking activities, want %d", n, len(tc.cancelled))
			}
			// The unavailable booking is not retried: it failed for good.
			if n := countScheduled(t, c, id, "Book"); n != len(tc.cancelled)+1 {
				t.Fatalf("%d Book activities, want %d", n, len(tc.cancelled)+1)
			}
		})
	}
}

func TestMonitorContinuesAsNew(t *testing.T) {
	c := host(t)
	s := samples.MonitorState{Target: "orders-db", Interval: time.Millisecond, MaxChecks: 6}
	id, got, err := run[samples.MonitorReport](t, c, samples.Monitor, s)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := samples.ExpectedMonitorReport(s)
	if !ok || got != want || got.Checks != 6 {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// Each execution holds one check: continue-as-new kept the history short.
	if n := countScheduled(t, c, id, "CheckHealth"); n != 1 {
		t.Fatalf("the last execution's history has %d checks, want 1", n)
	}
	var st samples.MonitorState
	if err := c.CustomStatus(testContext(t), id, &st); err != nil {
		t.Fatal(err)
	}
	if st.Checks != 6 || st.Unhealthy != want.Unhealthy {
		t.Fatalf("custom status %+v", st)
	}
	if _, ok := samples.ExpectedMonitorReport(samples.MonitorState{Target: "x"}); ok {
		t.Fatal("an eternal monitor has no report")
	}
}

func TestMonitorCountsUnhealthyChecks(t *testing.T) {
	// Find a target whose first checks include an unhealthy one, so that
	// the count is exercised.
	s := samples.MonitorState{Interval: time.Millisecond, MaxChecks: 5}
	for i := 0; ; i++ {
		s.Target = "target-" + string(rune('a'+i))
		if r, _ := samples.ExpectedMonitorReport(s); r.Unhealthy > 0 {
			break
		}
	}
	c := host(t)
	_, got, err := run[samples.MonitorReport](t, c, samples.Monitor, s)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := samples.ExpectedMonitorReport(s); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestProvisionEnvironment(t *testing.T) {
	c := host(t)
	t.Run("ready", func(t *testing.T) {
		req := samples.EnvironmentRequest{Name: "staging", VMs: 3, PollInterval: time.Millisecond}
		id, got, err := run[samples.Environment](t, c, samples.ProvisionEnvironment, req)
		if err != nil {
			t.Fatal(err)
		}
		want, _, ok := samples.ExpectedProvisioning(req)
		if !ok || !equalEnv(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if len(got.Resources) != 5 || got.Endpoint == "" {
			t.Fatalf("got %+v", got)
		}
		var st samples.ProvisioningStatus
		if err := c.CustomStatus(testContext(t), id, &st); err != nil {
			t.Fatal(err)
		}
		if st.Stage != "ready" || len(st.Created) != 5 || len(st.Deleted) != 0 {
			t.Fatalf("custom status %+v", st)
		}
		// Each resource was a sub-orchestration of its own; the network's is the first task.
		child, err := c.GetInstance(testContext(t), id+":1", false)
		if err != nil || child.Name != "ProvisionResource" || child.Status != core.StatusCompleted {
			t.Fatalf("first child: %+v, %v", child, err)
		}
	})
	for _, tc := range []struct {
		fail    string
		deleted []string
	}{
		{"network", nil},
		{"database", []string{"vm-2", "vm-1", "network"}},
		{"vm-1", []string{"vm-2", "database", "network"}},
		{"dns", []string{"vm-2", "vm-1", "database", "network"}},
	} {
		t.Run("fails at "+tc.fail, func(t *testing.T) {
			req := samples.EnvironmentRequest{Name: "perf", FailResource: tc.fail, PollInterval: time.Millisecond}
			id, _, err := run[samples.Environment](t, c, samples.ProvisionEnvironment, req)
			ae := applicationError(t, err, samples.ProvisioningFailedType)
			if !strings.Contains(ae.Message, tc.fail+" failed: ") {
				t.Fatalf("message %q does not name %s", ae.Message, tc.fail)
			}
			var st samples.ProvisioningStatus
			if err := c.CustomStatus(testContext(t), id, &st); err != nil {
				t.Fatal(err)
			}
			if st.Stage != "rolled back" || !slices.Equal(st.Deleted, tc.deleted) {
				t.Fatalf("custom status %+v, want deleted %v", st, tc.deleted)
			}
			if _, want, ok := samples.ExpectedProvisioning(req); ok || !slices.Equal(want, tc.deleted) {
				t.Fatalf("ExpectedProvisioning = %v, %v", want, ok)
			}
			if n := countScheduled(t, c, id, "DeleteResource"); n != len(tc.deleted) {
				t.Fatalf("%d DeleteResource activities, want %d", n, len(tc.deleted))
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		_, _, err := run[samples.Environment](t, c, samples.ProvisionEnvironment, samples.EnvironmentRequest{Name: "big", VMs: samples.MaxVMs + 1})
		if !errors.Is(err, core.ErrInvalidInput) {
			t.Fatalf("%v, want ErrInvalidInput", err)
		}
	})
}

func equalEnv(a, b samples.Environment) bool {
	return a.Name == b.Name && a.Endpoint == b.Endpoint && slices.Equal(a.Resources, b.Resources)
}

func TestRegister(t *testing.T) {
	reg := core.NewRegistry()
	if err := samples.Register(reg); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, nv := range reg.Orchestrations() {
		names = append(names, nv.Name)
	}
	for _, s := range samples.SampleNames() {
		if !slices.Contains(names, s) {
			t.Errorf("orchestration %s is not registered (have %v)", s, names)
		}
	}
	before := len(reg.Activities())
	if err := samples.Register(reg); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("registering twice: %v, want ErrInvalidInput", err)
	}
	if after := len(reg.Activities()); after != before {
		t.Fatalf("a failed Register changed the registry: %d activities, then %d", before, after)
	}
	if err := samples.RegisterWithOptions(core.NewRegistry(), samples.Options{Latency: -time.Second}); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("negative latency: %v", err)
	}
}

func TestLatency(t *testing.T) {
	reg := core.NewRegistry()
	if err := samples.RegisterWithOptions(reg, samples.Options{Latency: 2 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c := hostWith(t, reg)
	_, got, err := run[[]string](t, c, samples.HelloSequence, []string{"Kyoto"})
	if err != nil || !slices.Equal(got, []string{"Hello, Kyoto!"}) {
		t.Fatalf("got %q, %v", got, err)
	}
}
