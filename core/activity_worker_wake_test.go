package core_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// stepClock is a Clock whose timers fire only when the test says so.
type stepClock struct {
	mu         sync.Mutex
	timers     []*stepTimer
	registered chan struct{}
}

type stepTimer struct {
	d    time.Duration
	f    func()
	done bool
}

func (c *stepClock) Now() time.Time { return time.Unix(1700000000, 0).UTC() }

func (c *stepClock) AfterFunc(d time.Duration, f func()) func() bool {
	t := &stepTimer{d: d, f: f}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	select {
	case c.registered <- struct{}{}:
	default:
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}

// fireBelow starts every pending timer shorter than limit, and reports
// whether a timer of exactly limit is pending.
func (c *stepClock) fireBelow(limit time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := false
	for _, t := range c.timers {
		switch {
		case t.done:
		case t.d < limit:
			t.done = true
			go t.f()
		case t.d == limit:
			pending = true
		}
	}
	return pending
}

// TestLocalOffloadWakesIdleWorkItemPoller: once the work-item poller waits
// its longest interval, an activity this host offloads still runs at once,
// because the offload wakes the poller in memory. The clock never reaches
// the end of that interval.
func TestLocalOffloadWakesIdleWorkItemPoller(t *testing.T) {
	const pollMax = 100 * time.Millisecond
	idle := 30 * pollMax // the work-item poller's longest interval
	reg := core.NewRegistry()
	if err := core.RegisterActivity(reg, func(_ core.ActivityContext, n int) (int, error) { return n + 1, nil }, core.WithName("inc")); err != nil {
		t.Fatal(err)
	}
	if err := core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, n int) (int, error) {
		return core.CallActivity[int](ctx, "inc", n).Await(ctx)
	}, core.WithName("once")); err != nil {
		t.Fatal(err)
	}
	prov, err := memory.New(memory.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	clock := &stepClock{registered: make(chan struct{}, 1)}
	rt, err := core.NewRuntime(core.Options{Provider: prov, Registry: reg, Clock: clock,
		OffloadActivities: true, PollMaxInterval: pollMax})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Shutdown(context.Background()) }()
	// Let every timer shorter than the idle interval fire until the
	// work-item poller waits the idle interval.
	for !clock.fireBelow(idle) {
		select {
		case <-clock.registered:
		case <-ctx.Done():
			t.Fatal("the work-item poller never backed off to its idle interval")
		}
	}
	c := rt.Client()
	id, err := c.Start(ctx, "once", core.WithInput(1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatalf("the offloaded activity did not run while the poller waited its idle interval: %v", err)
	}
	var out int
	if err := (core.JSONCodec{}).Unmarshal(st.Output, &out); err != nil || out != 2 {
		t.Fatalf("output %s (%v), want 2", st.Output, err)
	}
}
