package samples

import (
	"fmt"

	"github.com/azdurable/azdurable/core"
)

// MaxFanOut is the largest n FanOutFanIn accepts.
const MaxFanOut = 1000

// FanOutFanIn squares 1, 2, …, n in n activities that run in parallel
// (possibly on several hosts), waits for all of them, and returns the sum of
// the squares.
func FanOutFanIn(ctx *core.OrchestrationContext, n int) (int64, error) {
	if n < 0 || n > MaxFanOut {
		return 0, core.NewApplicationError(core.FailureTypeInvalidInput,
			fmt.Sprintf("fan-out of %d: it must be between 0 and %d", n, MaxFanOut), true)
	}
	return SquareSum(ctx, n)
}

// SquareSum is FanOutFanIn without its cap, for callers that bound n
// themselves (the in-memory benchmark of a 10,000-activity fan-out).
func SquareSum(ctx *core.OrchestrationContext, n int) (int64, error) {
	// Fan out: schedule every activity before waiting for any.
	squares := make([]*core.Future[int64], n)
	all := make([]core.Awaitable, n)
	for i := range n {
		squares[i] = core.CallActivity[int64](ctx, Square, int64(i+1))
		all[i] = squares[i]
	}
	// Fan in: wait for all of them, then add up.
	if err := core.WhenAll(ctx, all...); err != nil {
		return 0, err
	}
	var sum int64
	for _, f := range squares {
		v, err := f.Await(ctx) // done already: returns at once
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// Square is the activity of FanOutFanIn.
func Square(_ core.ActivityContext, x int64) (int64, error) { return x * x, nil }

// SumOfSquares is what FanOutFanIn returns for n.
func SumOfSquares(n int) int64 {
	m := int64(n)
	return m * (m + 1) * (2*m + 1) / 6
}
