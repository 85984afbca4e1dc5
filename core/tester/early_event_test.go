package tester_test

import (
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/tester"
)

// An event that one orchestration raises on an instance that does not exist
// yet is delivered in memory ahead of the start; it must wait for the start,
// not be lost.
func TestEventRaisedBeforeReceiverStarts(t *testing.T) {
	tt := tester.New(t)
	receiver := func(ctx *core.OrchestrationContext, _ string) (string, error) {
		return core.WaitForEvent[string](ctx, "ping").Await(ctx)
	}
	sender := func(ctx *core.OrchestrationContext, _ string) (string, error) {
		if err := ctx.RaiseEvent("receiver-1", "ping", "hello"); err != nil {
			return "", err
		}
		if err := ctx.Sleep(5 * time.Second); err != nil {
			return "", err
		}
		return ctx.StartOrchestration("Receiver", "", core.WithChildID("receiver-1"))
	}
	if err := core.RegisterOrchestration(tt.Registry(), receiver, core.WithName("Receiver")); err != nil {
		t.Fatal(err)
	}
	if err := core.RegisterOrchestration(tt.Registry(), sender, core.WithName("Sender")); err != nil {
		t.Fatal(err)
	}
	id, err := tester.Run[string](tt, "Sender", "")
	if err != nil || id != "receiver-1" {
		t.Fatalf("sender: %q, %v", id, err)
	}
	got, err := tester.Wait[string](tt, "receiver-1")
	if err != nil || got != "hello" {
		t.Fatalf("receiver got %q, %v; want the event raised before it started", got, err)
	}
}
