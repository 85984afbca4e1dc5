package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// A client waiting on an instance of a partition its host runs relies on
// the host's notices; when the host releases the partition, the waiter is
// woken and goes on as a client of another host would, so it learns of the
// completion on the next owner long before its safety-net poll (30 s).
func TestLocalWaiterFollowsAReleasedPartition(t *testing.T) {
	ctx := testContext(t)
	store := newStore(t, 1)
	reg := core.NewRegistry()
	waits := func(ctx *core.OrchestrationContext, _ int) (string, error) {
		return core.WaitForEvent[string](ctx, "go").Await(ctx)
	}
	if err := core.RegisterOrchestration(reg, waits, core.WithName("WaitsForGo")); err != nil {
		t.Fatal(err)
	}
	own := &handOver{release: make(chan struct{}), released: make(chan struct{})}
	a := startRuntime(t, core.Options{Provider: store, Registry: reg, Ownership: own, HostID: "a"})
	id, err := a.Client().Start(ctx, "WaitsForGo", core.WithInput(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client().WaitForStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	type result struct {
		st  *core.InstanceState
		err error
	}
	done := make(chan result, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		st, err := a.Client().WaitForCompletion(wctx, id)
		done <- result{st, err}
	}()
	waitFor(ctx, t, "the waiter to rely on host a's notices", func() bool { return core.HubWaiters(a.Client(), id) == 1 })
	close(own.release)
	<-own.released
	b := startRuntime(t, core.Options{Provider: store, Registry: reg, HostID: "b"})
	if err := b.Client().RaiseEvent(ctx, id, "go", "now"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.st.Status != core.StatusCompleted {
		t.Fatalf("the waiter on host a: %v, %v; want the completion on host b", r.st, r.err)
	}
}
