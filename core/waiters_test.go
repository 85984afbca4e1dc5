package core_test

import (
	"context"
	"sync"
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

// readCounter counts the instance reads a client makes.
type readCounter struct {
	core.Provider
	mu    sync.Mutex
	reads map[string]int
}

func (r *readCounter) GetInstance(ctx context.Context, id string, withPayloads bool) (*core.InstanceState, error) {
	r.mu.Lock()
	r.reads[id]++
	r.mu.Unlock()
	return r.Provider.GetInstance(ctx, id, withPayloads)
}

// A client waiting on an instance of a partition its host runs is handed
// the state its host committed: the completion costs no read, and the state
// equals what storage holds.
func TestLocalWaiterGetsTheCommittedState(t *testing.T) {
	ctx := testContext(t)
	store := newStore(t, 2)
	reg := core.NewRegistry()
	waits := func(ctx *core.OrchestrationContext, in string) (string, error) {
		ctx.SetCustomStatus("waiting")
		got, err := core.WaitForEvent[string](ctx, "go").Await(ctx)
		return in + " " + got, err
	}
	if err := core.RegisterOrchestration(reg, waits, core.WithName("Greets")); err != nil {
		t.Fatal(err)
	}
	counter := &readCounter{Provider: store, reads: map[string]int{}}
	rt := startRuntime(t, core.Options{Provider: store, Registry: reg})
	c := core.NewClientOf(rt, counter)
	id, err := c.Start(ctx, "Greets", core.WithInput("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	done := make(chan *core.InstanceState, 1)
	go func() {
		st, err := c.WaitForCompletion(ctx, id)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	waitFor(ctx, t, "the waiter to rely on the host's notices", func() bool { return core.HubWaiters(c, id) == 1 })
	counter.mu.Lock()
	before := counter.reads[id]
	counter.mu.Unlock()
	if err := rt.Client().RaiseEvent(ctx, id, "go", "world"); err != nil { // its reads are not counted
		t.Fatal(err)
	}
	st := <-done
	counter.mu.Lock()
	after := counter.reads[id]
	counter.mu.Unlock()
	if after != before {
		t.Errorf("the waiter read the instance %d times after the host's notice", after-before)
	}
	stored, err := store.GetInstance(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != core.StatusCompleted || string(st.Output) != `"hello world"` || string(st.Input) != `"hello"` ||
		string(st.CustomStatus) != `"waiting"` || st.ExecutionID != stored.ExecutionID || !st.CompletedAt.Equal(stored.CompletedAt) ||
		!st.CreatedAt.Equal(stored.CreatedAt) || st.HistoryEvents != stored.HistoryEvents || st.HistoryBytes != stored.HistoryBytes {
		t.Fatalf("the waiter got %+v, storage holds %+v", st, stored)
	}
}
