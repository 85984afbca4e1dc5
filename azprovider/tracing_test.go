package azprovider

import (
	"context"
	"errors"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/azdurable/azdurable/core"
)

// An orchestration that moves to another host keeps one trace: the second
// host learns the execution's span id from the stored history and pending
// activities (and from the work-item queue), so the activity attempts on
// both hosts and the timer sit under the one execution span, emitted once by
// the host that ended the execution.
func TestAzuriteTracingAcrossHosts(t *testing.T) {
	p := newTestProvider(t)
	ctx := testCtx(t)
	rec := tracetest.NewSpanRecorder()
	newTP := func() *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithIDGenerator(core.TraceIDGenerator{}))
	}
	orch := func(ctx *core.OrchestrationContext, n int) (int, error) {
		n, err := core.CallActivity[int](ctx, "Hold", n).Await(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := ctx.CreateTimer(10 * time.Millisecond).Await(ctx); err != nil {
			return 0, err
		}
		return core.CallActivity[int](ctx, "Plain", n).Await(ctx)
	}
	plain := func(_ core.ActivityContext, n int) (int, error) { return n + 1, nil }
	registry := func(hold func(core.ActivityContext, int) (int, error)) *core.Registry {
		reg := core.NewRegistry()
		must(t, core.RegisterOrchestration(reg, orch, core.WithName("Moves")))
		must(t, core.RegisterActivity(reg, hold, core.WithName("Hold")))
		must(t, core.RegisterActivity(reg, plain, core.WithName("Plain")))
		return reg
	}

	// Host A starts the activity and is shut down while it runs.
	started := make(chan struct{})
	holdA := func(ctx core.ActivityContext, n int) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	tpA := newTP()
	hostA := startRuntime(t, p, registry(holdA), func(o *core.Options) { o.TracerProvider = tpA })
	callerCtx, caller := tpA.Tracer("test").Start(ctx, "caller")
	id, err := hostA.Client().Start(callerCtx, "Moves", core.WithInput(1))
	must(t, err)
	caller.End()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the activity did not start on host A")
	}
	// The drain waits for the activity until the deadline, then cancels it.
	shutCtx, cancel := context.WithTimeout(ctx, time.Second)
	if err := hostA.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	cancel()

	// Host B opens the partition, runs the pending activity again, and
	// sends the next one through the work-item queue.
	holdB := func(_ core.ActivityContext, n int) (int, error) { return n * 10, nil }
	tpB := newTP()
	hostB := startRuntime(t, p, registry(holdB), func(o *core.Options) {
		o.TracerProvider = tpB
		o.OffloadActivities = true
	})
	got, err := core.WaitForResult[int](ctx, core.NewClient(p), id)
	if err != nil || got != 11 {
		t.Fatalf("result %d, %v; want 11", got, err)
	}
	must(t, hostB.Shutdown(ctx))

	spans := rec.Ended()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID() != caller.SpanContext().TraceID() {
			t.Errorf("span %q in trace %s, not the caller's %s", s.Name(), s.SpanContext().TraceID(), caller.SpanContext().TraceID())
		}
		byID[s.SpanContext().SpanID()] = s
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	for name, want := range map[string]int{"caller": 1, "create_orchestration Moves": 1, "orchestration Moves": 1,
		"activity Hold": 2, "timer": 1, "activity Plain": 1} {
		if n := len(byName[name]); n != want {
			t.Errorf("%d spans %q, want %d", n, name, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	exec := byName["orchestration Moves"][0]
	if parent := byID[exec.Parent().SpanID()]; parent == nil || parent.Name() != "create_orchestration Moves" {
		t.Errorf("execution span's parent %s is not the create span", exec.Parent().SpanID())
	}
	hosts := map[string]bool{}
	for _, s := range append(append(byName["activity Hold"], byName["timer"]...), byName["activity Plain"]...) {
		if s.Parent().SpanID() != exec.SpanContext().SpanID() {
			t.Errorf("%q span's parent %s, want the execution span %s", s.Name(), s.Parent().SpanID(), exec.SpanContext().SpanID())
		}
		for _, kv := range s.Attributes() {
			if kv.Key == core.AttrHost && s.Name() == "activity Hold" {
				hosts[kv.Value.AsString()] = true
			}
		}
	}
	if len(hosts) != 2 {
		t.Errorf("the activity's attempts ran on hosts %v; want both hosts", hosts)
	}
}
