package tester_test

import (
	"errors"
	"testing"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/tester"
)

// A plain error returned by user code is the application's failure, not an
// infrastructure fault, in the activity's failure and in the instance's.
func TestPlainErrorsAreApplicationFailures(t *testing.T) {
	tt := tester.New(t)
	var activityKind core.ErrorKind
	orch := func(ctx *core.OrchestrationContext, _ string) (string, error) {
		_, err := core.CallActivity[string](ctx, "Fails", "").Await(ctx)
		activityKind = core.KindOf(err)
		return "", err
	}
	if err := core.RegisterOrchestration(tt.Registry(), orch, core.WithName("Orch")); err != nil {
		t.Fatal(err)
	}
	tester.MockActivity(tt, "Fails", func(string) (string, error) { return "", errors.New("disk full") })
	_, err := tester.Run[string](tt, "Orch", "", core.WithInstanceID("orch-1"))
	if err == nil {
		t.Fatal("the orchestration succeeded")
	}
	if activityKind != core.KindApplication {
		t.Errorf("activity error kind %v, want application", activityKind)
	}
	// The stored failures, which metrics and operators see.
	seen := 0
	for _, ev := range tt.History("orch-1") {
		if ev.Kind == core.EventActivityFailed || ev.Kind == core.EventExecutionCompleted {
			seen++
			if ev.Failure == nil || ev.Failure.Kind != core.KindApplication {
				t.Errorf("%s: stored failure %+v, want kind application", ev.Kind, ev.Failure)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("found %d failure events, want 2", seen)
	}
}
