package core_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// tracedRegistry: Traced runs two activities, a timer and a sub-orchestration
// (which runs an activity of its own), then continues as new once; Flaky's
// activity fails.
func tracedRegistry(t *testing.T) *core.Registry {
	t.Helper()
	reg := core.NewRegistry()
	step := func(ctx core.ActivityContext, n int) (int, error) {
		if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
			stepsWithoutSpan.Add(1)
		}
		return n + 1, nil
	}
	fail := func(core.ActivityContext, int) (int, error) { return 0, errors.New("card declined") }
	child := func(ctx *core.OrchestrationContext, n int) (int, error) {
		return core.CallActivity[int](ctx, "Step", n).Await(ctx)
	}
	traced := func(ctx *core.OrchestrationContext, round int) (int, error) {
		n, err := core.CallActivity[int](ctx, "Step", 0).Await(ctx)
		if err != nil {
			return 0, err
		}
		if n, err = core.CallActivity[int](ctx, "Step", n).Await(ctx); err != nil {
			return 0, err
		}
		if _, err := ctx.CreateTimer(5 * time.Millisecond).Await(ctx); err != nil {
			return 0, err
		}
		if n, err = core.CallSubOrchestration[int](ctx, "Child", n).Await(ctx); err != nil {
			return 0, err
		}
		if round == 0 {
			return 0, ctx.ContinueAsNew(1)
		}
		return n, nil
	}
	flaky := func(ctx *core.OrchestrationContext, _ int) (int, error) {
		return core.CallActivity[int](ctx, "Fail", 0).Await(ctx)
	}
	for _, err := range []error{
		core.RegisterActivity(reg, step, core.WithName("Step")),
		core.RegisterActivity(reg, fail, core.WithName("Fail")),
		core.RegisterOrchestration(reg, child, core.WithName("Child")),
		core.RegisterOrchestration(reg, traced, core.WithName("Traced")),
		core.RegisterOrchestration(reg, flaky, core.WithName("Flaky")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// stepsWithoutSpan counts Step attempts whose context carried no span.
var stepsWithoutSpan atomic.Int64

func newTracerProvider(rec *tracetest.SpanRecorder) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithIDGenerator(core.TraceIDGenerator{}))
}

// traceRuntime runs a runtime over a fresh memory provider with the tracer provider.
func traceRuntime(t *testing.T, tp trace.TracerProvider, cacheSize int) (*core.Runtime, core.Provider) {
	t.Helper()
	store, err := memory.New(memory.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := core.NewRuntime(core.Options{Provider: store, Registry: tracedRegistry(t), TracerProvider: tp,
		ExecutorCacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return rt, store
}

func attr(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

// spanTree indexes ended spans by id and by name.
type spanTree struct {
	byID   map[trace.SpanID]sdktrace.ReadOnlySpan
	byName map[string][]sdktrace.ReadOnlySpan
}

func newSpanTree(t *testing.T, spans []sdktrace.ReadOnlySpan) spanTree {
	t.Helper()
	st := spanTree{byID: map[trace.SpanID]sdktrace.ReadOnlySpan{}, byName: map[string][]sdktrace.ReadOnlySpan{}}
	for _, s := range spans {
		id := s.SpanContext().SpanID()
		if _, dup := st.byID[id]; dup {
			t.Fatalf("two spans with id %s", id)
		}
		st.byID[id] = s
		st.byName[s.Name()] = append(st.byName[s.Name()], s)
	}
	return st
}

// parentOf returns the span's parent, failing when it was not emitted.
func (st spanTree) parentOf(t *testing.T, s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	t.Helper()
	p, ok := st.byID[s.Parent().SpanID()]
	if !ok {
		t.Fatalf("span %q (%s) has parent %s, which was not emitted", s.Name(), s.SpanContext().SpanID(), s.Parent().SpanID())
	}
	return p
}

func (st spanTree) count(name string) int { return len(st.byName[name]) }

// Spans of an orchestration form one tree under the caller's span, however
// often its episodes replay: one span per execution, its activities and
// timers under it, a sub-orchestration under its parent's span.
func TestTracingParentageAcrossReplays(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int
	}{{"cache", 0}, {"replay every episode", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			stepsWithoutSpan.Store(0)
			rec := tracetest.NewSpanRecorder()
			tp := newTracerProvider(rec)
			rt, _ := traceRuntime(t, tp, tc.cache)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			callerCtx, caller := tp.Tracer("test").Start(ctx, "caller")
			client := rt.Client()
			id, err := client.Start(callerCtx, "Traced", core.WithInput(0), core.WithInstanceID("traced-1"))
			if err != nil {
				t.Fatal(err)
			}
			caller.End()
			got, err := core.WaitForResult[int](ctx, client, id)
			if err != nil || got != 3 {
				t.Fatalf("result %d, %v; want 3", got, err)
			}
			// The last execution's span is emitted right after its commit,
			// which may come after the client was woken.
			if err := rt.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if n := stepsWithoutSpan.Swap(0); n != 0 {
				t.Errorf("%d activity attempts ran without a span in their context", n)
			}
			st := newSpanTree(t, rec.Ended())
			callerID := caller.SpanContext().SpanID()
			for name, want := range map[string]int{"caller": 1, "create_orchestration Traced": 1, "orchestration Traced": 2,
				"orchestration Child": 2, "activity Step": 6, "timer": 2} {
				if n := st.count(name); n != want {
					t.Errorf("%d spans %q, want %d", n, name, want)
				}
			}
			if len(rec.Ended()) != 14 {
				t.Errorf("%d spans in all, want 14", len(rec.Ended()))
			}
			for _, s := range rec.Ended() {
				if s.SpanContext().TraceID() != caller.SpanContext().TraceID() {
					t.Errorf("span %q is in trace %s, not the caller's", s.Name(), s.SpanContext().TraceID())
				}
				if s.EndTime().Before(s.StartTime()) {
					t.Errorf("span %q ends before it starts", s.Name())
				}
			}
			create := st.byName["create_orchestration Traced"][0]
			if create.Parent().SpanID() != callerID {
				t.Errorf("create span's parent %s, want the caller %s", create.Parent().SpanID(), callerID)
			}
			executions := map[string]sdktrace.ReadOnlySpan{}
			statuses := map[string]bool{}
			for _, s := range st.byName["orchestration Traced"] {
				if p := st.parentOf(t, s); p.Name() != "create_orchestration Traced" {
					t.Errorf("execution span's parent is %q, want the create span", p.Name())
				}
				executions[attr(s, core.AttrExecutionID)] = s
				statuses[attr(s, core.AttrStatus)] = true
				if attr(s, core.AttrInstanceID) != id {
					t.Errorf("execution span of instance %q, want %q", attr(s, core.AttrInstanceID), id)
				}
			}
			if !statuses[core.StatusContinuedAsNew.String()] || !statuses[core.StatusCompleted.String()] {
				t.Errorf("execution statuses %v; want one continued as new and one completed", statuses)
			}
			for _, s := range st.byName["orchestration Child"] {
				p := st.parentOf(t, s)
				if p.Name() != "orchestration Traced" {
					t.Errorf("sub-orchestration span's parent is %q, want its parent's execution", p.Name())
				}
			}
			for _, s := range append(st.byName["activity Step"], st.byName["timer"]...) {
				p := st.parentOf(t, s)
				if p.Name() != "orchestration Traced" && p.Name() != "orchestration Child" {
					t.Errorf("%q span's parent is %q, want an execution", s.Name(), p.Name())
				}
				if attr(s, core.AttrExecutionID) != attr(p, core.AttrExecutionID) {
					t.Errorf("%q span of execution %s under the span of execution %s", s.Name(),
						attr(s, core.AttrExecutionID), attr(p, core.AttrExecutionID))
				}
				if s.StartTime().Before(p.StartTime()) || s.EndTime().After(p.EndTime()) {
					t.Errorf("%q span [%v, %v] outside its execution's [%v, %v]", s.Name(), s.StartTime(), s.EndTime(), p.StartTime(), p.EndTime())
				}
			}
			for _, s := range st.byName["timer"] {
				fire, err := time.Parse(time.RFC3339Nano, attr(s, core.AttrFireAt))
				if err != nil || s.EndTime().Before(fire) {
					t.Errorf("timer span ends at %v, before it was due (%q, %v)", s.EndTime(), attr(s, core.AttrFireAt), err)
				}
			}
		})
	}
}

// A runtime with a tracer starts a trace for an orchestration whose client
// had none; failures are marked on the spans.
func TestTracingRootAndFailure(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	rt, store := traceRuntime(t, newTracerProvider(rec), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := core.NewClient(store) // no tracer, and ctx has no span
	id, err := client.Start(ctx, "Flaky", core.WithInput(0))
	if err != nil {
		t.Fatal(err)
	}
	st, err := client.WaitForCompletion(ctx, id)
	if err != nil || st.Status != core.StatusFailed {
		t.Fatalf("status %v, %v; want Failed", st, err)
	}
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	tree := newSpanTree(t, rec.Ended())
	if n := len(rec.Ended()); n != 2 {
		t.Fatalf("%d spans, want 2 (the execution and its activity): %v", n, tree.byName)
	}
	orch, act := tree.byName["orchestration Flaky"], tree.byName["activity Fail"]
	if len(orch) != 1 || len(act) != 1 {
		t.Fatalf("spans %v", tree.byName)
	}
	if orch[0].Parent().IsValid() {
		t.Errorf("execution span has parent %s; want a root", orch[0].Parent().SpanID())
	}
	if tree.parentOf(t, act[0]) != orch[0] {
		t.Errorf("activity span is not under the execution's")
	}
	for _, s := range []sdktrace.ReadOnlySpan{orch[0], act[0]} {
		if s.Status().Code.String() != "Error" {
			t.Errorf("span %q status %v, want Error", s.Name(), s.Status())
		}
	}
	if got := act[0].Status().Description; got != "card declined" {
		t.Errorf("activity span status %q, want the activity's error", got)
	}
}

// Without a tracer provider, no trace context is stored at all.
func TestNoTracingStoresNoTrace(t *testing.T) {
	rt, _ := traceRuntime(t, nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := rt.Client()
	id, err := client.Start(ctx, "Traced", core.WithInput(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.WaitForResult[int](ctx, client, id); err != nil {
		t.Fatal(err)
	}
	h, err := client.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range h {
		if ev.Trace != nil {
			t.Fatalf("event %s carries a trace %+v without tracing", ev.Kind, ev.Trace)
		}
	}
}

func TestTraceIDGeneratorHonoursOnlyPresets(t *testing.T) {
	g := core.TraceIDGenerator{}
	seen := map[string]bool{}
	for range 100 {
		tid, sid := g.NewIDs(context.Background())
		if !tid.IsValid() || !sid.IsValid() || seen[sid.String()] {
			t.Fatalf("ids %s %s: invalid or repeated", tid, sid)
		}
		seen[sid.String()] = true
		if s := g.NewSpanID(context.Background(), tid); !s.IsValid() || seen[s.String()] {
			t.Fatalf("span id %s: invalid or repeated", s)
		}
	}
}
