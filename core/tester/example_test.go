package tester_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/tester"
)

// OrderApproval waits up to two days for a manager's approval, then charges
// the order; without approval it cancels it.
func OrderApproval(ctx *core.OrchestrationContext, order string) (string, error) {
	approved := core.WaitForEvent[string](ctx, "approved")
	deadline := ctx.CreateTimer(48 * time.Hour)
	if winner, err := core.WhenAny(ctx, approved, deadline); err != nil || winner == deadline {
		return "cancelled " + order, err
	}
	deadline.Cancel()
	manager, err := approved.Await(ctx)
	if err != nil {
		return "", err
	}
	receipt, err := core.CallActivity[string](ctx, "Charge", order).Await(ctx)
	return receipt + " approved by " + manager, err
}

// A unit test of OrderApproval: the manager approves after 30 hours of
// virtual time, and the test takes milliseconds.
func Example() {
	t := &exampleT{} // in a real test, the *testing.T
	defer t.finish()

	tt := tester.New(t)
	if err := core.RegisterOrchestration(tt.Registry(), OrderApproval); err != nil {
		fmt.Println(err)
		return
	}
	tester.MockActivity(tt, "Charge", func(order string) (string, error) { return "receipt-" + order, nil })
	tt.RaiseEventAfter(30*time.Hour, "order-7", "approved", "ann")

	result, err := tester.Run[string](tt, OrderApproval, "7", core.WithInstanceID("order-7"))
	fmt.Println(result, err)
	fmt.Println("virtual time passed:", tt.Clock().Now().Sub(tester.DefaultStartTime))
	var kinds []string
	for _, ev := range tt.History("order-7") {
		kinds = append(kinds, ev.Kind.String())
	}
	fmt.Println(strings.Join(kinds, " "))
	// Output:
	// receipt-7 approved by ann <nil>
	// virtual time passed: 30h0m0s
	// EpisodeStarted ExecutionStarted TimerCreated EpisodeStarted EventRaised TaskCanceled ActivityScheduled EpisodeStarted ActivityCompleted ExecutionCompleted
}

// An orchestration that waits for something that never comes fails the test
// instead of hanging it.
func Example_blocked() {
	t := &exampleT{}
	defer t.finish()

	tt := tester.New(t)
	err := core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		if err := ctx.Sleep(time.Hour); err != nil {
			return "", err
		}
		return core.WaitForEvent[string](ctx, "go").Await(ctx)
	}, core.WithName("WaitsForGo"))
	if err != nil {
		fmt.Println(err)
		return
	}

	_, err = tester.Run[string](tt, "WaitsForGo", nil, core.WithInstanceID("w-1"))
	fmt.Println(errors.Is(err, tester.ErrBlocked))
	fmt.Println(err)
	// Output:
	// true
	// tester: orchestration blocked: instance "w-1" at virtual time 2026-01-01T01:00:00Z: instance "w-1" (WaitsForGo) waits for an external event (it has no activity, timer or sub-orchestration pending); no timer, delayed message or scheduled action is left to move it on
}

// exampleT stands in for the *testing.T that a test passes to tester.New.
type exampleT struct{ cleanups []func() }

func (*exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (*exampleT) Logf(format string, args ...any)   {}
func (*exampleT) Errorf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func (*exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
