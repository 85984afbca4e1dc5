package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// A client's start delivered again after the instance continued as new and
// ended (its host crashed before deleting it, and the lock ran out) must not
// start the instance over: the ended execution knows the message.
func TestStartDeliveredAgainAfterContinueAsNewIsDropped(t *testing.T) {
	ctx := testContext(t)
	store := newStore(t, 1)
	reg := core.NewRegistry()
	rounds := func(ctx *core.OrchestrationContext, n int) (int, error) {
		if n < 3 {
			return 0, ctx.ContinueAsNew(n + 1)
		}
		return n, nil
	}
	if err := core.RegisterOrchestration(reg, rounds, core.WithName("Rounds")); err != nil {
		t.Fatal(err)
	}
	rt := startRuntime(t, core.Options{Provider: store, Registry: reg})
	client := rt.Client()
	start := &core.Message{ID: "start-1", InstanceID: "rounds-1", Event: &core.Event{Seq: -1, Kind: core.EventExecutionStarted,
		Time: time.Now(), Name: "Rounds", Data: []byte("0"), ExecutionID: "exec-1"}}
	send := func() {
		c := *start
		ev := *start.Event
		c.Event = &ev
		if err := store.SendMessages(ctx, []*core.Message{&c}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	first, err := client.WaitForCompletion(ctx, "rounds-1")
	if err != nil || first.Status != core.StatusCompleted {
		t.Fatalf("first run: %v, %v", first, err)
	}
	waitFor(ctx, t, "the host to be idle", func() bool { return store.QueueDepth(0) == 0 && rt.Idle() })
	episodes := rt.Stats().Episodes
	send() // the same start again
	waitFor(ctx, t, "the start to be consumed", func() bool { return store.QueueDepth(0) == 0 && rt.Idle() })
	if n := rt.Stats().Episodes - episodes; n != 0 {
		t.Fatalf("%d episodes committed for the start delivered again; want none", n)
	}
	st, err := client.GetInstance(context.Background(), "rounds-1", true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != core.StatusCompleted || st.ExecutionID != first.ExecutionID || string(st.Output) != "3" {
		t.Fatalf("after the start came again: %s, execution %s (was %s), output %s; want the ended instance untouched",
			st.Status, st.ExecutionID, first.ExecutionID, st.Output)
	}
}

// A start of an ended execution delivered again after the instance was
// started anew over it (ReplaceIfTerminal) and ended again is dropped too:
// the new execution inherited what the old one consumed.
func TestStartDeliveredAgainAfterAReplaceIsDropped(t *testing.T) {
	ctx := testContext(t)
	store := newStore(t, 1)
	reg := core.NewRegistry()
	double := func(_ *core.OrchestrationContext, n int) (int, error) { return 2 * n, nil }
	if err := core.RegisterOrchestration(reg, double, core.WithName("Double")); err != nil {
		t.Fatal(err)
	}
	rt := startRuntime(t, core.Options{Provider: store, Registry: reg})
	client := rt.Client()
	startMsg := func(id, exec, input string) *core.Message {
		return &core.Message{ID: id, InstanceID: "double-1", Event: &core.Event{Seq: -1, Kind: core.EventExecutionStarted,
			Time: time.Now(), Name: "Double", Data: []byte(input), ExecutionID: exec}}
	}
	settle := func() {
		waitFor(ctx, t, "the host to be idle", func() bool { return store.QueueDepth(0) == 0 && rt.Idle() })
	}
	for _, m := range []*core.Message{startMsg("start-1", "exec-1", "1"), startMsg("start-2", "exec-2", "2")} {
		if err := store.SendMessages(ctx, []*core.Message{m}); err != nil {
			t.Fatal(err)
		}
		settle()
	}
	st, err := client.GetInstance(ctx, "double-1", true)
	if err != nil || st.ExecutionID != "exec-2" || string(st.Output) != "4" {
		t.Fatalf("after the replace: %+v, %v; want execution exec-2 with output 4", st, err)
	}
	episodes := rt.Stats().Episodes
	if err := store.SendMessages(ctx, []*core.Message{startMsg("start-1", "exec-1", "1")}); err != nil {
		t.Fatal(err)
	}
	settle()
	if n := rt.Stats().Episodes - episodes; n != 0 {
		t.Fatalf("%d episodes committed for the first start delivered again; want none", n)
	}
	if st, err := client.GetInstance(ctx, "double-1", true); err != nil || st.ExecutionID != "exec-2" || string(st.Output) != "4" {
		t.Fatalf("after the old start came again: %+v, %v; want exec-2 untouched", st, err)
	}
}
