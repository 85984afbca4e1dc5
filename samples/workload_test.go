package samples_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
)

func TestWorkloadMixedRun(t *testing.T) {
	c := host(t)
	w, err := samples.NewWorkload(samples.WorkloadOptions{Seed: 1, Instances: 40})
	if err != nil {
		t.Fatal(err)
	}
	results, err := w.Run(testContext(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 40 {
		t.Fatalf("%d results, want 40", len(results))
	}
	bySample := map[string]int{}
	byStatus := map[core.Status]int{}
	for i, r := range results {
		if r.Err != nil || r.ID != w.Instances[i].ID {
			t.Fatalf("result %d: %+v", i, r)
		}
		bySample[r.Orchestration]++
		byStatus[r.Status]++
	}
	for _, s := range samples.SampleNames() {
		if bySample[s] == 0 {
			t.Errorf("the mix has no %s: %v", s, bySample)
		}
	}
	// The mix has failure paths too (sagas and provisionings that roll back).
	if byStatus[core.StatusCompleted] == 0 || byStatus[core.StatusFailed] == 0 {
		t.Errorf("statuses %v: want both completed and failed instances", byStatus)
	}
	outcomes := map[string]bool{}
	for _, p := range w.Instances {
		if p.Orchestration == "Approval" {
			outcomes[strings.TrimPrefix(p.Expect, "approval ")] = true
		}
	}
	for _, o := range []string{samples.OutcomeApproved, samples.OutcomeRejected, samples.OutcomeExpired} {
		if !outcomes[o] {
			t.Errorf("no approval in the mix ends %s: %v", o, outcomes)
		}
	}
	t.Logf("samples %v, statuses %v", bySample, byStatus)
}

func TestWorkloadIsDeterministic(t *testing.T) {
	plan := func(seed uint64) []string {
		w, err := samples.NewWorkload(samples.WorkloadOptions{Seed: seed, Instances: 30})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range w.Instances {
			out = append(out, fmt.Sprintf("%s %s %+v %v %s", p.ID, p.Orchestration, p.Input, p.Event, p.Expect))
		}
		return out
	}
	a, b, other := plan(7), plan(7), plan(8)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("the same seed planned two different workloads:\n%v\n%v", a, b)
	}
	if reflect.DeepEqual(a, other) {
		t.Fatal("seeds 7 and 8 planned the same workload")
	}
	if !strings.HasPrefix(a[0], "wl7-0000 ") {
		t.Fatalf("first instance %q: want the default id prefix wl7", a[0])
	}
}

func TestWorkloadRestrictedMix(t *testing.T) {
	w, err := samples.NewWorkload(samples.WorkloadOptions{Seed: 3, Instances: 12, IDPrefix: "trips",
		Samples: []string{"BookTrip"}, FailureShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w.Instances {
		if p.Orchestration != "BookTrip" || p.Input.(samples.TripRequest).FailAt != "" || !strings.HasPrefix(p.ID, "trips-") {
			t.Fatalf("planned %+v", p)
		}
	}
	if _, err := w.Run(testContext(t), host(t)); err != nil {
		t.Fatal(err)
	}
}

// A workload must notice results that differ from the plan.
func TestWorkloadDetectsWrongResults(t *testing.T) {
	reg := core.NewRegistry()
	if err := core.RegisterOrchestration(reg, samples.HelloSequence); err != nil {
		t.Fatal(err)
	}
	err := core.RegisterActivity(reg, func(_ core.ActivityContext, name string) (string, error) { return "Hi " + name, nil },
		core.WithName("SayHello"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := samples.NewWorkload(samples.WorkloadOptions{Seed: 5, Instances: 3, Samples: []string{"HelloSequence"}})
	if err != nil {
		t.Fatal(err)
	}
	results, err := w.Run(testContext(t), hostWith(t, reg))
	if err == nil {
		t.Fatal("Verify accepted wrong greetings")
	}
	for _, r := range results {
		if r.Err == nil || r.Status != core.StatusCompleted || !strings.Contains(err.Error(), r.ID) {
			t.Fatalf("result %+v; error %v", r, err)
		}
	}
}

// A failure path that does not fail is noticed too.
func TestWorkloadDetectsMissingFailure(t *testing.T) {
	reg := core.NewRegistry()
	steps := []error{
		core.RegisterOrchestration(reg, samples.BookTrip),
		core.RegisterActivity(reg, func(_ core.ActivityContext, b samples.BookingRequest) (string, error) { return "ok", nil }, core.WithName("Book")),
		core.RegisterActivity(reg, samples.CancelBooking),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	w, err := samples.NewWorkload(samples.WorkloadOptions{Seed: 9, Instances: 20, Samples: []string{"BookTrip"}, FailureShare: 1})
	if err != nil {
		t.Fatal(err)
	}
	results, err := w.Run(testContext(t), hostWith(t, reg))
	if err == nil {
		t.Fatal("Verify accepted sagas that should have failed")
	}
	for _, r := range results {
		if r.Err == nil || !strings.Contains(r.Err.Error(), samples.TripNotBookedType) {
			t.Fatalf("result %+v", r)
		}
	}
}

func TestNewWorkloadValidates(t *testing.T) {
	for _, o := range []samples.WorkloadOptions{
		{Instances: -1},
		{MaxFanOut: samples.MaxFanOut + 1},
		{Interval: -1},
		{FailureShare: 1.5},
		{Samples: []string{"NoSuchSample"}},
	} {
		if _, err := samples.NewWorkload(o); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("NewWorkload(%+v): %v, want ErrInvalidInput", o, err)
		}
	}
}

// RaiseEvents may run beside Verify (the chaos tests raise events while
// faults go on); each event is still raised once.
func TestWorkloadRaisesEachEventOnce(t *testing.T) {
	c := host(t)
	w, err := samples.NewWorkload(samples.WorkloadOptions{Seed: 11, Instances: 12, Samples: []string{"Approval"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if err := w.Start(ctx, c); err != nil {
		t.Fatal(err)
	}
	raised := make(chan error, 1)
	go func() { raised <- w.RaiseEvents(ctx, c) }()
	if _, err := w.Verify(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := <-raised; err != nil {
		t.Fatal(err)
	}
	decided := 0
	for _, p := range w.Instances {
		h, err := c.History(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range h {
			if ev.Kind == core.EventEventRaised {
				n++
			}
		}
		want := 0
		if p.Event != nil {
			want = 1
			decided++
		}
		if n != want {
			t.Errorf("%s (%s): %d events in history, want %d", p.ID, p.Expect, n, want)
		}
	}
	if decided == 0 {
		t.Fatal("no approval in the mix got a decision")
	}
}
