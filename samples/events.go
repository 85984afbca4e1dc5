package samples

import (
	"fmt"

	"github.com/azdurable/azdurable/core"
)

// CollectEvent is the name of the events CollectEvents waits for.
const CollectEvent = "item"

// MaxCollect is the largest n CollectEvents accepts.
const MaxCollect = 20000

// CollectEvents waits for n external events named CollectEvent, one after
// the other, and returns the sum of their data. Events raised before the
// instance waits for them are buffered, so a client may raise all n at once.
func CollectEvents(ctx *core.OrchestrationContext, n int) (int64, error) {
	if n < 0 || n > MaxCollect {
		return 0, core.NewApplicationError(core.FailureTypeInvalidInput,
			fmt.Sprintf("collect %d events: it must be between 0 and %d", n, MaxCollect), true)
	}
	var sum int64
	for range n {
		v, err := core.WaitForEvent[int64](ctx, CollectEvent).Await(ctx)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}
