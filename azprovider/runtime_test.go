package azprovider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Helpers for tests that run a core.Runtime on the provider.

// startRuntime starts a runtime on p, shut down when the test ends.
func startRuntime(t testing.TB, p *Provider, reg *core.Registry, tweak ...func(*core.Options)) *core.Runtime {
	t.Helper()
	o := core.Options{Provider: p, Registry: reg, PollMaxInterval: 50 * time.Millisecond, HostID: "host-" + core.NewID()[:8]}
	for _, f := range tweak {
		f(&o)
	}
	rt, err := core.NewRuntime(o)
	must(t, err)
	must(t, rt.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	return rt
}

// checkHistory checks what every stored history keeps: consecutive
// sequence numbers, each task scheduled once and completed at most once,
// and no external event twice.
func checkHistory(t testing.TB, p *Provider, id string) []*core.Event {
	t.Helper()
	h, err := p.GetHistory(testCtx(t), id)
	must(t, err)
	scheduled, completed, events := map[int64]bool{}, map[int64]bool{}, map[string]bool{}
	for i, ev := range h {
		if ev.Seq != int64(i) {
			t.Fatalf("instance %s: event %d has seq %d", id, i, ev.Seq)
		}
		switch ev.Kind {
		case core.EventActivityScheduled, core.EventTimerCreated, core.EventSubOrchestrationScheduled:
			if scheduled[ev.TaskID] {
				t.Fatalf("instance %s: task %d scheduled twice", id, ev.TaskID)
			}
			scheduled[ev.TaskID] = true
		case core.EventActivityCompleted, core.EventActivityFailed, core.EventTimerFired,
			core.EventSubOrchestrationCompleted, core.EventSubOrchestrationFailed:
			if !scheduled[ev.TaskID] || completed[ev.TaskID] {
				t.Fatalf("instance %s: completion %s of task %d: scheduled %v, completed before %v", id, ev.Kind, ev.TaskID, scheduled[ev.TaskID], completed[ev.TaskID])
			}
			completed[ev.TaskID] = true
		case core.EventEventRaised:
			if events[ev.MessageID] {
				t.Fatalf("instance %s: event %q (message %s) raised twice", id, ev.Name, ev.MessageID)
			}
			events[ev.MessageID] = true
		}
	}
	return h
}

func countKind(h []*core.Event, kind core.EventKind) int {
	n := 0
	for _, ev := range h {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// pingPong registers the orchestrations of the recovery tests:
//
//   - Receiver waits for the event "ping" and returns its data;
//   - Sender, in its first episode, calls the activity Echo, starts a timer
//     and raises "ping" on the receiver (an outbox message), then waits for
//     the activity and the timer.
//
// Echo waits until gate is closed (or its context ends) and counts its runs
// and its successful completions.
type pingPong struct {
	reg        *core.Registry
	gate       chan struct{}
	runs, done atomic.Int32
}

func newPingPong(t testing.TB) *pingPong {
	pp := &pingPong{reg: core.NewRegistry(), gate: make(chan struct{})}
	must(t, core.RegisterActivity(pp.reg, func(ctx core.ActivityContext, s string) (string, error) {
		pp.runs.Add(1)
		select {
		case <-pp.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		pp.done.Add(1)
		return "echo " + s, nil
	}, core.WithName("Echo")))
	must(t, core.RegisterOrchestration(pp.reg, func(ctx *core.OrchestrationContext, _ core.Void) (string, error) {
		return core.WaitForEvent[string](ctx, "ping").Await(ctx)
	}, core.WithName("Receiver")))
	must(t, core.RegisterOrchestration(pp.reg, func(ctx *core.OrchestrationContext, target string) (string, error) {
		act := core.CallActivity[string](ctx, "Echo", "x")
		timer := ctx.CreateTimer(50 * time.Millisecond)
		if err := ctx.RaiseEvent(target, "ping", "hi"); err != nil {
			return "", err
		}
		if err := core.WhenAll(ctx, act, timer); err != nil {
			return "", err
		}
		return act.Await(ctx)
	}, core.WithName("Sender")))
	return pp
}

// checkPingPong waits for both instances and checks their results and histories.
func (pp *pingPong) check(t testing.TB, c *core.Client, p *Provider, sender, receiver string) {
	t.Helper()
	ctx := testCtx(t)
	got, err := core.WaitForResult[string](ctx, c, sender)
	if err != nil || got != "echo x" {
		t.Fatalf("sender: %q, %v", got, err)
	}
	got, err = core.WaitForResult[string](ctx, c, receiver)
	if err != nil || got != "hi" {
		t.Fatalf("receiver: %q, %v", got, err)
	}
	hs, hr := checkHistory(t, p, sender), checkHistory(t, p, receiver)
	if n := countKind(hs, core.EventActivityCompleted); n != 1 {
		t.Errorf("sender: %d activity completions", n)
	}
	if n := countKind(hs, core.EventTimerFired); n != 1 {
		t.Errorf("sender: %d timers fired", n)
	}
	if n := countKind(hr, core.EventEventRaised); n != 1 {
		t.Errorf("receiver: %d events", n)
	}
}

// faultTransport sends requests to the storage, and injects faults into the
// next refuse entity group transactions whose body contains match. With
// apply, the first of them reaches the storage and only its response is
// lost; the others fail without reaching it, as if the connection broke.
type faultTransport struct {
	mu       sync.Mutex
	match    []byte
	apply    bool
	refuse   int
	injected int
}

func (f *faultTransport) arm(match string, apply bool, refuse int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.match, f.apply, f.refuse = []byte(match), apply, refuse
}

func (f *faultTransport) faults() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

func (f *faultTransport) Do(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/$batch") || req.Body == nil {
		return http.DefaultClient.Do(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	hit := f.refuse > 0 && bytes.Contains(body, f.match)
	apply := hit && f.apply
	if hit {
		f.refuse--
		f.apply = false
		f.injected++
	}
	f.mu.Unlock()
	switch {
	case apply:
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("fault injected: the connection broke before the response arrived")
	case hit:
		return nil, errors.New("fault injected: the connection broke before the request was sent")
	}
	return http.DefaultClient.Do(req)
}

// TestAzuriteCommitWithUnknownOutcome: a commit fails after every retry of
// the provider, although its first try was applied. The runtime reads the
// instance back, finds the episode stored and does its follow-up work at
// once: the activity runs, the timer fires and the outbox message is
// delivered, without the partition being opened again. When the commit was
// not applied, the messages come back and the episode runs again.
func TestAzuriteCommitWithUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("applied=%v", applied), func(t *testing.T) {
			t.Parallel()
			ft := &faultTransport{}
			p := newTestProvider(t, func(o *Options) {
				o.Transport = ft
				o.Retry = RetryOptions{MaxRetries: 2, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 10 * time.Millisecond}
			})
			pp := newPingPong(t)
			close(pp.gate)
			rt := startRuntime(t, p, pp.reg)
			c := rt.Client()
			ctx := testCtx(t)
			receiver, sender := idIn(p, "receiver", 1), idIn(p, "sender", 2)
			_, err := c.Start(ctx, "Receiver", core.WithInstanceID(receiver))
			must(t, err)
			_, err = c.WaitForStart(ctx, receiver)
			must(t, err)

			// Every try of the sender's first commit fails: 1 + MaxRetries.
			ft.arm(`"RowKey":"I|`+sender+`"`, applied, 3)
			_, err = c.Start(ctx, "Sender", core.WithInstanceID(sender), core.WithInput(receiver))
			must(t, err)
			pp.check(t, c, p, sender, receiver)
			if n := ft.faults(); n != 3 {
				t.Fatalf("%d faults injected, want 3", n)
			}
			if runs := pp.runs.Load(); runs != 1 {
				t.Errorf("the activity ran %d times, want once", runs)
			}
			if s := rt.Stats(); s.Episodes < 3 {
				t.Errorf("runtime stats %+v", s)
			}
		})
	}
}

// cutTransport sends requests to the storage until it is cut: once a
// request for which at holds has been answered, every later request fails
// without reaching the storage, as if the host had died at that instant.
// at sees the request, its body and the body of the response.
type cutTransport struct {
	at  atomic.Pointer[func(req *http.Request, body, resp []byte) bool]
	cut atomic.Bool
}

func (c *cutTransport) Do(req *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("fault injected: the host is gone")
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultClient.Do(req)
	at := c.at.Load()
	if err != nil || at == nil {
		return resp, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if (*at)(req, body, rb) {
		c.cut.Store(true)
	}
	return resp, nil
}

// waitUntilDrained waits until the task hub has no message in any queue and
// no pending row (T|, A|, O|) in any partition: everything was delivered
// and consumed.
func waitUntilDrained(t testing.TB, p *Provider) {
	t.Helper()
	ctx := testCtx(t)
	queues, names := p.allQueues()
	for {
		left := ""
		for i, q := range queues {
			props, err := q.GetProperties(ctx, nil)
			must(t, err)
			if n := props.ApproximateMessagesCount; n != nil && *n > 0 {
				left += fmt.Sprintf(" %s: %d messages;", names[i], *n)
			}
		}
		for part := range p.n {
			for _, prefix := range []string{"T|", "A|", "O|"} {
				rows, err := p.queryRange(ctx, part, prefix, prefixEnd(prefix), "", "RowKey")
				must(t, err)
				for _, r := range rows {
					left += fmt.Sprintf(" row %s;", r.rowKey())
				}
			}
		}
		if left == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the task hub did not drain:%s", left)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestAzuriteCrashPoints kills a host (its storage connection is cut) at
// each point between an episode's commit and the end of its follow-up
// work, then lets another host open the partitions over the same task hub.
// The new host acquires partitions with pending timers, activities and
// outbox rows: it arms, runs and sends them, and nothing is lost (both
// instances complete) or duplicated (no task completes twice, no event is
// raised twice), and in the end no message or pending row is left.
func TestAzuriteCrashPoints(t *testing.T) {
	t.Parallel()
	type cutAt = func(req *http.Request, body, resp []byte) bool
	cases := []struct {
		name    string
		offload bool
		// at names the request after which the first host dies.
		at func(p *Provider, sender, receiver string) cutAt
	}{
		{"after commit", false, func(p *Provider, sender, _ string) cutAt {
			return func(req *http.Request, body, _ []byte) bool {
				return strings.HasSuffix(req.URL.Path, "/$batch") && bytes.Contains(body, []byte(`"RowKey":"I|`+sender+`"`))
			}
		}},
		{"after offload", true, func(p *Provider, _, _ string) cutAt {
			return func(req *http.Request, _, _ []byte) bool {
				return req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/"+p.workQueueName()+"/messages")
			}
		}},
		// The work item runs on the owner, and its result waits in memory
		// for a commit that never comes; the work item is still locked.
		{"after the work item was fetched", true, func(p *Provider, _, _ string) cutAt {
			return func(req *http.Request, _, resp []byte) bool {
				return req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/"+p.workQueueName()+"/messages") &&
					bytes.Contains(resp, []byte("<QueueMessage>"))
			}
		}},
		{"after send", false, func(p *Provider, _, receiver string) cutAt {
			q := "/" + p.controlQueueName(p.PartitionOf(receiver)) + "/messages"
			return func(req *http.Request, body, _ []byte) bool {
				return req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, q) && bytes.Contains(body, []byte("ping"))
			}
		}},
		{"after delete", false, func(p *Provider, sender, _ string) cutAt {
			q := "/" + p.controlQueueName(p.PartitionOf(sender)) + "/messages/"
			return func(req *http.Request, _, _ []byte) bool {
				return req.Method == http.MethodDelete && strings.Contains(req.URL.Path, q)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cut := &cutTransport{}
			p := newTestProvider(t, func(o *Options) {
				o.Transport = cut
				o.Retry = RetryOptions{MaxRetries: 1, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 10 * time.Millisecond}
			})
			t.Cleanup(func() { cut.at.Store(nil); cut.cut.Store(false) }) // so that the task hub can be deleted
			pp := newPingPong(t)
			if tc.offload {
				close(pp.gate) // the activity may run to the end on the first host
			}
			// The first host sends the outbox through the queues (so that
			// "after send" is a point of its own) and locks messages and
			// work items for 1s, so that what it fetched comes back to the
			// second host soon.
			first := startRuntime(t, p, pp.reg, func(o *core.Options) {
				o.NoInMemoryDelivery, o.OffloadActivities = true, tc.offload
				o.LockDuration, o.ActivityLockDuration = time.Second, time.Second
			})
			c := first.Client()
			ctx := testCtx(t)
			receiver, sender := idIn(p, "receiver", 1), idIn(p, "sender", 2)
			_, err := c.Start(ctx, "Receiver", core.WithInstanceID(receiver))
			must(t, err)
			_, err = c.WaitForStart(ctx, receiver)
			must(t, err)

			at := tc.at(p, sender, receiver)
			cut.at.Store(&at)
			_, err = c.Start(ctx, "Sender", core.WithInstanceID(sender), core.WithInput(receiver))
			must(t, err)
			for !cut.cut.Load() {
				select {
				case <-ctx.Done():
					t.Fatal("the crash point was never reached")
				case <-time.After(5 * time.Millisecond):
				}
			}
			// The dead host stops: its activity is cancelled, nothing it does
			// reaches the storage any more.
			stop, cancel := context.WithTimeout(ctx, time.Second)
			_ = first.Shutdown(stop)
			cancel()

			if !tc.offload {
				close(pp.gate)
			}
			p2, err := New(ctx, Options{ConnectionString: p.opts.ConnectionString, TaskHub: p.hub, Partitions: p.n})
			must(t, err)
			// The sender's partition holds its pending timer, activity and outbox unit.
			st, err := p2.OpenPartition(ctx, p.PartitionOf(sender))
			must(t, err)
			if len(st.Timers) != 1 || len(st.Activities) != 1 || len(st.Outbox) != 1 {
				t.Fatalf("pending work after the crash: %d timers, %d activities, %d outbox units; want 1 of each",
					len(st.Timers), len(st.Activities), len(st.Outbox))
			}
			second := startRuntime(t, p2, pp.reg)
			pp.check(t, second.Client(), p2, sender, receiver)
			waitUntilDrained(t, p2)
			// Whatever arrived late (the messages the dead host had locked,
			// the outbox sent twice) was dropped as a duplicate.
			pp.check(t, second.Client(), p2, sender, receiver)
			if done := pp.done.Load(); done < 1 || (!tc.offload && done != 1) {
				t.Errorf("the activity completed %d times", done)
			}
		})
	}
}

// pauseTransport sends requests to the storage, except that while paused
// it fails the dequeues of control queues, as if this host could not reach
// them for a while.
// It records the bodies of the transactions it sends.
type pauseTransport struct {
	paused atomic.Bool
	mu     sync.Mutex
	txs    [][]byte
}

func (pt *pauseTransport) Do(req *http.Request) (*http.Response, error) {
	if pt.paused.Load() && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "-control-") && strings.HasSuffix(req.URL.Path, "/messages") {
		return nil, errors.New("fault injected: control queues unreachable")
	}
	if strings.HasSuffix(req.URL.Path, "/$batch") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		pt.mu.Lock()
		pt.txs = append(pt.txs, body)
		pt.mu.Unlock()
	}
	return http.DefaultClient.Do(req)
}

// transactions returns the bodies of the transactions sent from the n-th on.
func (pt *pauseTransport) transactions(from int) [][]byte {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return append([][]byte(nil), pt.txs[from:]...)
}

// TestAzuriteGroupCommitConflictInTheRuntime: two instances of one
// partition are cached on host A. Host B moves one of them on behind A's
// back (as after a lost lease). A then gets a message for each in one batch
// and commits them in one transaction: the stale one conflicts (412), the
// other commits, and A drops the stale executor, abandons its message and
// runs it again from storage. Both instances complete with every event once.
func TestAzuriteGroupCommitConflictInTheRuntime(t *testing.T) {
	t.Parallel()
	pause := &pauseTransport{}
	p := newTestProvider(t, func(o *Options) {
		o.Transport = pause
		o.Retry = RetryOptions{MaxRetries: -1}
	})
	ctx := testCtx(t)
	reg := core.NewRegistry()
	must(t, core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, _ core.Void) ([]int, error) {
		var got []int
		for range 2 {
			v, err := core.WaitForEvent[int](ctx, "tick").Await(ctx)
			if err != nil {
				return nil, err
			}
			got = append(got, v)
		}
		return got, nil
	}, core.WithName("Collector")))
	a := startRuntime(t, p, reg)
	ca := a.Client()
	x, y := idIn(p, "x", 1), idIn(p, "y", 1)
	for _, id := range []string{x, y} {
		_, err := ca.Start(ctx, "Collector", core.WithInstanceID(id))
		must(t, err)
		_, err = ca.WaitForStart(ctx, id)
		must(t, err)
	}

	// While A cannot dequeue, host B gives x its first event.
	pause.paused.Store(true)
	pb, err := New(ctx, Options{ConnectionString: p.opts.ConnectionString, TaskHub: p.hub, Partitions: p.n})
	must(t, err)
	b := startRuntime(t, pb, reg)
	must(t, b.Client().RaiseEvent(ctx, x, "tick", 1))
	for countKind(checkHistory(t, p, x), core.EventEventRaised) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("host B did not process the event")
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop, cancel := context.WithTimeout(ctx, 10*time.Second)
	must(t, b.Shutdown(stop))
	cancel()

	// A fetches both messages in one batch: x's cached token is stale.
	c := core.NewClient(p)
	must(t, c.RaiseEvent(ctx, x, "tick", 2))
	must(t, c.RaiseEvent(ctx, y, "tick", 1))
	sent := len(pause.transactions(0))
	pause.paused.Store(false)
	for countKind(checkHistory(t, p, y), core.EventEventRaised) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("host A did not process y's event")
		case <-time.After(10 * time.Millisecond):
		}
	}
	must(t, c.RaiseEvent(ctx, y, "tick", 2))
	for _, id := range []string{x, y} {
		got, err := core.WaitForResult[[]int](ctx, ca, id)
		if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Fatalf("%s: %v, %v", id, got, err)
		}
		if n := countKind(checkHistory(t, p, id), core.EventEventRaised); n != 2 {
			t.Errorf("%s: %d events in its history", id, n)
		}
	}
	if s := a.Stats(); s.Conflicts != 1 {
		t.Errorf("host A had %d conflicts, want 1 (x's stale token)", s.Conflicts)
	}
	// x and y were committed in one transaction, rejected by x's ETag; y's
	// episode was submitted again alone.
	txs := pause.transactions(sent)
	has := func(tx []byte, id string) bool { return bytes.Contains(tx, []byte(`"RowKey":"I|`+id+`"`)) }
	if len(txs) < 2 || !has(txs[0], x) || !has(txs[0], y) || has(txs[1], x) || !has(txs[1], y) {
		t.Errorf("%d transactions after the pause; want the first with x and y, the second with y alone", len(txs))
	}
}
