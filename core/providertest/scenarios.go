package providertest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// scenario is one end-to-end test, run once per variant.
type scenario struct {
	name string
	run  func(e *env)
}

// RunScenarios runs every end-to-end scenario through a real runtime and
// client, once per variant (with and without the executor cache by default).
func RunScenarios(t *testing.T, f Factory, opts Options) {
	opts = opts.withDefaults()
	for _, v := range opts.Variants {
		t.Run(v.Name, func(t *testing.T) {
			for _, s := range scenarios {
				t.Run(s.name, func(t *testing.T) {
					t.Parallel()
					s.run(newEnv(t, f, v, opts.Timeout))
				})
			}
		})
	}
}

var scenarios = []scenario{
	{"HelloSequence", helloSequence},
	{"ControlFlowAndLoops", controlFlow},
	{"ErrorHandlingAndRecovery", errorHandling},
	{"FailurePropagatesTypedError", failurePropagates},
	{"PanicsBecomeFailures", panics},
	{"TimerRacesActivity", timerRacesActivity},
	{"TimerPatterns", timerPatterns},
	{"FanOutFanIn", fanOutFanIn},
	{"SubOrchestrations", subOrchestrations},
	{"SubOrchestrationFailure", subOrchestrationFailure},
	{"WhenAnyActivityVersusEvent", whenAnyActivityVersusEvent},
	{"EventsBeforeAndAfterWait", eventsBeforeAndAfterWait},
	{"EventsBetweenInstances", eventsBetweenInstances},
	{"HumanInteractionWithTimeout", humanInteraction},
	{"SagaWithCompensation", saga},
	{"ContinueAsNewCarriesEvents", continueAsNewCarriesEvents},
	{"DetachedStart", detachedStart},
	{"TypedPayloads", typedPayloads},
	{"Versioning", versioning},
	{"TerminateCascades", terminateCascades},
	{"CustomStatusPolling", customStatus},
	{"RetriesWithBackoff", retries},
	{"ActivityTimeout", activityTimeout},
	{"SuspendAndResume", suspendResume},
	{"LargePayloads", largePayloads},
	{"NonDeterminismDetected", nonDeterminism},
	{"UnregisteredThenRegistered", unregisteredThenRegistered},
	{"StartPoliciesAndRestart", startPolicies},
	{"ScheduledStart", scheduledStart},
	{"HistoryCap", historyCap},
	{"QueryAndPurge", queryAndPurge},
	{"HostRegistrations", hostRegistrations},
}

func greet(_ core.ActivityContext, name string) (string, error) { return "Hello, " + name + "!", nil }

func helloSequence(e *env) {
	e.must(core.RegisterActivity(e.reg, greet))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, names []string) ([]string, error) {
		var out []string
		for _, n := range names {
			s, err := core.CallActivity[string](ctx, greet, n).Await(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}, core.WithName("Hello")))
	e.start()
	id := e.startInstance("Hello", core.WithInput([]string{"Tokyo", "Seattle", "London", "Cairo", "Lima"}))
	got, err := core.WaitForResult[[]string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "result", strings.Join(got, " "), "Hello, Tokyo! Hello, Seattle! Hello, London! Hello, Cairo! Hello, Lima!")
	h, err := e.client.History(e.ctx, id)
	expectNoErr(e.t, err)
	validateHistory(e.t, h)
	st, err := e.client.GetInstance(e.ctx, id, false)
	expectNoErr(e.t, err)
	expect(e.t, "status", st.Status, core.StatusCompleted)
	expect(e.t, "history events", st.HistoryEvents, len(h))
}

func controlFlow(e *env) {
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, n int) (int, error) { return n * 2, nil }, core.WithName("Double")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, n int) (int, error) {
		total := 0
		for i := range n {
			if i%2 == 0 {
				v, err := core.CallActivity[int](ctx, "Double", i).Await(ctx)
				if err != nil {
					return 0, err
				}
				total += v
			} else {
				total += i
			}
		}
		if total > 10 {
			v, err := core.CallActivity[int](ctx, "Double", total).Await(ctx)
			return v, err
		}
		return total, nil
	}, core.WithName("Flow")))
	e.start()
	// i=0..5: evens doubled 0+4+8, odds 1+3+5 → 21 > 10 → 42.
	got, err := result[int](e, "Flow", 6)
	expectNoErr(e.t, err)
	expect(e.t, "result", got, 42)
}

type outOfStock struct{ item string }

func (e *outOfStock) Error() string     { return e.item + " is out of stock" }
func (e *outOfStock) ErrorType() string { return "OutOfStock" }

func errorHandling(e *env) {
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, item string) (string, error) {
		if item == "gold" {
			return "", &outOfStock{item: item}
		}
		return "reserved " + item, nil
	}, core.WithName("Reserve")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, items []string) (string, error) {
		var out []string
		for _, it := range items {
			s, err := core.CallActivity[string](ctx, "Reserve", it).Await(ctx)
			var ae *core.ApplicationError
			var act *core.ActivityError
			if errors.As(err, &ae) && ae.Type == "OutOfStock" && errors.As(err, &act) && act.Name == "Reserve" {
				s, err = core.CallActivity[string](ctx, "Reserve", "silver").Await(ctx)
			}
			if err != nil {
				return "", err
			}
			out = append(out, s)
		}
		return strings.Join(out, ","), nil
	}, core.WithName("Shop")))
	e.start()
	got, err := result[string](e, "Shop", []string{"tin", "gold"})
	expectNoErr(e.t, err)
	expect(e.t, "result", got, "reserved tin,reserved silver")
}

func failurePropagates(e *env) {
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, item string) (string, error) {
		return "", &outOfStock{item: item}
	}, core.WithName("Reserve")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, item string) (string, error) {
		return core.CallActivity[string](ctx, "Reserve", item).Await(ctx)
	}, core.WithName("Shop")))
	e.start()
	_, err := result[string](e, "Shop", "gold")
	var fe *core.FailureError
	if !errors.As(err, &fe) {
		e.t.Fatalf("err = %v, want a FailureError", err)
	}
	var ae *core.ApplicationError
	if !errors.As(err, &ae) || ae.Cause == nil || ae.Cause.Type != "OutOfStock" || ae.Cause.Message != "gold is out of stock" {
		e.t.Fatalf("application error lost its cause: %#v", ae)
	}
	expect(e.t, "kind", core.KindOf(err), core.KindApplication)
}

func panics(e *env) {
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, _ core.Void) (core.Void, error) {
		panic("activity exploded")
	}, core.WithName("Boom")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, which string) (string, error) {
		if which == "orchestration" {
			var m map[string]int
			//lint:ignore SA5000 the nil map write is the point: a runtime panic in orchestration code
			m["x"] = 1
		}
		_, err := core.CallActivity[core.Void](ctx, "Boom", nil).Await(ctx)
		var pe *core.PanicError
		if errors.As(err, &pe) && strings.Contains(pe.Stack, "goroutine") {
			return "caught: " + pe.Value, nil
		}
		return "", err
	}, core.WithName("Panicky")))
	e.start()
	got, err := result[string](e, "Panicky", "activity")
	expectNoErr(e.t, err)
	expect(e.t, "activity panic", got, "caught: activity exploded")
	_, err = result[string](e, "Panicky", "orchestration")
	var pe *core.PanicError
	if !errors.As(err, &pe) || !strings.Contains(pe.Value, "nil map") || pe.Stack == "" {
		e.t.Fatalf("orchestration panic: err = %v", err)
	}
}

func timerRacesActivity(e *env) {
	release := make(chan struct{})
	cancelled := make(chan struct{}, 1)
	e.must(core.RegisterActivity(e.reg, func(ctx core.ActivityContext, _ core.Void) (string, error) {
		select {
		case <-release:
			return "slow done", nil
		case <-ctx.Done():
			cancelled <- struct{}{}
			return "", ctx.Err()
		}
	}, core.WithName("Slow")))
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, _ core.Void) (string, error) { return "fast", nil }, core.WithName("Fast")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, which string) (string, error) {
		act := core.CallActivity[string](ctx, which, nil)
		// The slow activity never ends by itself, so a short timer wins for
		// sure. The fast one races a timer that cannot fire within the
		// scenario, so that it wins however slowly its result travels (an
		// offloaded result goes through two queues).
		d := 200 * time.Millisecond
		if which == "Fast" {
			d = time.Hour
		}
		timer := ctx.CreateTimer(d)
		winner, err := core.WhenAny(ctx, act, timer)
		if err != nil {
			return "", err
		}
		if winner == timer {
			act.Cancel()
			_, err := act.Await(ctx)
			if !errors.Is(err, core.ErrCanceled) {
				return "", fmt.Errorf("cancelled activity returned %v", err)
			}
			return "timer", nil
		}
		timer.Cancel()
		return act.Await(ctx)
	}, core.WithName("Race")))
	e.start()
	got, err := result[string](e, "Race", "Slow")
	expectNoErr(e.t, err)
	expect(e.t, "slow activity against the timer", got, "timer")
	select {
	case <-cancelled:
	case <-e.ctx.Done():
		e.t.Fatal("the running activity never saw its context cancelled")
	}
	close(release)
	got, err = result[string](e, "Race", "Fast")
	expectNoErr(e.t, err)
	expect(e.t, "fast activity against the timer", got, "fast")
}

func timerPatterns(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) ([]int64, error) {
		start := ctx.Now()
		var marks []int64
		for range 3 {
			if err := ctx.Sleep(50 * time.Millisecond); err != nil {
				return nil, err
			}
			marks = append(marks, ctx.Now().Sub(start).Milliseconds())
		}
		// A timer in the past fires at once; timers far in the future can be cancelled.
		if _, err := ctx.CreateTimerAt(start.Add(-time.Hour)).Await(ctx); err != nil {
			return nil, err
		}
		far := ctx.CreateTimer(30 * 24 * time.Hour)
		far.Cancel()
		if _, err := far.Await(ctx); !errors.Is(err, core.ErrCanceled) {
			return nil, fmt.Errorf("cancelled timer: %v", err)
		}
		// Several timers at once.
		var ts []core.Awaitable
		for i := range 5 {
			ts = append(ts, ctx.CreateTimer(time.Duration(10*i)*time.Millisecond))
		}
		return marks, core.WhenAll(ctx, ts...)
	}, core.WithName("Timers")))
	e.start()
	got, err := result[[]int64](e, "Timers", nil)
	expectNoErr(e.t, err)
	if len(got) != 3 {
		e.t.Fatalf("marks = %v", got)
	}
	for i, m := range got {
		if m < int64(50*(i+1)) {
			e.t.Fatalf("timer %d fired after %d ms, before its due time %d ms", i, m, 50*(i+1))
		}
	}
}

func fanOutFanIn(e *env) {
	const n = 100
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, i int) (int, error) { return i * i, nil }, core.WithName("Square")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, n int) (int, error) {
		fs := make([]*core.Future[int], n)
		for i := range n {
			fs[i] = core.CallActivity[int](ctx, "Square", i)
		}
		sum := 0
		for _, f := range fs {
			v, err := f.Await(ctx)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}, core.WithName("FanOut")))
	e.start()
	got, err := result[int](e, "FanOut", n)
	expectNoErr(e.t, err)
	expect(e.t, "sum of squares", got, (n-1)*n*(2*n-1)/6)
}

func registerChildren(e *env) {
	e.must(core.RegisterActivity(e.reg, greet))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, name string) (string, error) {
		return core.CallActivity[string](ctx, greet, name).Await(ctx)
	}, core.WithName("Child")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, name string) (string, error) {
		s, err := core.CallSubOrchestration[string](ctx, "Child", name).Await(ctx)
		return "<" + s + ">", err
	}, core.WithName("Middle")))
}

func subOrchestrations(e *env) {
	registerChildren(e)
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, names []string) ([]string, error) {
		// Basic, with an explicit id.
		first, err := core.CallSubOrchestration[string](ctx, "Child", names[0], core.WithChildID(ctx.InstanceID()+"-explicit")).Await(ctx)
		if err != nil {
			return nil, err
		}
		out := []string{first}
		// Fan-out of children with derived ids.
		var fs []*core.Future[string]
		for _, n := range names[1:] {
			fs = append(fs, core.CallSubOrchestration[string](ctx, "Child", n))
		}
		for _, f := range fs {
			s, err := f.Await(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		// Chained: a child that has a child.
		s, err := core.CallSubOrchestration[string](ctx, "Middle", "chain").Await(ctx)
		return append(out, s), err
	}, core.WithName("Parent")))
	e.start()
	id := e.startInstance("Parent", core.WithInput([]string{"a", "b", "c", "d"}))
	got, err := core.WaitForResult[[]string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "result", strings.Join(got, "|"), "Hello, a!|Hello, b!|Hello, c!|Hello, d!|<Hello, chain!>")
	child, err := e.client.GetInstance(e.ctx, id+"-explicit", false)
	expectNoErr(e.t, err)
	if child.Parent == nil || child.Parent.InstanceID != id {
		e.t.Fatalf("child's parent = %+v", child.Parent)
	}
}

func subOrchestrationFailure(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return "", core.NewApplicationError("ChildBroke", "the child broke", true)
	}, core.WithName("Failing")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		_, err := core.CallSubOrchestration[string](ctx, "Failing", nil).Await(ctx)
		var se *core.SubOrchestrationError
		var ae *core.ApplicationError
		if errors.As(err, &se) && errors.As(err, &ae) && ae.Type == "ChildBroke" {
			return "handled " + se.Name + ": " + ae.Message, nil
		}
		return "", fmt.Errorf("unexpected: %v", err)
	}, core.WithName("Parent")))
	e.start()
	got, err := result[string](e, "Parent", nil)
	expectNoErr(e.t, err)
	expect(e.t, "result", got, "handled Failing: the child broke")
}

func whenAnyActivityVersusEvent(e *env) {
	release := make(chan struct{})
	defer close(release)
	e.must(core.RegisterActivity(e.reg, func(ctx core.ActivityContext, _ core.Void) (string, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return "activity", nil
	}, core.WithName("Wait")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		act := core.CallActivity[string](ctx, "Wait", nil)
		ev := core.WaitForEvent[string](ctx, "go")
		winner, _ := core.WhenAny(ctx, act, ev)
		if winner == ev {
			act.Cancel()
			v, err := ev.Await(ctx)
			return "event:" + v, err
		}
		return act.Await(ctx)
	}, core.WithName("Any")))
	e.start()
	id := e.startInstance("Any")
	e.waitForEventInHistory(id, core.EventActivityScheduled)
	e.must(e.client.RaiseEvent(e.ctx, id, "go", "now"))
	got, err := core.WaitForResult[string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "winner", got, "event:now")
}

func eventsBeforeAndAfterWait(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) ([]string, error) {
		// Wait for the "ready" event first, so that "data" events arrive
		// before anyone waits for them.
		if _, err := core.WaitForEvent[core.Void](ctx, "ready").Await(ctx); err != nil {
			return nil, err
		}
		var out []string
		for range 3 {
			v, err := core.WaitForEvent[string](ctx, "data").Await(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}, core.WithName("Events")))
	e.start()
	id := e.startInstance("Events")
	e.waitForStatus(id, core.StatusRunning)
	e.must(e.client.RaiseEvent(e.ctx, id, "data", "one"))
	e.must(e.client.RaiseEvent(e.ctx, id, "data", "two"))
	e.waitForEventInHistory(id, core.EventEventRaised)
	e.must(e.client.RaiseEvent(e.ctx, id, "ready", nil))
	e.must(e.client.RaiseEvent(e.ctx, id, "data", "three"))
	got, err := core.WaitForResult[[]string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "events in order", strings.Join(got, ","), "one,two,three")
	// Events to an ended or unknown instance are refused with a clear error.
	if err := e.client.RaiseEvent(e.ctx, id, "data", "late"); !errors.Is(err, core.ErrInstanceCompleted) {
		e.t.Fatalf("event to completed instance: %v", err)
	}
	if err := e.client.RaiseEvent(e.ctx, "no-such-instance", "data", "x"); !errors.Is(err, core.ErrInstanceNotFound) {
		e.t.Fatalf("event to unknown instance: %v", err)
	}
}

func eventsBetweenInstances(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return core.WaitForEvent[string](ctx, "ping").Await(ctx)
	}, core.WithName("Receiver")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, target string) (core.Void, error) {
		return core.Void{}, ctx.RaiseEvent(target, "ping", "from "+ctx.InstanceID())
	}, core.WithName("Sender")))
	e.start()
	recv := e.startInstance("Receiver", core.WithInstanceID("receiver-"+core.NewID()))
	e.waitForStatus(recv, core.StatusRunning)
	send := e.startInstance("Sender", core.WithInput(recv), core.WithInstanceID("sender-"+core.NewID()))
	got, err := core.WaitForResult[string](e.ctx, e.client, recv)
	expectNoErr(e.t, err)
	expect(e.t, "received", got, "from "+send)
}

func humanInteraction(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, timeout time.Duration) (string, error) {
		approval := core.WaitForEvent[string](ctx, "approval")
		timer := ctx.CreateTimer(timeout)
		winner, _ := core.WhenAny(ctx, approval, timer)
		if winner == timer {
			return "escalated", nil
		}
		timer.Cancel()
		who, err := approval.Await(ctx)
		return "approved by " + who, err
	}, core.WithName("Approval")))
	e.start()
	id := e.startInstance("Approval", core.WithInput(time.Hour))
	e.waitForStatus(id, core.StatusRunning)
	e.must(e.client.RaiseEvent(e.ctx, id, "approval", "ana"))
	got, err := core.WaitForResult[string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "approved", got, "approved by ana")
	got, err = result[string](e, "Approval", 100*time.Millisecond)
	expectNoErr(e.t, err)
	expect(e.t, "timed out", got, "escalated")
}

func saga(e *env) {
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, step string) (string, error) {
		if step == "charge" {
			return "", core.NewApplicationError("Declined", "card declined", true)
		}
		return "did " + step, nil
	}, core.WithName("Do")))
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, step string) (string, error) { return "undid " + step, nil }, core.WithName("Undo")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, steps []string) ([]string, error) {
		var log, done []string
		for _, s := range steps {
			r, err := core.CallActivity[string](ctx, "Do", s).Await(ctx)
			if err != nil {
				for i := len(done) - 1; i >= 0; i-- {
					u, uerr := core.CallActivity[string](ctx, "Undo", done[i]).Await(ctx)
					if uerr != nil {
						return nil, uerr
					}
					log = append(log, u)
				}
				return log, nil
			}
			done = append(done, s)
			log = append(log, r)
		}
		return log, nil
	}, core.WithName("Saga")))
	e.start()
	got, err := result[[]string](e, "Saga", []string{"reserve", "book", "charge", "ship"})
	expectNoErr(e.t, err)
	expect(e.t, "saga log", strings.Join(got, ","), "did reserve,did book,undid book,undid reserve")
}

func continueAsNewCarriesEvents(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, total int) (int, error) {
		n, err := core.WaitForEvent[int](ctx, "add").Await(ctx)
		if err != nil {
			return 0, err
		}
		total += n
		if total >= 60 {
			return total, nil
		}
		return 0, ctx.ContinueAsNew(total)
	}, core.WithName("Counter")))
	e.start()
	id := e.startInstance("Counter", core.WithInput(0))
	e.waitForStatus(id, core.StatusRunning)
	for _, n := range []int{10, 20, 30} {
		e.must(e.client.RaiseEvent(e.ctx, id, "add", n))
	}
	got, err := core.WaitForResult[int](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "total", got, 60)
	h, err := e.client.History(e.ctx, id)
	expectNoErr(e.t, err)
	validateHistory(e.t, h)
	var in int
	st, err := e.client.GetInstance(e.ctx, id, true)
	expectNoErr(e.t, err)
	e.must(core.JSONCodec{}.Unmarshal(st.Input, &in))
	if in == 0 {
		e.t.Fatalf("the final execution's input is %d: the instance did not continue as new", in)
	}
}

func detachedStart(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, s string) (string, error) {
		if err := ctx.Sleep(50 * time.Millisecond); err != nil {
			return "", err
		}
		return "background " + s, nil
	}, core.WithName("Background")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, childID string) (string, error) {
		return ctx.StartOrchestration("Background", "job", core.WithChildID(childID))
	}, core.WithName("Starter")))
	e.start()
	childID := "detached-" + core.NewID()
	got, err := result[string](e, "Starter", childID)
	expectNoErr(e.t, err)
	expect(e.t, "started id", got, childID)
	child, err := core.WaitForResult[string](e.ctx, e.client, childID)
	expectNoErr(e.t, err)
	expect(e.t, "detached result", child, "background job")
	st, err := e.client.GetInstance(e.ctx, childID, false)
	expectNoErr(e.t, err)
	if st.Parent != nil {
		e.t.Fatalf("a detached instance has a parent: %+v", st.Parent)
	}
}

type order struct {
	ID    string            `json:"id"`
	Lines []orderLine       `json:"lines"`
	Tags  map[string]string `json:"tags"`
}

type orderLine struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

type receipt struct {
	OrderID string  `json:"orderId"`
	Total   float64 `json:"total"`
	Items   int     `json:"items"`
}

func typedPayloads(e *env) {
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, l orderLine) (float64, error) {
		return float64(l.Qty) * l.Price, nil
	}, core.WithName("LineTotal")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, o order) (receipt, error) {
		r := receipt{OrderID: o.ID}
		for _, l := range o.Lines {
			v, err := core.CallActivity[float64](ctx, "LineTotal", l).Await(ctx)
			if err != nil {
				return r, err
			}
			r.Total += v
			r.Items += l.Qty
		}
		return r, nil
	}, core.WithName("Checkout")))
	e.start()
	got, err := result[receipt](e, "Checkout", order{ID: "o-1", Lines: []orderLine{{"a", 2, 1.5}, {"b", 1, 4}}, Tags: map[string]string{"x": "y"}})
	expectNoErr(e.t, err)
	expect(e.t, "receipt", got, receipt{OrderID: "o-1", Total: 7, Items: 3})
}

func versioning(e *env) {
	register := func(v string) {
		e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, upgrade bool) (string, error) {
			if upgrade && ctx.Version() == "1" {
				return "", ctx.ContinueAsNew(false, core.WithContinueVersion("2"))
			}
			return "ran v" + ctx.Version(), nil
		}, core.WithName("Versioned"), core.AtVersion(v)))
	}
	register("1")
	register("2")
	e.start()
	got, err := result[string](e, "Versioned", false)
	expectNoErr(e.t, err)
	expect(e.t, "latest", got, "ran v2")
	got, err = result[string](e, "Versioned", false, core.WithVersion("1"))
	expectNoErr(e.t, err)
	expect(e.t, "exact", got, "ran v1")
	got, err = result[string](e, "Versioned", true, core.WithVersion("1"))
	expectNoErr(e.t, err)
	expect(e.t, "upgraded through continue-as-new", got, "ran v2")
}

func terminateCascades(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return core.WaitForEvent[string](ctx, "never").Await(ctx)
	}, core.WithName("Forever")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, childID string) (string, error) {
		return core.CallSubOrchestration[string](ctx, "Forever", nil, core.WithChildID(childID)).Await(ctx)
	}, core.WithName("Parent")))
	e.start()
	childID := "child-" + core.NewID()
	id := e.startInstance("Parent", core.WithInput(childID))
	e.waitForStatus(childID, core.StatusRunning)
	e.must(e.client.Terminate(e.ctx, id, "operator said so", true))
	_, err := core.WaitForResult[string](e.ctx, e.client, id)
	if !errors.Is(err, core.ErrTerminated) || !strings.Contains(err.Error(), "operator said so") {
		e.t.Fatalf("parent: %v", err)
	}
	st, err := e.client.WaitForCompletion(e.ctx, childID)
	expectNoErr(e.t, err)
	expect(e.t, "child status", st.Status, core.StatusTerminated)
	if err := e.client.Terminate(e.ctx, id, "again", false); !errors.Is(err, core.ErrInstanceCompleted) {
		e.t.Fatalf("terminate twice: %v", err)
	}
}

func customStatus(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		for _, step := range []string{"validating", "waiting"} {
			if err := ctx.SetCustomStatus(map[string]string{"step": step}); err != nil {
				return "", err
			}
			if _, err := core.WaitForEvent[core.Void](ctx, "next").Await(ctx); err != nil {
				return "", err
			}
		}
		return "done", ctx.SetCustomStatus(map[string]string{"step": "done"})
	}, core.WithName("Steps")))
	e.start()
	id := e.startInstance("Steps")
	for _, want := range []string{"validating", "waiting"} {
		e.waitUntil("custom status "+want, func() bool {
			var cs map[string]string
			if err := e.client.CustomStatus(e.ctx, id, &cs); err != nil {
				return false
			}
			return cs["step"] == want
		})
		e.must(e.client.RaiseEvent(e.ctx, id, "next", nil))
	}
	_, err := core.WaitForResult[string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	var cs map[string]string
	e.must(e.client.CustomStatus(e.ctx, id, &cs))
	expect(e.t, "final custom status", cs["step"], "done")
}

func retries(e *env) {
	var calls counter
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, failures int64) (int64, error) {
		n := calls.inc()
		if n <= failures {
			return 0, fmt.Errorf("attempt %d failed", n)
		}
		return n, nil
	}, core.WithName("Flaky")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, in [2]int64) (int64, error) {
		policy := core.RetryPolicy{MaxAttempts: int(in[1]), FirstInterval: 20 * time.Millisecond, BackoffCoefficient: 2, MaxInterval: 50 * time.Millisecond}
		return core.CallActivity[int64](ctx, "Flaky", in[0], core.WithRetry(policy)).Await(ctx)
	}, core.WithName("Retry")))
	e.start()
	got, err := result[int64](e, "Retry", [2]int64{2, 3})
	expectNoErr(e.t, err)
	expect(e.t, "succeeding attempt", got, 3)
	calls.n.Store(0)
	_, err = result[int64](e, "Retry", [2]int64{5, 2})
	var ae *core.ApplicationError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "attempt 2 failed") {
		e.t.Fatalf("exhausted retries: %v", err)
	}
	expect(e.t, "attempts made", calls.get(), 2)
}

func activityTimeout(e *env) {
	release := make(chan struct{})
	defer close(release)
	e.must(core.RegisterActivity(e.reg, func(ctx core.ActivityContext, _ core.Void) (string, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return "late", nil
	}, core.WithName("Hang")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		_, err := core.CallActivity[string](ctx, "Hang", nil, core.WithTimeout(100*time.Millisecond)).Await(ctx)
		if errors.Is(err, core.ErrTimeout) {
			return "timed out", nil
		}
		return "", fmt.Errorf("unexpected: %v", err)
	}, core.WithName("Timeout")))
	e.start()
	got, err := result[string](e, "Timeout", nil)
	expectNoErr(e.t, err)
	expect(e.t, "result", got, "timed out")
}

func suspendResume(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return core.WaitForEvent[string](ctx, "go").Await(ctx)
	}, core.WithName("Suspendable")))
	e.start()
	id := e.startInstance("Suspendable")
	e.waitForStatus(id, core.StatusRunning)
	e.must(e.client.Suspend(e.ctx, id, "maintenance"))
	e.waitForStatus(id, core.StatusSuspended)
	e.must(e.client.RaiseEvent(e.ctx, id, "go", "resumed"))
	// The event is recorded but held: the instance stays suspended.
	e.waitForEventInHistory(id, core.EventEventRaised)
	st, err := e.client.GetInstance(e.ctx, id, false)
	expectNoErr(e.t, err)
	expect(e.t, "status while suspended", st.Status, core.StatusSuspended)
	e.must(e.client.Resume(e.ctx, id, "done"))
	got, err := core.WaitForResult[string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "result", got, "resumed")
}

func largePayloads(e *env) {
	const size = 1 << 20
	if lim := e.p.Limits().MaxPayloadBytes; lim > 0 && lim < size+64 {
		e.t.Logf("provider limit %d bytes is below 1 MiB; checking the clear error instead", lim)
	}
	e.must(core.RegisterActivity(e.reg, func(_ core.ActivityContext, b []byte) ([]byte, error) {
		return bytes.ToUpper(b), nil
	}, core.WithName("Upper")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, b []byte) ([]byte, error) {
		return core.CallActivity[[]byte](ctx, "Upper", b).Await(ctx)
	}, core.WithName("Big")))
	e.start()
	in := bytes.Repeat([]byte("abcdefgh"), size/8)
	got, err := result[[]byte](e, "Big", in)
	expectNoErr(e.t, err)
	if !bytes.Equal(got, bytes.ToUpper(in)) {
		e.t.Fatalf("1 MiB payload came back changed (%d bytes)", len(got))
	}
}

func nonDeterminism(e *env) {
	e.must(core.RegisterActivity(e.reg, greet))
	first := func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		if _, err := core.CallActivity[string](ctx, greet, "a").Await(ctx); err != nil {
			return "", err
		}
		return core.WaitForEvent[string](ctx, "go").Await(ctx)
	}
	e.must(core.RegisterOrchestration(e.reg, first, core.WithName("Changing")))
	e.start()
	id := e.startInstance("Changing")
	e.waitForEventInHistory(id, core.EventActivityCompleted)
	e.stop()
	// A new deployment changes the code incompatibly and replays the history.
	reg := core.NewRegistry()
	e.must(core.RegisterActivity(reg, greet))
	e.must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		if _, err := ctx.CreateTimer(time.Millisecond).Await(ctx); err != nil {
			return "", err
		}
		return core.WaitForEvent[string](ctx, "go").Await(ctx)
	}, core.WithName("Changing")))
	e.rt = e.newRuntime(reg)
	e.client = e.rt.Client()
	e.must(e.client.RaiseEvent(e.ctx, id, "go", "x"))
	_, err := core.WaitForResult[string](e.ctx, e.client, id)
	if !errors.Is(err, core.ErrNonDeterminism) || core.KindOf(err) != core.KindConfiguration {
		e.t.Fatalf("err = %v (kind %v), want a non-determinism configuration error", err, core.KindOf(err))
	}
	if !strings.Contains(err.Error(), "ActivityScheduled") || !strings.Contains(err.Error(), "TimerCreated") {
		e.t.Fatalf("the error does not name the recorded and the new action: %v", err)
	}
}

func unregisteredThenRegistered(e *env) {
	e.start()
	id := e.startInstance("Later", core.WithInput("x"))
	// This host does not know "Later": the instance waits, it is not failed.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if st, err := e.client.GetInstance(e.ctx, id, false); err == nil && st.Status.IsTerminal() {
			e.t.Fatalf("instance of an unregistered orchestration ended: %s", st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.stop()
	reg := core.NewRegistry()
	e.must(core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, s string) (string, error) { return "later " + s, nil },
		core.WithName("Later")))
	e.rt = e.newRuntime(reg)
	e.client = e.rt.Client()
	got, err := core.WaitForResult[string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "result", got, "later x")
}

func startPolicies(e *env) {
	var runs counter
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, s string) (string, error) {
		if !ctx.IsReplaying() {
			runs.inc()
		}
		return "ran " + s, nil
	}, core.WithName("Once")))
	e.start()
	id := "fixed-" + core.NewID()
	got, err := result[string](e, "Once", "a", core.WithInstanceID(id))
	expectNoErr(e.t, err)
	expect(e.t, "first", got, "ran a")
	if _, err := e.client.Start(e.ctx, "Once", core.WithInstanceID(id)); !errors.Is(err, core.ErrInstanceExists) {
		e.t.Fatalf("duplicate start: %v", err)
	}
	old, err := e.client.GetInstance(e.ctx, id, false)
	expectNoErr(e.t, err)
	e.startInstance("Once", core.WithInput("b"), core.WithInstanceID(id), core.WithIfExists(core.ReplaceIfTerminal))
	e.waitUntil("the replacing execution to finish", func() bool {
		st, err := e.client.GetInstance(e.ctx, id, false)
		return err == nil && st.ExecutionID != old.ExecutionID && st.Status.IsTerminal()
	})
	got, err = core.WaitForResult[string](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	expect(e.t, "replaced", got, "ran b")
	newID, err := e.client.Restart(e.ctx, id, true)
	expectNoErr(e.t, err)
	got, err = core.WaitForResult[string](e.ctx, e.client, newID)
	expectNoErr(e.t, err)
	expect(e.t, "restarted under a new id", got, "ran b")
	for _, bad := range []string{"tab\there", strings.Repeat("x", 300)} {
		if _, err := e.client.Start(e.ctx, "Once", core.WithInstanceID(bad)); !errors.Is(err, core.ErrInvalidInput) {
			e.t.Fatalf("bad id %q: %v", bad, err)
		}
	}
	if _, err := e.client.Start(e.ctx, ""); !errors.Is(err, core.ErrInvalidInput) {
		e.t.Fatalf("empty name: %v", err)
	}
}

func scheduledStart(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (time.Time, error) {
		return ctx.Now(), nil
	}, core.WithName("Later")))
	e.start()
	at := time.Now().Add(500 * time.Millisecond).UTC()
	id := e.startInstance("Later", core.WithStartAt(at))
	// Read before the start time, the instance is Pending (or not stored
	// yet). A host that gets to the start only after its time runs it at
	// once, so a read after the time proves nothing.
	e.waitUntil("the instance to be stored", func() bool {
		st, err := e.client.GetInstance(e.ctx, id, false)
		if errors.Is(err, core.ErrInstanceNotFound) {
			return false
		}
		expectNoErr(e.t, err)
		if time.Now().Before(at) {
			expect(e.t, "status before the start time", st.Status, core.StatusPending)
		}
		return true
	})
	ran, err := core.WaitForResult[time.Time](e.ctx, e.client, id)
	expectNoErr(e.t, err)
	if ran.Before(at) {
		e.t.Fatalf("started at %s, before the scheduled %s", ran, at)
	}
}

func historyCap(e *env) {
	e.tweak = func(o *core.Options) { o.MaxHistoryEvents = 40 }
	e.must(core.RegisterActivity(e.reg, greet))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		for {
			if _, err := core.CallActivity[string](ctx, greet, "x").Await(ctx); err != nil {
				return "", err
			}
		}
	}, core.WithName("Endless")))
	e.start()
	_, err := result[string](e, "Endless", nil)
	if !errors.Is(err, core.ErrHistoryTooLarge) || !strings.Contains(err.Error(), "ContinueAsNew") {
		e.t.Fatalf("err = %v, want a history cap failure pointing to ContinueAsNew", err)
	}
}

func queryAndPurge(e *env) {
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, fail bool) (string, error) {
		if fail {
			return "", errors.New("failed on purpose")
		}
		return "ok", nil
	}, core.WithName("Quick")))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return core.WaitForEvent[string](ctx, "never").Await(ctx)
	}, core.WithName("Waiting")))
	e.start()
	prefix := "q-" + core.NewID()[:8] + "-"
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("%s%d", prefix, i)
		ids = append(ids, id)
		e.startInstance("Quick", core.WithInstanceID(id), core.WithInput(i%3 == 0))
	}
	for _, id := range ids {
		_, _ = e.client.WaitForCompletion(e.ctx, id)
	}
	waiting := e.startInstance("Waiting", core.WithInstanceID(prefix+"w"))
	e.waitForStatus(waiting, core.StatusRunning)
	count := func(q core.InstanceQuery) int {
		q.InstanceIDPrefix, q.PageSize = prefix, 2
		n := 0
		for {
			page, err := e.client.Query(e.ctx, q)
			expectNoErr(e.t, err)
			n += len(page.Instances)
			if page.Continuation == "" {
				return n
			}
			q.Continuation = page.Continuation
		}
	}
	expect(e.t, "all", count(core.InstanceQuery{}), 7)
	expect(e.t, "failed", count(core.InstanceQuery{Statuses: []core.Status{core.StatusFailed}}), 2)
	expect(e.t, "completed", count(core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted}}), 4)
	expect(e.t, "by name", count(core.InstanceQuery{Name: "Waiting"}), 1)
	if err := e.client.Purge(e.ctx, waiting); !errors.Is(err, core.ErrNotTerminal) {
		e.t.Fatalf("purge of a running instance: %v", err)
	}
	expectNoErr(e.t, e.client.Purge(e.ctx, ids[1]))
	if _, err := e.client.GetInstance(e.ctx, ids[1], false); !errors.Is(err, core.ErrInstanceNotFound) {
		e.t.Fatalf("purged instance still readable: %v", err)
	}
	n, err := e.client.PurgeWhere(e.ctx, core.InstanceQuery{InstanceIDPrefix: prefix, Statuses: []core.Status{core.StatusFailed}})
	expectNoErr(e.t, err)
	expect(e.t, "purged failed", n, 2)
	expect(e.t, "left", count(core.InstanceQuery{}), 4)
	if _, err := e.client.PurgeWhere(e.ctx, core.InstanceQuery{Statuses: []core.Status{core.StatusRunning}}); !errors.Is(err, core.ErrInvalidInput) {
		e.t.Fatalf("purge of running by filter: %v", err)
	}
}

func hostRegistrations(e *env) {
	e.must(core.RegisterActivity(e.reg, greet))
	e.must(core.RegisterOrchestration(e.reg, func(ctx *core.OrchestrationContext, _ core.Void) (core.Void, error) { return core.Void{}, nil },
		core.WithName("Registered"), core.AtVersion("3")))
	e.start()
	e.waitUntil("the host record", func() bool {
		hosts, err := e.client.Hosts(e.ctx)
		if err != nil {
			return false
		}
		for _, h := range hosts {
			if h.ID == e.rt.HostID() {
				return len(h.Orchestrations) == 1 && h.Orchestrations[0] == (core.NameVersion{Name: "Registered", Version: "3"}) &&
					len(h.Activities) == 1 && h.Activities[0].Name == "greet"
			}
		}
		return false
	})
}
