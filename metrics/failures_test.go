package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
	"github.com/azdurable/azdurable/metrics"
)

// TestFailuresAndLatencies runs successful instances, one whose activities
// fail (one returns an error, one panics) and which fails in turn, and one
// whose orchestration panics, then checks the failure counters and the
// latency histograms.
func TestFailuresAndLatencies(t *testing.T) {
	p, err := memory.New(memory.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	reg := core.NewRegistry()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.AddActivity("Hello", "", func(ctx core.ActivityContext, in []byte) ([]byte, error) { return in, nil }))
	must(reg.AddActivity("Fail", "", func(ctx core.ActivityContext, in []byte) ([]byte, error) {
		return nil, core.NewApplicationError("OutOfStock", "out of stock", true)
	}))
	must(reg.AddActivity("Explode", "", func(ctx core.ActivityContext, in []byte) ([]byte, error) { panic("boom") }))
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return core.CallActivity[string](ctx, "Hello", "world").Await(ctx)
	}, core.WithName("Greet")))
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, _ core.Void) (core.Void, error) {
		// The panic of the first activity is caught here; the error of the
		// second fails the orchestration.
		_, _ = core.CallActivity[core.Void](ctx, "Explode", nil).Await(ctx)
		return core.CallActivity[core.Void](ctx, "Fail", nil).Await(ctx)
	}, core.WithName("Fragile")))
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, _ core.Void) (core.Void, error) {
		panic("orchestration bug")
	}, core.WithName("Panics")))

	rt, err := core.NewRuntime(core.Options{Provider: p, Registry: reg, HostID: "failures-test"})
	must(err)
	must(rt.Start(context.Background()))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := rt.Client()
	want := map[string]core.Status{}
	for _, run := range []struct {
		name   string
		status core.Status
	}{{"Greet", core.StatusCompleted}, {"Greet", core.StatusCompleted}, {"Fragile", core.StatusFailed}, {"Panics", core.StatusFailed}} {
		id, err := c.Start(ctx, run.name)
		must(err)
		want[id] = run.status
	}
	for id, status := range want {
		st, err := c.WaitForCompletion(ctx, id)
		must(err)
		if st.Status != status {
			t.Fatalf("instance %s is %s, want %s: %+v", id, st.Status, status, st.Failure)
		}
	}
	// The client may see an instance end a moment before the runtime has
	// recorded the commit that ended it: wait until it has recorded all four.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var ended uint64
		for _, h := range rt.Stats().StartToComplete {
			ended += h.Count
		}
		if ended == uint64(len(want)) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the runtime recorded %d completions, want %d", ended, len(want))
		case <-tick.C:
		}
	}

	h, err := metrics.Handler(metrics.Sources{Runtime: rt})
	must(err)
	m := scrape(t, h)
	for name, v := range map[string]float64{
		`azdurable_activity_failures_total{kind="application"}`:         1,
		`azdurable_activity_failures_total{kind="panic"}`:               1,
		`azdurable_activity_failures_total{kind="timeout"}`:             0,
		`azdurable_activity_failures_total{kind="poison"}`:              0,
		`azdurable_orchestration_failures_total{kind="application"}`:    1,
		`azdurable_orchestration_failures_total{kind="panic"}`:          1,
		`azdurable_orchestration_failures_total{kind="nondeterminism"}`: 0,
		`azdurable_orchestration_failures_total{kind="not_registered"}`: 0,
		// Four activity attempts: Hello twice, Explode and Fail.
		`azdurable_activity_schedule_to_start_seconds_count`:                                  4,
		`azdurable_activity_schedule_to_start_seconds_bucket{le="+Inf"}`:                      4,
		`azdurable_orchestration_start_to_complete_seconds_count{status="completed"}`:         2,
		`azdurable_orchestration_start_to_complete_seconds_count{status="failed"}`:            2,
		`azdurable_orchestration_start_to_complete_seconds_count{status="terminated"}`:        0,
		`azdurable_orchestration_start_to_complete_seconds_bucket{status="failed",le="+Inf"}`: 2,
		`azdurable_episode_duration_seconds_bucket{le="+Inf"}`:                                m["azdurable_episodes_total"],
	} {
		if got, ok := m[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	episodes := m["azdurable_episodes_total"]
	// Each instance commits its start and its end, the ones with activities
	// an episode per result as well.
	if episodes < 2*float64(len(want)) || m["azdurable_episode_duration_seconds_count"] != episodes {
		t.Errorf("azdurable_episode_duration_seconds_count = %v, azdurable_episodes_total = %v; want equal, at least %d",
			m["azdurable_episode_duration_seconds_count"], episodes, 2*len(want))
	}
	// Buckets are cumulative: each holds at least the one before it.
	prev := 0.0
	for _, le := range []string{"0.001", "0.01", "0.1", "1", "10", "60", "3600", "86400", "+Inf"} {
		v, ok := m[`azdurable_episode_duration_seconds_bucket{le="`+le+`"}`]
		if !ok || v < prev {
			t.Errorf("episode duration bucket le=%s = %v (present %v), below the previous bucket's %v", le, v, ok, prev)
		}
		prev = v
	}
	for _, name := range []string{"azdurable_episode_duration_seconds_sum", "azdurable_activity_schedule_to_start_seconds_sum",
		`azdurable_orchestration_start_to_complete_seconds_sum{status="completed"}`} {
		if v, ok := m[name]; !ok || v < 0 {
			t.Errorf("%s = %v (present %v), want a sum of durations", name, v, ok)
		}
	}
}
