package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
	"github.com/azdurable/azdurable/leases"
)

// checkedHandler passes the runtime's partition calls through a checker.
type checkedHandler struct {
	core.PartitionHandler
	host string
	c    *checker
}

// The runtime may process a partition from the start of PartitionAcquired
// to the end of PartitionReleased; the checker sees that whole span.
func (h checkedHandler) PartitionAcquired(ctx context.Context, p int) error {
	h.c.acquired(h.host, p)
	if err := h.PartitionHandler.PartitionAcquired(ctx, p); err != nil {
		h.c.released(h.host, p)
		return err
	}
	return nil
}

func (h checkedHandler) PartitionReleased(ctx context.Context, p int) {
	h.PartitionHandler.PartitionReleased(ctx, p)
	h.c.released(h.host, p)
}

// checkedOwnership runs a Manager with the runtime's handler checked.
type checkedOwnership struct {
	m    *Manager
	host string
	c    *checker
}

func (o checkedOwnership) Run(ctx context.Context, h core.PartitionHandler) error {
	return o.m.Run(ctx, checkedHandler{PartitionHandler: h, host: o.host, c: o.c})
}

// TestRuntimesHandPartitionsOver runs orchestrations on runtimes that share
// one provider through Managers, while a host joins and another shuts down:
// every instance completes with its result, and no partition ever runs on
// two runtimes at once.
func TestRuntimesHandPartitionsOver(t *testing.T) {
	const partitions, instances = 8, 40
	prov, err := memory.New(memory.Options{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	reg := core.NewRegistry()
	if err := core.RegisterActivity(reg, func(_ core.ActivityContext, n int) (int, error) { return 2 * n, nil }, core.WithName("Double")); err != nil {
		t.Fatal(err)
	}
	err = core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, n int) (int, error) {
		a, err := core.CallActivity[int](ctx, "Double", n).Await(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := ctx.CreateTimer(300 * time.Millisecond).Await(ctx); err != nil {
			return 0, err
		}
		return core.CallActivity[int](ctx, "Double", a).Await(ctx)
	}, core.WithName("Quadruple"))
	if err != nil {
		t.Fatal(err)
	}

	store, c := leases.NewMemoryStore(), newChecker()
	defer c.check(t)
	start := func(id string) *core.Runtime {
		m, err := New(testOptions(store, id, partitions))
		if err != nil {
			t.Fatal(err)
		}
		rt, err := core.NewRuntime(core.Options{Provider: prov, Registry: reg, HostID: id,
			Ownership: checkedOwnership{m: m, host: id, c: c}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	shutdown := func(rt *core.Runtime) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown %s: %v", rt.HostID(), err)
		}
	}
	rt0, rt1 := start("host-0"), start("host-1")
	defer shutdown(rt0)
	eventually(t, converge, "two runtimes share the partitions", func() bool {
		return len(rt0.OwnedPartitions()) == partitions/2 && len(rt1.OwnedPartitions()) == partitions/2
	})

	ctx, cancel := context.WithTimeout(context.Background(), converge)
	defer cancel()
	client := core.NewClient(prov)
	var ids []string
	for i := range instances {
		id, err := client.Start(ctx, "Quadruple", core.WithInput(i), core.WithInstanceID(fmt.Sprintf("q-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// While the instances wait for their timers, a runtime joins and takes
	// partitions over, then another shuts down and hands its partitions on.
	rt2 := start("host-2")
	defer shutdown(rt2)
	eventually(t, converge, "the new runtime runs partitions", func() bool { return len(rt2.OwnedPartitions()) >= 2 })
	shutdown(rt1)

	for i, id := range ids {
		st, err := client.WaitForCompletion(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var out int
		if st.Status != core.StatusCompleted || json.Unmarshal(st.Output, &out) != nil || out != 4*i {
			t.Fatalf("%s ended %s with %s, want %d", id, st.Status, st.Output, 4*i)
		}
	}
	eventually(t, converge, "the two remaining runtimes share the partitions", func() bool {
		a, b := rt0.OwnedPartitions(), rt2.OwnedPartitions()
		return len(a)+len(b) == partitions && len(a) == partitions/2
	})
}
