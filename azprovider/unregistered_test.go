package azprovider

import (
	"context"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// ownNothing is an Ownership that runs no partition: a host that only
// serves the shared work-item queue.
type ownNothing struct{}

func (ownNothing) Run(ctx context.Context, _ core.PartitionHandler) error {
	<-ctx.Done()
	return ctx.Err()
}

// A work item for an activity no running host has registered waits for a
// host that knows it, however many times it is delivered: a rolling deploy
// must not turn it into poison.
func TestAzuriteUnregisteredActivityWaitsForADeploy(t *testing.T) {
	p := newTestProvider(t)
	ctx := testCtx(t)
	double := func(_ core.ActivityContext, n int) (int, error) { return 2 * n, nil }
	orch := func(ctx *core.OrchestrationContext, n int) (int, error) {
		return core.CallActivity[int](ctx, "Double", n).Await(ctx)
	}
	old := core.NewRegistry()
	must(t, core.RegisterOrchestration(old, orch, core.WithName("UsesDouble")))
	startRuntime(t, p, old, func(o *core.Options) { o.OffloadActivities = true; o.MaxDequeueCount = 3 })

	client := core.NewClient(p)
	id, err := client.Start(ctx, "UsesDouble", core.WithInput(21))
	must(t, err)

	// Puts: the start, the work item, then a fresh copy each time the item
	// has been delivered MaxDequeueCount-1 times. Two copies mean it went
	// past the poison threshold twice over.
	for p.Stats()["queue.put"] < 4 {
		select {
		case <-ctx.Done():
			t.Fatalf("the unregistered work item was not re-queued: %v (stats %v)", ctx.Err(), p.Stats())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if st, err := client.GetInstance(ctx, id, false); err != nil || st.Status != core.StatusRunning {
		t.Fatalf("instance while its activity waits: %v, %v; want Running", st, err)
	}
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 0 {
		t.Fatalf("dead letters: %+v; an unregistered activity is not poison", page.DeadLetters)
	}

	// The deploy: a host that knows the activity joins.
	next := core.NewRegistry()
	must(t, core.RegisterOrchestration(next, orch, core.WithName("UsesDouble")))
	must(t, core.RegisterActivity(next, double, core.WithName("Double")))
	startRuntime(t, p, next, func(o *core.Options) { o.Ownership = ownNothing{} })
	got, err := core.WaitForResult[int](ctx, client, id)
	if err != nil || got != 42 {
		t.Fatalf("result %d, %v; want 42", got, err)
	}
	h := checkHistory(t, p, id)
	if n := countKind(h, core.EventActivityCompleted); n != 1 {
		t.Fatalf("%d activity completions, want 1", n)
	}
}
