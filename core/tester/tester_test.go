package tester_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/tester"
)

const day = 24 * time.Hour

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// elapsed is how much virtual time has passed since the tester started.
func elapsed(tt *tester.Tester) time.Duration {
	return tt.Clock().Now().Sub(tester.DefaultStartTime)
}

// kinds lists the kinds of a history, for comparisons.
func kinds(h []*core.Event) string {
	out := make([]string, len(h))
	for i, ev := range h {
		out[i] = ev.Kind.String()
	}
	return strings.Join(out, ",")
}

// reserve and charge are the real activities that tests replace by mocks.
func reserve(_ core.ActivityContext, order string) (string, error) {
	return "", errors.New("the real reserve must not run in unit tests")
}

func charge(_ core.ActivityContext, reservation string) (int, error) {
	return 0, errors.New("the real charge must not run in unit tests")
}

func checkout(ctx *core.OrchestrationContext, order string) (string, error) {
	res, err := core.CallActivity[string](ctx, reserve, order).Await(ctx)
	if err != nil {
		return "", err
	}
	cents, err := core.CallActivity[int](ctx, "charge", res).Await(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s charged %d", res, cents), nil
}

func TestSequenceWithMocks(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), checkout))
	var mu sync.Mutex
	var calls []string
	tester.MockActivity(tt, reserve, func(order string) (string, error) { // by function
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, "reserve "+order)
		return "res-" + order, nil
	})
	tester.MockActivity(tt, "charge", func(res string) (int, error) { // by name
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, "charge "+res)
		return 1250, nil
	})

	got, err := tester.Run[string](tt, checkout, "o-1", core.WithInstanceID("order-1"))
	must(t, err)
	if got != "res-o-1 charged 1250" {
		t.Fatalf("result %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(calls, "; ") != "reserve o-1; charge res-o-1" {
		t.Fatalf("mock calls: %q", calls)
	}
	h := tt.History("order-1")
	want := "EpisodeStarted,ExecutionStarted,ActivityScheduled," +
		"EpisodeStarted,ActivityCompleted,ActivityScheduled," +
		"EpisodeStarted,ActivityCompleted,ExecutionCompleted"
	if k := kinds(h); k != want {
		t.Fatalf("history %s\nwant    %s", k, want)
	}
	if elapsed(tt) != 0 {
		t.Fatalf("virtual time moved by %s without a timer", elapsed(tt))
	}
}

func TestThirtyDayTimer(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (time.Time, error) {
		if err := ctx.Sleep(30 * day); err != nil {
			return time.Time{}, err
		}
		return ctx.Now(), nil
	}, core.WithName("Wait30Days")))

	woke, err := tester.Run[time.Time](tt, "Wait30Days", nil)
	must(t, err)
	if want := tester.DefaultStartTime.Add(30 * day); !woke.Equal(want) {
		t.Fatalf("the orchestration woke at %s, want %s", woke, want)
	}
	if elapsed(tt) != 30*day {
		t.Fatalf("virtual time moved by %s, want 30 days", elapsed(tt))
	}
}

func TestYearOfWeeklyTimers(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, weeks int) ([]time.Time, error) {
		var reminders []time.Time
		for range weeks {
			if err := ctx.Sleep(7 * day); err != nil {
				return nil, err
			}
			if _, err := core.CallActivity[core.Void](ctx, "Remind", nil).Await(ctx); err != nil {
				return nil, err
			}
			reminders = append(reminders, ctx.Now())
		}
		return reminders, nil
	}, core.WithName("WeeklyReminder")))
	var sent []time.Time
	tester.MockActivity(tt, "Remind", func(core.Void) (core.Void, error) {
		sent = append(sent, tt.Clock().Now())
		return core.Void{}, nil
	})

	reminders, err := tester.Run[[]time.Time](tt, "WeeklyReminder", 52)
	must(t, err)
	if len(reminders) != 52 || len(sent) != 52 {
		t.Fatalf("%d reminders in the result, %d sent; want 52", len(reminders), len(sent))
	}
	for i := range 52 {
		want := tester.DefaultStartTime.Add(time.Duration(i+1) * 7 * day)
		if !reminders[i].Equal(want) || !sent[i].Equal(want) {
			t.Fatalf("reminder %d at %s (sent at %s), want %s", i, reminders[i], sent[i], want)
		}
	}
	if elapsed(tt) != 364*day {
		t.Fatalf("virtual time moved by %s, want 364 days", elapsed(tt))
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	policy := core.RetryPolicy{MaxAttempts: 5, FirstInterval: time.Hour, BackoffCoefficient: 2, MaxInterval: 3 * time.Hour}
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return core.CallActivity[string](ctx, "Flaky", nil, core.WithRetry(policy)).Await(ctx)
	}, core.WithName("Retrying")))
	var attempts []time.Duration
	failures := 3
	tester.MockActivity(tt, "Flaky", func(core.Void) (string, error) {
		attempts = append(attempts, elapsed(tt))
		if len(attempts) <= failures {
			return "", fmt.Errorf("attempt %d failed", len(attempts))
		}
		return "ok", nil
	})

	got, err := tester.Run[string](tt, "Retrying", nil)
	must(t, err)
	if got != "ok" {
		t.Fatalf("result %q", got)
	}
	// Waits of 1h, 2h, then 3h (4h capped by MaxInterval).
	want := []time.Duration{0, time.Hour, 3 * time.Hour, 6 * time.Hour}
	if fmt.Sprint(attempts) != fmt.Sprint(want) {
		t.Fatalf("attempts at %v, want %v", attempts, want)
	}

	t.Run("exhausted", func(t *testing.T) {
		attempts, failures = nil, 100
		_, err := tester.Run[string](tt, "Retrying", nil)
		var ae *core.ApplicationError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "attempt 5 failed") {
			t.Fatalf("err = %v, want the last attempt's application error", err)
		}
		if len(attempts) != 5 {
			t.Fatalf("%d attempts, want 5", len(attempts))
		}
		if got := attempts[4] - attempts[0]; got != 9*time.Hour {
			t.Fatalf("the attempts spanned %s of virtual time, want 9h (1h+2h+3h+3h)", got)
		}
	})
}

// approval waits for an "approved" event for at most a day.
func approval(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
	start := ctx.Now()
	approved := core.WaitForEvent[string](ctx, "approved")
	deadline := ctx.CreateTimer(day)
	winner, err := core.WhenAny(ctx, approved, deadline)
	if err != nil {
		return "", err
	}
	if winner == deadline {
		return fmt.Sprintf("timed out after %s", ctx.Now().Sub(start)), nil
	}
	deadline.Cancel()
	by, err := approved.Await(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("approved by %s after %s", by, ctx.Now().Sub(start)), nil
}

func TestHumanApprovalWithTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  string
	}{
		{"before the deadline", 2 * time.Hour, "approved by ann after 2h0m0s"},
		{"after the deadline", 2 * day, "timed out after 24h0m0s"},
	} {
		for _, cache := range []int{0, -1} { // the default cache, and replay from history in every episode
			t.Run(fmt.Sprintf("%s/cache=%d", tc.name, cache), func(t *testing.T) {
				tt := tester.New(t, tester.WithRuntimeOptions(func(o *core.Options) { o.ExecutorCacheSize = cache }))
				must(t, core.RegisterOrchestration(tt.Registry(), approval))
				tt.RaiseEventAfter(tc.after, "request-1", "approved", "ann")
				got, err := tester.Run[string](tt, approval, nil, core.WithInstanceID("request-1"))
				must(t, err)
				if got != tc.want {
					t.Fatalf("result %q, want %q", got, tc.want)
				}
			})
		}
	}
}

func TestWhenAny(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) ([]string, error) {
		start := ctx.Now()
		var log []string
		long, short := ctx.CreateTimer(3*time.Hour), ctx.CreateTimer(time.Hour)
		event := core.WaitForEvent[string](ctx, "poke")
		names := map[core.Awaitable]string{long: "3h timer", short: "1h timer", event: "event"}
		pending := []core.Awaitable{long, short, event}
		for len(pending) > 0 {
			winner, err := core.WhenAny(ctx, pending...)
			if err != nil {
				return nil, err
			}
			log = append(log, fmt.Sprintf("%s at %s", names[winner], ctx.Now().Sub(start)))
			for i, f := range pending {
				if f == winner {
					pending = append(pending[:i], pending[i+1:]...)
					break
				}
			}
		}
		return log, nil
	}, core.WithName("Race")))
	tt.RaiseEventAfter(2*time.Hour, "race-1", "poke", "x")

	got, err := tester.Run[[]string](tt, "Race", nil, core.WithInstanceID("race-1"))
	must(t, err)
	if want := "1h timer at 1h0m0s; event at 2h0m0s; 3h timer at 3h0m0s"; strings.Join(got, "; ") != want {
		t.Fatalf("order %q, want %q", got, want)
	}
}

func TestSubOrchestrations(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, days int) (int, error) {
		if err := ctx.Sleep(time.Duration(days) * day); err != nil {
			return 0, err
		}
		return core.CallActivity[int](ctx, "Square", days).Await(ctx)
	}, core.WithName("Child")))
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, n int) (int, error) {
		var children []*core.Future[int]
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("%s-child-%d", ctx.InstanceID(), i)
			children = append(children, core.CallSubOrchestration[int](ctx, "Child", i, core.WithChildID(id)))
		}
		sum := 0
		for _, c := range children {
			v, err := c.Await(ctx)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}, core.WithName("Parent")))
	tester.MockActivity(tt, "Square", func(n int) (int, error) {
		if n == 13 {
			return 0, errors.New("unlucky")
		}
		return n * n, nil
	})

	got, err := tester.Run[int](tt, "Parent", 4, core.WithInstanceID("p1"))
	must(t, err)
	if got != 1+4+9+16 {
		t.Fatalf("sum %d, want 30", got)
	}
	if elapsed(tt) != 4*day {
		t.Fatalf("virtual time moved by %s, want 4 days (the children sleep in parallel)", elapsed(tt))
	}
	if k := kinds(tt.History("p1-child-3")); !strings.HasPrefix(k, "EpisodeStarted,ExecutionStarted,TimerCreated") {
		t.Fatalf("history of child-3: %s", k)
	}

	t.Run("failure", func(t *testing.T) {
		_, err := tester.Run[int](tt, "Parent", 13, core.WithInstanceID("p2"))
		var ae *core.ApplicationError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "unlucky") {
			t.Fatalf("err = %v, want the failure of child 13's activity", err)
		}
	})
}

func TestContinueAsNew(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, round int) (int, error) {
		if round == 5 {
			return round, nil
		}
		if err := ctx.Sleep(day); err != nil {
			return 0, err
		}
		return 0, ctx.ContinueAsNew(round + 1)
	}, core.WithName("Rounds")))

	got, err := tester.Run[int](tt, "Rounds", 0, core.WithInstanceID("rounds"))
	must(t, err)
	if got != 5 {
		t.Fatalf("result %d, want 5", got)
	}
	if elapsed(tt) != 5*day {
		t.Fatalf("virtual time moved by %s, want 5 days", elapsed(tt))
	}
	// The history is the last execution's alone.
	if k := kinds(tt.History("rounds")); k != "EpisodeStarted,ExecutionStarted,ExecutionCompleted" {
		t.Fatalf("history of the last execution: %s", k)
	}
}

// declinedError names its own type across the activity boundary.
type declinedError struct{ reason string }

func (e *declinedError) Error() string     { return "card declined: " + e.reason }
func (e *declinedError) ErrorType() string { return "PaymentDeclined" }

func TestActivityFailureIsAnApplicationError(t *testing.T) {
	tt := tester.New(t)
	var seen string
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (int, error) {
		n, err := core.CallActivity[int](ctx, charge, "res-1").Await(ctx)
		var ae *core.ApplicationError
		var actErr *core.ActivityError
		if errors.As(err, &actErr) && errors.As(err, &ae) {
			seen = fmt.Sprintf("%s: %s/%s", actErr.Name, ae.Type, ae.Message)
		}
		return n, err
	}, core.WithName("Pay")))
	tester.MockActivity(tt, charge, func(string) (int, error) { return 0, &declinedError{reason: "expired"} })

	_, err := tester.Run[int](tt, "Pay", nil)
	if seen != "charge: PaymentDeclined/card declined: expired" {
		t.Fatalf("the orchestration saw %q", seen)
	}
	var fe *core.FailureError
	if !errors.As(err, &fe) || core.KindOf(err) != core.KindApplication {
		t.Fatalf("err = %v (%T), want an application failure of the instance", err, err)
	}
	var ae *core.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v does not reach an *core.ApplicationError", err)
	}
	for ae != nil && ae.Type != "PaymentDeclined" {
		ae = ae.Cause
	}
	if ae == nil || ae.Message != "card declined: expired" {
		t.Fatalf("err = %v: no PaymentDeclined cause with the activity's message", err)
	}
}

func TestBlockedIsReported(t *testing.T) {
	waitForEvent := func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		if err := ctx.Sleep(time.Hour); err != nil {
			return "", err
		}
		return core.WaitForEvent[string](ctx, "never").Await(ctx)
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, tt *tester.Tester)
		run     string
		want    []string // in the error message
		notReg  bool
		elapsed time.Duration
	}{{
		name: "waits for an event",
		setup: func(t *testing.T, tt *tester.Tester) {
			must(t, core.RegisterOrchestration(tt.Registry(), waitForEvent, core.WithName("Waiter")))
		},
		run:     "Waiter",
		want:    []string{`instance "blocked-1" (Waiter) waits for an external event`},
		elapsed: time.Hour,
	}, {
		name: "child waits for an event",
		setup: func(t *testing.T, tt *tester.Tester) {
			must(t, core.RegisterOrchestration(tt.Registry(), waitForEvent, core.WithName("Waiter")))
			must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
				return core.CallSubOrchestration[string](ctx, "Waiter", nil, core.WithChildID("the-child")).Await(ctx)
			}, core.WithName("Parent")))
		},
		run: "Parent",
		want: []string{`instance "blocked-1" (Parent) waits for sub-orchestration "Waiter" (instance "the-child")`,
			`instance "the-child" (Waiter) waits for an external event`},
		elapsed: time.Hour,
	}, {
		name: "activity neither registered nor mocked",
		setup: func(t *testing.T, tt *tester.Tester) {
			must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (int, error) {
				return core.CallActivity[int](ctx, "Unmocked", nil).Await(ctx)
			}, core.WithName("CallsUnmocked")))
		},
		run:    "CallsUnmocked",
		want:   []string{`calls activity "Unmocked" (task 1), which is neither registered nor mocked`},
		notReg: true,
	}, {
		name: "sub-orchestration not registered",
		setup: func(t *testing.T, tt *tester.Tester) {
			must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (int, error) {
				return core.CallSubOrchestration[int](ctx, "Missing", nil).Await(ctx)
			}, core.WithName("CallsMissing")))
		},
		run:    "CallsMissing",
		want:   []string{`calls sub-orchestration "Missing"`, "not registered"},
		notReg: true,
	}, {
		name: "suspended",
		setup: func(t *testing.T, tt *tester.Tester) {
			must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
				return "woke", ctx.Sleep(2 * time.Hour)
			}, core.WithName("Sleeper")))
			tt.After(time.Hour, func(ctx context.Context, c *core.Client) error {
				return c.Suspend(ctx, "blocked-1", "maintenance")
			})
		},
		run:     "Sleeper",
		want:    []string{`instance "blocked-1" (Sleeper) is suspended`},
		elapsed: 2 * time.Hour,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tt := tester.New(t)
			tc.setup(t, tt)
			_, err := tester.Run[string](tt, tc.run, nil, core.WithInstanceID("blocked-1"))
			if !errors.Is(err, tester.ErrBlocked) || errors.Is(err, core.ErrNotRegistered) != tc.notReg {
				t.Fatalf("err = %v; want ErrBlocked (and ErrNotRegistered: %v)", err, tc.notReg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			if elapsed(tt) != tc.elapsed {
				t.Errorf("blocked after %s of virtual time, want %s", elapsed(tt), tc.elapsed)
			}
		})
	}

	t.Run("orchestration not registered", func(t *testing.T) {
		tt := tester.New(t)
		_, err := tester.Run[string](tt, "Nowhere", nil)
		if !errors.Is(err, core.ErrNotRegistered) {
			t.Fatalf("err = %v, want ErrNotRegistered", err)
		}
	})
}

func TestTimeoutWhileAnActivityRuns(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // before the tester's cleanup stops the runtime
	tt := tester.New(t, tester.WithTimeout(200*time.Millisecond))
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (int, error) {
		return core.CallActivity[int](ctx, "Stuck", nil, core.WithTimeout(time.Minute)).Await(ctx)
	}, core.WithName("CallsStuck")))
	tester.MockActivity(tt, "Stuck", func(core.Void) (int, error) {
		<-release
		return 1, nil
	})

	_, err := tester.Run[int](tt, "CallsStuck", nil, core.WithInstanceID("stuck-1"))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, tester.ErrBlocked) {
		t.Fatalf("err = %v, want a real-time timeout", err)
	}
	if !strings.Contains(err.Error(), `waits for activity "Stuck"`) {
		t.Fatalf("the error does not say what the instance waits for: %v", err)
	}
	if elapsed(tt) != 0 {
		t.Fatalf("virtual time moved by %s while the activity ran", elapsed(tt))
	}
}

func TestActionsAtVirtualTimes(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return "slept", ctx.Sleep(10 * day)
	}, core.WithName("LongSleep")))
	tt.After(3*day, func(ctx context.Context, c *core.Client) error {
		return c.Terminate(ctx, "sleeper", "no longer needed", false)
	})

	_, err := tester.Run[string](tt, "LongSleep", nil, core.WithInstanceID("sleeper"))
	if !errors.Is(err, core.ErrTerminated) || !strings.Contains(err.Error(), "no longer needed") {
		t.Fatalf("err = %v, want the termination", err)
	}
	if elapsed(tt) != 3*day {
		t.Fatalf("terminated after %s of virtual time, want 3 days", elapsed(tt))
	}
}

func TestScheduledStartAndWait(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (time.Time, error) {
		return ctx.Now(), nil
	}, core.WithName("Report")))
	at := tester.DefaultStartTime.Add(3 * day)
	id, err := tt.Client().Start(context.Background(), "Report", core.WithStartAt(at))
	must(t, err)

	ran, err := tester.Wait[time.Time](tt, id)
	must(t, err)
	if !ran.Equal(at) {
		t.Fatalf("the scheduled instance ran at %s, want %s", ran, at)
	}
}

// Messages that the runtime delays in the provider (a message for an
// instance that does not exist yet waits and is delivered again) move
// virtual time to when they become visible.
func TestDelayedMessages(t *testing.T) {
	tt := tester.New(t, tester.WithRuntimeOptions(func(o *core.Options) { o.NoInMemoryDelivery = true }))
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (core.Void, error) {
		return core.Void{}, ctx.RaiseEvent("late", "hello", 42)
	}, core.WithName("Sender")))
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (int, error) {
		return core.WaitForEvent[int](ctx, "hello").Await(ctx)
	}, core.WithName("Receiver")))
	tt.After(2*time.Second, func(ctx context.Context, c *core.Client) error {
		_, err := c.Start(ctx, "Receiver", core.WithInstanceID("late"))
		return err
	})

	_, err := tester.Run[core.Void](tt, "Sender", nil)
	must(t, err)
	got, err := tester.Wait[int](tt, "late")
	must(t, err)
	if got != 42 {
		t.Fatalf("received %d, want 42", got)
	}
	if elapsed(tt) <= 2*time.Second {
		t.Fatalf("virtual time moved by %s; the event can only arrive after the receiver started at 2s", elapsed(tt))
	}
}

// An orchestration registered after an instance of it was started runs:
// its start message is sent again with a delay until then.
func TestOrchestrationRegisteredLater(t *testing.T) {
	tt := tester.New(t)
	id, err := tt.Client().Start(context.Background(), "Later", core.WithInput(7))
	must(t, err)
	tt.After(10*time.Second, func(context.Context, *core.Client) error {
		return core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, n int) (int, error) {
			return n * 6, nil
		}, core.WithName("Later"))
	})

	got, err := tester.Wait[int](tt, id)
	must(t, err)
	if got != 42 {
		t.Fatalf("result %d, want 42", got)
	}
	if elapsed(tt) < 10*time.Second {
		t.Fatalf("ran after %s of virtual time, before it was registered at 10s", elapsed(tt))
	}
}

// Activities offloaded to the shared work-item queue are fetched by the
// runtime's poller, which nobody wakes: the tester does, without moving time.
func TestOffloadedActivities(t *testing.T) {
	tt := tester.New(t, tester.WithRuntimeOptions(func(o *core.Options) { o.OffloadActivities = true }))
	must(t, core.RegisterOrchestration(tt.Registry(), checkout))
	tester.MockActivity(tt, reserve, func(order string) (string, error) { return "res-" + order, nil })
	tester.MockActivity(tt, "charge", func(string) (int, error) { return 99, nil })

	got, err := tester.Run[string](tt, checkout, "o-2")
	must(t, err)
	if got != "res-o-2 charged 99" {
		t.Fatalf("result %q", got)
	}
	if elapsed(tt) != 0 {
		t.Fatalf("virtual time moved by %s", elapsed(tt))
	}
}

// Virtual time stands still while an activity runs, so a slow activity
// still beats a short timer.
func TestTimeStandsStillWhileAnActivityRuns(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		act := core.CallActivity[string](ctx, "Slow", nil)
		timer := ctx.CreateTimer(time.Minute)
		winner, err := core.WhenAny(ctx, act, timer)
		if err != nil || winner == timer {
			return "timer", err
		}
		timer.Cancel()
		return act.Await(ctx)
	}, core.WithName("SlowVersusTimer")))
	tester.MockActivity(tt, "Slow", func(core.Void) (string, error) {
		time.Sleep(20 * time.Millisecond) // stands for real work, much longer than a look of the tester
		return "activity", nil
	})

	got, err := tester.Run[string](tt, "SlowVersusTimer", nil)
	must(t, err)
	if got != "activity" || elapsed(tt) != 0 {
		t.Fatalf("%q won after %s of virtual time; want the activity, at once", got, elapsed(tt))
	}
}

// Several Waits may run at once; each sees its own result and virtual time
// moves for all of them.
func TestConcurrentWaits(t *testing.T) {
	tt := tester.New(t)
	must(t, core.RegisterOrchestration(tt.Registry(), func(ctx *core.OrchestrationContext, days int) (time.Time, error) {
		if err := ctx.Sleep(time.Duration(days) * day); err != nil {
			return time.Time{}, err
		}
		return ctx.Now(), nil
	}, core.WithName("SleepDays")))
	days := []int{5, 3, 8}
	ids := make([]string, len(days))
	for i, d := range days {
		// Started before any Wait: time moves only while one waits.
		id, err := tt.Client().Start(context.Background(), "SleepDays", core.WithInput(d))
		must(t, err)
		ids[i] = id
	}

	var wg sync.WaitGroup
	woke := make([]time.Time, len(days))
	errs := make([]error, len(days))
	for i := range days {
		wg.Go(func() { woke[i], errs[i] = tester.Wait[time.Time](tt, ids[i]) })
	}
	wg.Wait()
	for i, d := range days {
		if want := tester.DefaultStartTime.Add(time.Duration(d) * day); errs[i] != nil || !woke[i].Equal(want) {
			t.Errorf("instance of %d days: woke at %s, %v; want %s", d, woke[i], errs[i], want)
		}
	}
}

// An action due at the same virtual instant as a timer runs after the timer
// has fired and its episode has run.
func TestTimerBeforeEventAtTheSameInstant(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"replayed", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			tt := tester.New(t, tester.WithRuntimeOptions(func(o *core.Options) { o.ExecutorCacheSize = tc.cache }))
			must(t, core.RegisterOrchestration(tt.Registry(), approval))
			tt.RaiseEventAfter(day, "tie", "approved", "ann")
			got, err := tester.Run[string](tt, approval, nil, core.WithInstanceID("tie"))
			must(t, err)
			if got != "timed out after 24h0m0s" {
				t.Fatalf("result %q; the timer due at the same instant must win", got)
			}
		})
	}
}
