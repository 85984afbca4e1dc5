package core_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// startHost runs a runtime over a fresh in-memory task hub and returns its
// client and a function that shuts it down.
func startHost(reg *core.Registry) (*core.Client, func()) {
	store, err := memory.New(memory.Options{Partitions: 2})
	if err != nil {
		log.Fatal(err)
	}
	rt, err := core.NewRuntime(core.Options{Provider: store, Registry: reg})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		log.Fatal(err)
	}
	return rt.Client(), func() {
		if err := rt.Shutdown(ctx); err != nil {
			log.Fatal(err)
		}
	}
}

// run starts an instance of orchestration with input and waits for its result.
func run[R any](c *core.Client, orchestration any, input any) (R, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := c.Start(ctx, orchestration, core.WithInput(input))
	if err != nil {
		var zero R
		return zero, err
	}
	return core.WaitForResult[R](ctx, c, id)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// Greet is an activity: any code, with I/O, run at least once.
func Greet(ctx core.ActivityContext, name string) (string, error) {
	return "Hello, " + name + "!", nil
}

// Greetings is an orchestration: deterministic code that calls activities.
func Greetings(ctx *core.OrchestrationContext, names []string) (string, error) {
	var out []string
	for _, n := range names {
		s, err := core.CallActivity[string](ctx, Greet, n).Await(ctx)
		if err != nil {
			return "", err
		}
		out = append(out, s)
	}
	return strings.Join(out, " "), nil
}

func ExampleRegistry() {
	reg := core.NewRegistry()
	must(core.RegisterOrchestration(reg, Greetings))                                     // as "Greetings", its function name
	must(core.RegisterActivity(reg, Greet, core.WithName("greet")))                      // under another name
	must(core.RegisterActivity(reg, Greet, core.WithName("greet"), core.AtVersion("2"))) // a second version

	err := core.RegisterActivity(reg, Greet, core.WithName("greet"))
	fmt.Println("duplicate:", errors.Is(err, core.ErrInvalidInput))

	// A registry can be assembled from several packages.
	billing := core.NewRegistry()
	must(core.RegisterActivity(billing, Greet, core.WithName("Charge")))
	must(reg.Merge(billing))

	for _, nv := range reg.Activities() {
		fmt.Printf("activity %s %q\n", nv.Name, nv.Version)
	}
	for _, nv := range reg.Orchestrations() {
		fmt.Printf("orchestration %s\n", nv.Name)
	}
	// Output:
	// duplicate: true
	// activity Charge ""
	// activity greet ""
	// activity greet "2"
	// orchestration Greetings
}

func ExampleCallActivity() {
	reg := core.NewRegistry()
	must(core.RegisterActivity(reg, Greet))
	must(core.RegisterOrchestration(reg, Greetings))
	// By name: the activity may live in another binary.
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, name string) (string, error) {
		return core.CallActivity[string](ctx, "Greet", name).Await(ctx)
	}, core.WithName("GreetByName")))
	c, stop := startHost(reg)
	defer stop()

	out, err := run[string](c, Greetings, []string{"Tokyo", "Lima"})
	fmt.Println(out, err)
	out, err = run[string](c, "GreetByName", "Oslo")
	fmt.Println(out, err)
	// Output:
	// Hello, Tokyo! Hello, Lima! <nil>
	// Hello, Oslo! <nil>
}

func ExampleWhenAll() {
	reg := core.NewRegistry()
	must(core.RegisterActivity(reg, func(ctx core.ActivityContext, n int) (int, error) { return n * n, nil }, core.WithName("Square")))
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, n int) (int, error) {
		// Fan out: schedule every call first, then wait for all of them.
		squares := make([]*core.Future[int], n)
		all := make([]core.Awaitable, n)
		for i := range squares {
			squares[i] = core.CallActivity[int](ctx, "Square", i+1)
			all[i] = squares[i]
		}
		if err := core.WhenAll(ctx, all...); err != nil {
			return 0, err
		}
		sum := 0
		for _, f := range squares {
			v, _ := f.Await(ctx) // done: returns at once
			sum += v
		}
		return sum, nil
	}, core.WithName("SumOfSquares")))
	c, stop := startHost(reg)
	defer stop()

	sum, err := run[int](c, "SumOfSquares", 10)
	fmt.Println(sum, err)
	// Output: 385 <nil>
}

func ExampleWhenAny() {
	reg := core.NewRegistry()
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		approval := core.WaitForEvent[string](ctx, "approval")
		deadline := ctx.CreateTimer(24 * time.Hour)
		winner, err := core.WhenAny(ctx, approval, deadline)
		if err != nil {
			return "", err
		}
		if winner == deadline {
			approval.Cancel()
			return "expired", nil
		}
		deadline.Cancel() // the losing timer is not needed any more
		by, err := approval.Await(ctx)
		return "approved by " + by, err
	}, core.WithName("Approval")))
	c, stop := startHost(reg)
	defer stop()

	ctx := context.Background()
	id, err := c.Start(ctx, "Approval")
	must(err)
	_, err = c.WaitForStart(ctx, id)
	must(err)
	must(c.RaiseEvent(ctx, id, "approval", "Ana"))
	out, err := core.WaitForResult[string](ctx, c, id)
	fmt.Println(out, err)
	// Output: approved by Ana <nil>
}

func ExampleOrchestrationContext_CreateTimer() {
	reg := core.NewRegistry()
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, d time.Duration) (bool, error) {
		start := ctx.Now()
		// A durable timer: it survives restarts and may last days or months.
		if _, err := ctx.CreateTimer(d).Await(ctx); err != nil {
			return false, err
		}
		// ctx.Now is the time of the episode, the same on every replay.
		return ctx.Now().Sub(start) >= d, nil
	}, core.WithName("Wait")))
	c, stop := startHost(reg)
	defer stop()

	waited, err := run[bool](c, "Wait", 20*time.Millisecond)
	fmt.Println("waited:", waited, err)
	// Output: waited: true <nil>
}

func ExampleWaitForEvent() {
	reg := core.NewRegistry()
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, _ core.Void) ([]string, error) {
		var got []string
		for range 3 {
			item, err := core.WaitForEvent[string](ctx, "item").Await(ctx)
			if err != nil {
				return nil, err
			}
			got = append(got, item)
		}
		return got, nil
	}, core.WithName("Collect")))
	c, stop := startHost(reg)
	defer stop()

	ctx := context.Background()
	id, err := c.Start(ctx, "Collect")
	must(err)
	_, err = c.WaitForStart(ctx, id)
	must(err)
	// Events are buffered in order, even those raised before the wait.
	for _, item := range []string{"a", "b", "c"} {
		must(c.RaiseEvent(ctx, id, "item", item))
	}
	items, err := core.WaitForResult[[]string](ctx, c, id)
	fmt.Println(items, err)
	// Output: [a b c] <nil>
}

func ExampleCallSubOrchestration() {
	reg := core.NewRegistry()
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, city string) (string, error) {
		return "shipped to " + city, nil
	}, core.WithName("Ship")))
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, city string) (string, error) {
		// The child's id is derived from the parent's unless WithChildID sets it.
		return core.CallSubOrchestration[string](ctx, "Ship", city, core.WithChildID("ship-"+city)).Await(ctx)
	}, core.WithName("Order")))
	c, stop := startHost(reg)
	defer stop()

	out, err := run[string](c, "Order", "Quito")
	fmt.Println(out, err)
	st, err := c.GetInstance(context.Background(), "ship-Quito", false)
	must(err)
	fmt.Println("child:", st.Status)
	// Output:
	// shipped to Quito <nil>
	// child: Completed
}

func ExampleOrchestrationContext_ContinueAsNew() {
	reg := core.NewRegistry()
	must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, n int) (int, error) {
		if n < 5 {
			// End this execution and start a fresh one, with a fresh history.
			return 0, ctx.ContinueAsNew(n + 1)
		}
		return n, nil
	}, core.WithName("Count")))
	c, stop := startHost(reg)
	defer stop()

	ctx := context.Background()
	id, err := c.Start(ctx, "Count", core.WithInput(0))
	must(err)
	n, err := core.WaitForResult[int](ctx, c, id)
	fmt.Println(n, err)
	history, err := c.History(ctx, id)
	must(err)
	fmt.Println("events in the last execution:", len(history))
	// Output:
	// 5 <nil>
	// events in the last execution: 3
}

func ExampleClient_Start() {
	reg := core.NewRegistry()
	must(core.RegisterActivity(reg, Greet))
	must(core.RegisterOrchestration(reg, Greetings))

	store, err := memory.New(memory.Options{}) // or the Azure Storage provider
	must(err)
	rt, err := core.NewRuntime(core.Options{Provider: store, Registry: reg})
	must(err)
	ctx := context.Background()
	must(rt.Start(ctx))
	defer rt.Shutdown(ctx)

	client := rt.Client()
	id, err := client.Start(ctx, Greetings, core.WithInstanceID("greetings-1"), core.WithInput([]string{"Nairobi"}))
	must(err)
	out, err := core.WaitForResult[string](ctx, client, id)
	fmt.Println(id, out, err)

	_, err = client.Start(ctx, Greetings, core.WithInstanceID("greetings-1"))
	fmt.Println("same id again:", errors.Is(err, core.ErrInstanceExists))
	// Output:
	// greetings-1 Hello, Nairobi! <nil>
	// same id again: true
}
