package core_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// batchFetcher gives the memory provider core.ActivityBatchFetcher and
// records the max of each call.
type batchFetcher struct {
	core.Provider
	mu    sync.Mutex
	maxes []int
}

func (b *batchFetcher) FetchActivities(ctx context.Context, max int, lock time.Duration) ([]*core.ActivityWorkItem, error) {
	b.mu.Lock()
	b.maxes = append(b.maxes, max)
	b.mu.Unlock()
	var out []*core.ActivityWorkItem
	for len(out) < max {
		it, err := b.FetchActivity(ctx, lock)
		if err != nil || it == nil {
			return out, err
		}
		out = append(out, it)
	}
	return out, nil
}

// With a provider that fetches work items in batches, the runtime asks for
// as many as it has free activity slots, never more, and runs them all.
func TestWorkItemsFetchedForTheFreeSlots(t *testing.T) {
	ctx := testContext(t)
	store := newStore(t, 2)
	reg := core.NewRegistry()
	double := func(_ core.ActivityContext, n int) (int, error) { return 2 * n, nil }
	if err := core.RegisterActivity(reg, double, core.WithName("Work")); err != nil {
		t.Fatal(err)
	}
	if err := core.RegisterOrchestration(reg, FanOut); err != nil {
		t.Fatal(err)
	}
	bf := &batchFetcher{Provider: store}
	rt := startRuntime(t, core.Options{Provider: bf, Registry: reg, OffloadActivities: true, ActivityConcurrency: 4})
	id, err := rt.Client().Start(ctx, FanOut, core.WithInput(20))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := core.WaitForResult[int](ctx, rt.Client(), id)
	if err != nil || sum != 380 {
		t.Fatalf("sum %d, %v; want 380", sum, err)
	}
	bf.mu.Lock()
	defer bf.mu.Unlock()
	if len(bf.maxes) == 0 || slices.Max(bf.maxes) != 4 || slices.Min(bf.maxes) < 1 {
		t.Fatalf("the runtime asked for %v work items at a time; want between 1 and its 4 slots, all 4 when free", bf.maxes)
	}
}
