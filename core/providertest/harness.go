package providertest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// env is one scenario's world: a provider, a registry, a runtime and a client.
type env struct {
	t       *testing.T
	f       Factory
	v       Variant
	p       core.Provider
	reg     *core.Registry
	rt      *core.Runtime
	client  *core.Client
	ctx     context.Context
	tweak   func(*core.Options)
	timeout time.Duration
}

func newEnv(t *testing.T, f Factory, v Variant, timeout time.Duration) *env {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &env{t: t, f: f, v: v, p: f(t), reg: core.NewRegistry(), ctx: ctx, timeout: timeout}
}

// must fails the test on a registration or setup error.
func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// start starts a runtime over the env's provider and registry.
func (e *env) start() {
	e.t.Helper()
	e.rt = e.newRuntime(e.reg)
	e.client = e.rt.Client()
}

func (e *env) newRuntime(reg *core.Registry) *core.Runtime {
	e.t.Helper()
	o := core.Options{Provider: e.p, Registry: reg, PollMaxInterval: 50 * time.Millisecond,
		OffloadActivities: e.v.Offload, HostID: fmt.Sprintf("test-%s", e.t.Name())}
	if !e.v.Cache {
		o.ExecutorCacheSize = -1
	}
	if e.tweak != nil {
		e.tweak(&o)
	}
	rt, err := core.NewRuntime(o)
	e.must(err)
	e.must(rt.Start(e.ctx))
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			e.t.Errorf("shutdown: %v", err)
		}
	})
	return rt
}

// stop shuts the env's runtime down.
func (e *env) stop() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.must(e.rt.Shutdown(ctx))
}

func (e *env) startInstance(name string, opts ...core.StartOption) string {
	e.t.Helper()
	id, err := e.client.Start(e.ctx, name, opts...)
	e.must(err)
	return id
}

// result starts an instance and waits for its typed result.
func result[R any](e *env, name string, input any, opts ...core.StartOption) (R, error) {
	e.t.Helper()
	id := e.startInstance(name, append([]core.StartOption{core.WithInput(input)}, opts...)...)
	return core.WaitForResult[R](e.ctx, e.client, id)
}

func expect[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func expectNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// waitUntil polls cond until it holds or the scenario's context ends.
func (e *env) waitUntil(what string, cond func() bool) {
	e.t.Helper()
	for !cond() {
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitForStatus waits until the instance has the status.
func (e *env) waitForStatus(id string, s core.Status) *core.InstanceState {
	e.t.Helper()
	var st *core.InstanceState
	e.waitUntil(fmt.Sprintf("instance %s to be %s", id, s), func() bool {
		var err error
		st, err = e.client.GetInstance(e.ctx, id, true)
		if err != nil && !errors.Is(err, core.ErrInstanceNotFound) {
			e.t.Fatal(err)
		}
		return err == nil && st.Status == s
	})
	return st
}

// waitForEventInHistory waits until the instance's history holds an event of the kind.
func (e *env) waitForEventInHistory(id string, kind core.EventKind) {
	e.t.Helper()
	e.waitUntil(fmt.Sprintf("%s in the history of %s", kind, id), func() bool {
		h, err := e.client.History(e.ctx, id)
		if err != nil {
			return false
		}
		for _, ev := range h {
			if ev.Kind == kind {
				return true
			}
		}
		return false
	})
}

// counter counts activity calls across goroutines.
type counter struct{ n atomic.Int64 }

func (c *counter) inc() int64 { return c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }

// validateHistory checks the invariants every history keeps: consecutive
// sequence numbers, each task scheduled once and completed at most once.
func validateHistory(t *testing.T, h []*core.Event) {
	t.Helper()
	scheduled := map[int64]core.EventKind{}
	completed := map[int64]bool{}
	for i, ev := range h {
		if ev.Seq != int64(i) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		switch ev.Kind {
		case core.EventActivityScheduled, core.EventTimerCreated, core.EventSubOrchestrationScheduled:
			if _, dup := scheduled[ev.TaskID]; dup {
				t.Fatalf("task %d scheduled twice", ev.TaskID)
			}
			scheduled[ev.TaskID] = ev.Kind
		case core.EventActivityCompleted, core.EventActivityFailed, core.EventTimerFired,
			core.EventSubOrchestrationCompleted, core.EventSubOrchestrationFailed:
			if _, ok := scheduled[ev.TaskID]; !ok {
				t.Fatalf("completion %s of unscheduled task %d", ev.Kind, ev.TaskID)
			}
			if completed[ev.TaskID] {
				t.Fatalf("task %d completed twice", ev.TaskID)
			}
			completed[ev.TaskID] = true
		}
	}
}
