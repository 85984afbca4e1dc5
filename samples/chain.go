package samples

import (
	"fmt"

	"github.com/azdurable/azdurable/core"
)

// MaxChain is the largest n Chain accepts: each step adds three history
// events, and an execution's history is capped (core.Options.MaxHistoryEvents).
const MaxChain = 20000

// Chain runs n activities strictly one after another, each adding one to
// the result of the one before, and returns n. It is the long sequence of
// the benchmarks: every step is one episode of a history that keeps growing.
func Chain(ctx *core.OrchestrationContext, n int) (int64, error) {
	if n < 0 || n > MaxChain {
		return 0, core.NewApplicationError(core.FailureTypeInvalidInput,
			fmt.Sprintf("chain of %d: it must be between 0 and %d", n, MaxChain), true)
	}
	var v int64
	for range n {
		next, err := core.CallActivity[int64](ctx, Increment, v).Await(ctx)
		if err != nil {
			return 0, err
		}
		v = next
	}
	return v, nil
}

// Increment is the activity of Chain.
func Increment(_ core.ActivityContext, x int64) (int64, error) { return x + 1, nil }
