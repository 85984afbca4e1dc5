package core_test

// The code between the README markers is the README's "A 30-line example",
// byte for byte; TestREADMEExample fails when the two differ.

import (
	"context"
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// README:begin
func PriceOrder(ctx core.ActivityContext, order string) (int, error) {
	return 10 * len(order), nil // activities do the I/O: call services, write to databases
}

func ApproveOrder(ctx *core.OrchestrationContext, order string) (string, error) {
	price, err := core.CallActivity[int](ctx, PriceOrder, order).Await(ctx)
	if err != nil {
		return "", err
	}
	if err := ctx.Sleep(50 * time.Millisecond); err != nil { // a durable timer; 30 days work too
		return "", err
	}
	approver, err := core.WaitForEvent[string](ctx, "approved").Await(ctx)
	return fmt.Sprintf("%s: %d EUR, approved by %s", order, price, approver), err
}

func Example() { // errors left unchecked for brevity
	reg := core.NewRegistry()
	core.RegisterActivity(reg, PriceOrder)
	core.RegisterOrchestration(reg, ApproveOrder)
	store, _ := memory.New(memory.Options{}) // azprovider.New for Azure Storage or Azurite
	rt, _ := core.NewRuntime(core.Options{Provider: store, Registry: reg})
	ctx := context.Background()
	rt.Start(ctx)
	defer rt.Shutdown(ctx)

	client := rt.Client()
	id, _ := client.Start(ctx, ApproveOrder, core.WithInput("order-42"))
	client.WaitForStart(ctx, id)
	client.RaiseEvent(ctx, id, "approved", "Ana") // buffered until the orchestration waits for it
	fmt.Println(core.WaitForResult[string](ctx, client, id))
	// Output: order-42: 80 EUR, approved by Ana <nil>
}

// README:end
