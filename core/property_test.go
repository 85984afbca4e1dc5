package core

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The property: for any orchestration shape and any order in which its
// completions arrive, a replay of the stored history from scratch reaches
// exactly the state of the executor that ran live, and an executor kept in
// memory between episodes produces exactly the episodes that a fresh
// executor replaying before every episode produces.

// propShape is an orchestration program: the steps of each execution, one
// execution per continue-as-new.
type propShape struct {
	Execs [][]propStep `json:"execs"`
	Exec  int          `json:"exec,omitempty"`
}

// propStep is one step of a program; which fields matter depends on Op.
type propStep struct {
	Op    string `json:"op"`
	N     int    `json:"n,omitempty"`     // fan-out width, retry attempts
	Secs  int    `json:"secs,omitempty"`  // timer length, retry interval
	Name  string `json:"name,omitempty"`  // activity, child or event name
	Fatal bool   `json:"fatal,omitempty"` // a failure of this step fails the orchestration
	Timed bool   `json:"timed,omitempty"` // retry: each attempt has a timeout
}

// propOrchestration interprets a program. Everything it observes goes into its
// output, so that a divergence in any result shows.
func propOrchestration(ctx *OrchestrationContext, s propShape) (string, error) {
	var log []string
	note := func(what string, v any, err error) {
		if err != nil {
			log = append(log, what+"!"+err.Error())
			return
		}
		log = append(log, fmt.Sprintf("%s=%v", what, v))
	}
	for i, st := range s.Execs[s.Exec] {
		key := fmt.Sprintf("%d.%d", s.Exec, i)
		switch st.Op {
		case "call":
			v, err := CallActivity[string](ctx, st.Name, key).Await(ctx)
			if err != nil && st.Fatal {
				return "", err
			}
			note("call", v, err)
		case "retry":
			opts := []CallOption{WithRetry(RetryPolicy{MaxAttempts: st.N, FirstInterval: time.Duration(st.Secs) * time.Second})}
			if st.Timed {
				opts = append(opts, WithTimeout(time.Duration(st.Secs)*time.Second))
			}
			v, err := CallActivity[string](ctx, "Flaky", key, opts...).Await(ctx)
			note("retry", v, err)
		case "fanout":
			fs := make([]Awaitable, st.N)
			for j := range fs {
				name := "Echo"
				if (j+st.Secs)%4 == 0 {
					name = "Fail"
				}
				fs[j] = CallActivity[string](ctx, name, fmt.Sprintf("%s.%d", key, j))
			}
			err := WhenAll(ctx, fs...)
			for _, f := range fs {
				v, err := f.(*Future[string]).Await(ctx)
				note("fan", v, err)
			}
			if err != nil && st.Fatal {
				return "", err
			}
		case "anyof":
			fs := make([]Awaitable, st.N)
			for j := range fs {
				fs[j] = CallActivity[string](ctx, "Echo", fmt.Sprintf("%s.%d", key, j))
			}
			w, err := WhenAny(ctx, fs...)
			note("anyof", slices.Index(fs, w), err)
			note("all", nil, WhenAll(ctx, fs...))
		case "timer":
			note("timer", ctx.Now().Unix(), ctx.Sleep(time.Duration(st.Secs)*time.Second))
		case "event":
			v, err := WaitForEvent[string](ctx, st.Name).Await(ctx)
			note("event", v, err)
		case "child":
			v, err := CallSubOrchestration[string](ctx, st.Name, key).Await(ctx)
			if err != nil && st.Fatal {
				return "", err
			}
			note("child", v, err)
		case "race-activity", "race-event", "race-child":
			var f Awaitable
			switch st.Op {
			case "race-activity":
				f = CallActivity[string](ctx, "Echo", key)
			case "race-event":
				f = WaitForEvent[string](ctx, st.Name)
			default:
				f = CallSubOrchestration[string](ctx, "Child", key)
			}
			timer := ctx.CreateTimer(time.Duration(st.Secs) * time.Second)
			w, err := WhenAny(ctx, f, timer)
			if w == timer {
				f.(*Future[string]).Cancel()
				note("race", "timeout", err)
			} else {
				timer.Cancel()
				v, err := f.(*Future[string]).Await(ctx)
				note("race", v, err)
			}
		case "guid":
			note("guid", ctx.NewGUID(), nil)
		case "status":
			note("status", i, ctx.SetCustomStatus(key))
		case "send":
			note("send", nil, ctx.RaiseEvent("peer", "ping", key))
		case "detach":
			id, err := ctx.StartOrchestration("Child", key)
			note("detach", id, err)
		case "patch":
			note("patch", ctx.IsPatched(st.Name), nil)
		case "panic":
			panic("step " + key)
		case "fail":
			return "", NewApplicationError("Step", "step "+key+" failed", false)
		}
	}
	if s.Exec+1 < len(s.Execs) {
		s.Exec++
		return "", ctx.ContinueAsNew(s)
	}
	return strings.Join(log, " "), nil
}

// propRegistry registers the interpreter; children never run here, the
// harness answers for them.
func propRegistry() *Registry {
	r := NewRegistry()
	if err := RegisterOrchestration(r, propOrchestration, WithName("Prop")); err != nil {
		panic(err)
	}
	return r
}

// propActivities are the activities of the programs: Echo returns its input,
// Fail fails, Flaky fails the first attempt of each input.
func propActivities() map[string]func([]byte) ([]byte, error) {
	attempts := map[string]int{}
	return map[string]func([]byte) ([]byte, error){
		"Echo": func(in []byte) ([]byte, error) { return in, nil },
		"Fail": func(in []byte) ([]byte, error) { return nil, fmt.Errorf("fail %s", in) },
		"Flaky": func(in []byte) ([]byte, error) {
			attempts[string(in)]++
			if attempts[string(in)] == 1 {
				return nil, fmt.Errorf("flaky %s", in)
			}
			return in, nil
		},
	}
}

// childAnswer is the completion of a sub-orchestration start sent by the
// engine, or nil when m is not one: Child returns its input, ChildFail fails.
func childAnswer(m *Message) *Message {
	ev := m.Event
	if ev.Kind != EventExecutionStarted || ev.Parent == nil {
		return nil
	}
	done := &Event{TaskID: ev.Parent.TaskID}
	if ev.Name == "ChildFail" {
		done.Kind, done.Failure = EventSubOrchestrationFailed, &Failure{Kind: KindApplication, Type: "Child", Message: "child failed"}
	} else {
		done.Kind, done.Data = EventSubOrchestrationCompleted, ev.Data
	}
	return &Message{ID: "done-" + m.ID, InstanceID: ev.Parent.InstanceID, ExecutionID: ev.Parent.ExecutionID, Event: done}
}

// genShape draws a program and the external events to raise for it.
func genShape(rng *rand.Rand) (propShape, []string) {
	var s propShape
	var events []string
	execs := 1
	if rng.IntN(4) == 0 {
		execs += 1 + rng.IntN(2)
	}
	for x := range execs {
		var steps []propStep
		for i := range 1 + rng.IntN(7) {
			st := propStep{Secs: 1 + rng.IntN(120)}
			switch rng.IntN(17) {
			case 0, 1:
				st.Op, st.Name = "call", "Echo"
			case 2:
				st.Op, st.Name, st.Fatal = "call", "Fail", rng.IntN(3) == 0
			case 3:
				st.Op, st.N, st.Timed = "retry", 1+rng.IntN(3), rng.IntN(2) == 0
			case 4:
				st.Op, st.N, st.Fatal = "fanout", 1+rng.IntN(6), rng.IntN(4) == 0
			case 5:
				st.Op, st.N = "anyof", 2+rng.IntN(3)
			case 6:
				st.Op = "timer"
			case 7:
				st.Op, st.Name = "event", fmt.Sprintf("ev%d.%d", x, i)
				events = append(events, st.Name)
			case 8:
				st.Op, st.Name = "child", "Child"
				if rng.IntN(3) == 0 {
					st.Name, st.Fatal = "ChildFail", rng.IntN(2) == 0
				}
			case 9:
				st.Op = "race-activity"
			case 10:
				st.Op, st.Name = "race-event", fmt.Sprintf("ev%d.%d", x, i)
				events = append(events, st.Name)
			case 11:
				st.Op = "race-child"
			case 12:
				st.Op = []string{"guid", "status", "send", "detach"}[rng.IntN(4)]
			case 13:
				st.Op, st.Name = "patch", "p"+strconv.Itoa(rng.IntN(3))
			case 14:
				st.Op = "event"
				st.Name = fmt.Sprintf("shared%d", rng.IntN(2))
				events = append(events, st.Name)
			case 15:
				st.Op = "timer"
				st.Secs = 8 * 24 * 3600 // longer than a queue's visibility limit
			default:
				if rng.IntN(4) == 0 {
					st.Op = []string{"panic", "fail"}[rng.IntN(2)]
				} else {
					st.Op, st.Name = "call", "Echo"
				}
			}
			steps = append(steps, st)
		}
		s.Execs = append(s.Execs, steps)
	}
	for range rng.IntN(3) {
		events = append(events, fmt.Sprintf("extra%d", rng.IntN(3))) // nobody waits: buffered, carried over
	}
	return s, events
}

// propRun drives one shape through the driver with a random delivery order.
type propRun struct {
	t         *testing.T
	d         *driver
	rng       *rand.Rand
	pool      []*Message // delivered next, in any order, in batches of any size
	delivered []*Message // duplicates are drawn from these
	fired     map[TimerRow]bool
	outSeen   int
	stored    []*Event // the history as a provider returns it: each episode's events encoded and decoded
	episodes  []string // what each episode produced, encoded
	check     bool     // replay from scratch after every episode and compare
	replayed  int64    // events the driver's executors replayed
}

// runShape runs shape until its instance ends. seed fixes every random
// choice: a run with the same seed over the same outputs makes the same
// choices. With check, every episode is followed by a replay from scratch.
func runShape(t *testing.T, shape propShape, events []string, seed uint64, cache, check bool) *propRun {
	t.Helper()
	d := newDriver(t, propRegistry())
	d.cache = cache
	d.acts = propActivities()
	r := &propRun{t: t, d: d, rng: rand.New(rand.NewPCG(seed, 0x5eed)), fired: map[TimerRow]bool{}, check: check}
	d.start("Prop", shape)
	d.inbox[0].ID = "start"
	// The start goes first, alone: the runtime, too, orders a start before
	// the other messages of a new instance.
	r.pool, d.inbox = d.inbox, nil
	r.deliver()
	suspendAt, terminateAt := -1, -1
	if r.rng.IntN(5) == 0 {
		suspendAt = 1 + r.rng.IntN(6)
	}
	if r.rng.IntN(10) == 0 {
		terminateAt = 1 + r.rng.IntN(8)
	}
	resumes := 0
	for ep := 1; ; ep++ {
		if ep > 5000 {
			t.Fatalf("shape did not finish: %s", shapeJSON(shape))
		}
		if d.exec.done {
			break
		}
		if ep == 1 {
			for i, name := range events {
				d.raise(name, name+"!")
				d.inbox[i].ID = fmt.Sprintf("raise-%d", i) // the same in both runs: it goes into history
			}
			r.pool, d.inbox = append(r.pool, d.inbox...), nil
		}
		if ep == suspendAt {
			r.pool = append(r.pool, &Message{ID: "suspend", InstanceID: d.id, Event: &Event{Kind: EventExecutionSuspended, Reason: "hold"}})
		}
		if ep == terminateAt {
			r.pool = append(r.pool, &Message{ID: "terminate", InstanceID: d.id, Event: &Event{Kind: EventExecutionTerminated, Reason: "stop"}})
		}
		if d.exec.suspended && !slices.ContainsFunc(r.pool, func(m *Message) bool { return m.Event.Kind == EventExecutionResumed }) {
			// Message ids are deduplicated per execution: a duplicate of a
			// suspend that an earlier execution received suspends the new
			// one. Every suspension gets its resume.
			resumes++
			r.pool = append(r.pool, &Message{ID: fmt.Sprintf("resume-%d", resumes), InstanceID: d.id,
				Event: &Event{Kind: EventExecutionResumed, Reason: "go"}})
		}
		r.fireDue()
		if len(r.pool) == 0 || r.rng.IntN(6) == 0 {
			r.advance()
		}
		if len(r.pool) == 0 {
			t.Fatalf("episode %d: the instance waits for nothing the harness can give: %s\n%s",
				ep, shapeJSON(shape), executorState(d.exec))
		}
		r.deliver()
	}
	return r
}

// fireDue offers the timers that are due.
func (r *propRun) fireDue() {
	for _, tr := range r.d.timers {
		if !r.fired[tr] && !tr.FireAt.After(r.d.now) {
			r.fired[tr] = true
			r.pool = append(r.pool, &Message{ID: fmt.Sprintf("timer-%s-%d", tr.ExecutionID, tr.TaskID), InstanceID: r.d.id,
				ExecutionID: tr.ExecutionID, Event: &Event{Kind: EventTimerFired, TaskID: tr.TaskID, FireAt: tr.FireAt}})
		}
	}
}

// advance moves virtual time to the next timer that has not fired.
func (r *propRun) advance() {
	var next time.Time
	for _, tr := range r.d.timers {
		if !r.fired[tr] && (next.IsZero() || tr.FireAt.Before(next)) {
			next = tr.FireAt
		}
	}
	if next.After(r.d.now) {
		r.d.now = next
	}
	r.fireDue()
}

// deliver runs one episode over a random batch of the pool, sometimes with a
// duplicate of an earlier message, and checks the result.
func (r *propRun) deliver() {
	d := r.d
	n := 1 + r.rng.IntN(min(len(r.pool), 4))
	batch := make([]*Message, 0, n+1)
	for range n {
		i := r.rng.IntN(len(r.pool))
		batch = append(batch, r.pool[i])
		r.pool = slices.Delete(r.pool, i, i+1)
	}
	if len(r.delivered) > 0 && r.rng.IntN(6) == 0 {
		dup := r.delivered[r.rng.IntN(len(r.delivered))]
		batch = slices.Insert(batch, r.rng.IntN(len(batch)+1), dup)
	}
	r.delivered = append(r.delivered, batch...)
	if !d.cache {
		// Replay from what a provider stores, not from the live objects.
		d.history = slices.Clone(r.stored)
	}
	d.inbox = batch
	prev := d.exec
	out := d.runEpisode()
	if d.exec != prev {
		r.replayed += d.exec.replayed
	}
	if out.newExecution {
		r.stored = nil
	}
	r.stored = append(r.stored, roundTrip(r.t, out.history)...)
	r.episodes = append(r.episodes, describeOut(r.t, out))
	for _, m := range d.inbox {
		m.ID = fmt.Sprintf("act-%s-%d", m.ExecutionID, m.Event.TaskID)
	}
	r.pool = append(r.pool, d.inbox...)
	d.inbox = nil
	for _, m := range d.outbox[r.outSeen:] {
		if a := childAnswer(m); a != nil {
			r.pool = append(r.pool, a)
		}
	}
	r.outSeen = len(d.outbox)
	if r.check {
		r.checkReplay(len(out.history) > 0)
	}
}

// checkReplay replays the stored history in a fresh executor and compares
// its state with the live executor's.
func (r *propRun) checkReplay(compareNow bool) {
	r.t.Helper()
	fresh := newExecutor(r.d.cfg, r.d.id, 0)
	defer fresh.close()
	fresh.replay(r.stored)
	if fresh.ndErr != nil {
		r.t.Fatalf("replay of a live history diverged: %v", fresh.ndErr)
	}
	live, replayed := executorState(r.d.exec), executorState(fresh)
	if live != replayed {
		r.t.Fatalf("replayed state differs from the live state\nlive:\n%s\nreplayed:\n%s", live, replayed)
	}
	// An episode that only dropped duplicates records nothing, so history
	// cannot tell its time; the next episode sets it anyway.
	if compareNow && !fresh.now.Equal(r.d.exec.now) {
		r.t.Fatalf("replayed time %s, live %s", fresh.now, r.d.exec.now)
	}
}

// roundTrip encodes and decodes events as a provider stores them.
func roundTrip(t testing.TB, events []*Event) []*Event {
	t.Helper()
	if len(events) == 0 {
		return nil
	}
	b, err := EncodeEvents(events)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeEvents(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func shapeJSON(s propShape) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// executorState renders everything an executor keeps between episodes
// except the time of the last episode, in a canonical order.
func executorState(e *executor) string {
	var b strings.Builder
	enc := func(v any) string {
		j, err := json.Marshal(v)
		if err != nil {
			return "!" + err.Error()
		}
		return string(j)
	}
	events := func(evs []*Event) string {
		if len(evs) == 0 {
			return "[]"
		}
		j, err := EncodeEvents(evs)
		if err != nil {
			return "!" + err.Error()
		}
		return string(j)
	}
	fmt.Fprintf(&b, "execution %q name %q version %q input %q parent %s\n", e.executionID, e.name, e.version, e.input, enc(e.parent))
	fmt.Fprintf(&b, "status %s output %q failure %s custom %q started %v done %v suspended %v\n",
		e.status, e.output, enc(e.failure), e.customStatus, e.started, e.done, e.suspended)
	fmt.Fprintf(&b, "seq %d bytes %d nextTask %d guids %d resolved %d unmatched %d nd %v can %v coroutine %v\n",
		e.seq, e.historyBytes, e.nextTask, e.guids, e.resolved, len(e.unmatched), e.ndErr != nil, e.can != nil, e.co != nil)
	fmt.Fprintf(&b, "tasks %v\n", slices.Sorted(mapKeys(e.tasks)))
	for _, name := range slices.Sorted(mapKeys(e.waiters)) {
		if n := len(e.waiters[name]); n > 0 {
			fmt.Fprintf(&b, "waiting %q x%d\n", name, n)
		}
	}
	fmt.Fprintf(&b, "buffered %s\ndeferred %s\n", events(e.buffered), events(e.deferred))
	fmt.Fprintf(&b, "seen %v\n", slices.Sorted(mapKeys(e.seenMsgs)))
	fmt.Fprintf(&b, "timers %s\nactivities %s\n", enc(e.pendingTimers()), enc(e.pendingActivities()))
	for _, task := range slices.Sorted(mapKeys(e.children)) {
		fmt.Fprintf(&b, "child %d %q\n", task, e.children[task])
	}
	return b.String()
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// describeOut encodes what an episode produced for its commit.
func describeOut(t testing.TB, out *episodeOut) string {
	t.Helper()
	msgs := func(ms []*Message) []string {
		var s []string
		for _, m := range ms {
			b, err := EncodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, string(b))
		}
		return s
	}
	var hist []byte
	if len(out.history) > 0 {
		var err error
		if hist, err = EncodeEvents(out.history); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(struct {
		NewExecution      bool
		History           json.RawMessage
		TimersAdded       []TimerRow
		TimersRemoved     []TimerRow
		ActivitiesAdded   []*ActivityTask
		ActivitiesRemoved []*ActivityTask
		Cancelled         []*ActivityTask
		Outbox            []string
	}{out.newExecution, json.RawMessage(cmpOr(hist, []byte("null"))), out.timersAdded, out.timersRemoved,
		out.activitiesAdded, out.activitiesRemoved, out.cancelled, msgs(out.outbox)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runDependent matches what differs between two runs of the same code: the
// goroutine numbers and addresses in a panic's stack, and so the history's
// size in bytes.
var runDependent = regexp.MustCompile(`goroutine \d+|0x[0-9a-f]+|bytes \d+`)

// stable blanks what legitimately differs between two separate runs.
func stable(s string) string { return runDependent.ReplaceAllString(s, "?") }

func cmpOr(b, alt []byte) []byte {
	if len(b) == 0 {
		return alt
	}
	return b
}

// Explore further with, for example, -property.seed=$RANDOM -property.shapes=5000.
var (
	propSeed   = flag.Uint64("property.seed", 2026, "seed of the shapes the property test draws")
	propShapes = flag.Int("property.shapes", 300, "how many shapes the property test draws")
)

func TestPropertyReplayMatchesLiveRun(t *testing.T) {
	shapes := *propShapes
	rng := rand.New(rand.NewPCG(*propSeed, 2))
	kinds := map[Status]int{}
	for i := range shapes {
		shape, events := genShape(rng)
		seed := rng.Uint64()
		cached := runShape(t, shape, events, seed, true, true)
		fresh := runShape(t, shape, events, seed, false, false)
		if cached.replayed != 0 {
			t.Fatalf("shape %d: the cached executor replayed %d events", i, cached.replayed)
		}
		if len(fresh.episodes) > 1 && fresh.replayed == 0 {
			t.Fatalf("shape %d: the executors without the cache replayed nothing", i)
		}
		if len(cached.episodes) != len(fresh.episodes) {
			t.Fatalf("shape %d %s: %d episodes with the cache, %d without", i, shapeJSON(shape), len(cached.episodes), len(fresh.episodes))
		}
		for j := range cached.episodes {
			if a, b := cached.episodes[j], fresh.episodes[j]; a != b && stable(a) != stable(b) {
				t.Fatalf("shape %d %s: episode %d differs\nwith the cache:    %s\nwithout the cache: %s",
					i, shapeJSON(shape), j, cached.episodes[j], fresh.episodes[j])
			}
		}
		if a, b := executorState(cached.d.exec), executorState(fresh.d.exec); a != b && stable(a) != stable(b) {
			t.Fatalf("shape %d %s: final state differs\nwith the cache:\n%s\nwithout:\n%s", i, shapeJSON(shape), a, b)
		}
		kinds[cached.d.exec.status]++
		cached.d.exec.close()
		fresh.d.exec.close()
	}
	// The generator must reach every way an instance ends.
	for _, s := range []Status{StatusCompleted, StatusFailed, StatusTerminated} {
		if kinds[s] == 0 {
			t.Errorf("no shape ended %s: %v", s, kinds)
		}
	}
	t.Logf("%d shapes ended: %v", shapes, kinds)
}

// TestPropertyShapesAreDeterministic guards the harness itself: the same
// shape and seed give the same run.
func TestPropertyShapesAreDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 20 {
		shape, events := genShape(rng)
		seed := rng.Uint64()
		a := runShape(t, shape, events, seed, true, false)
		b := runShape(t, shape, events, seed, true, false)
		if !slices.EqualFunc(a.episodes, b.episodes, func(x, y string) bool { return stable(x) == stable(y) }) {
			t.Fatalf("same shape and seed, different runs: %s", shapeJSON(shape))
		}
		a.d.exec.close()
		b.d.exec.close()
	}
}

// TestDuplicateSuspendAfterResumeIsDropped: a suspend or resume delivered
// again (a message whose delete was lost) changes nothing.
func TestDuplicateSuspendAfterResumeIsDropped(t *testing.T) {
	for _, cache := range []bool{true, false} {
		d := newDriver(t, propRegistry())
		d.cache = cache
		d.start("Prop", propShape{Execs: [][]propStep{{{Op: "event", Name: "go"}}}})
		d.runEpisode()
		suspend := &Message{ID: "suspend-1", InstanceID: d.id, Event: &Event{Kind: EventExecutionSuspended, Reason: "hold"}}
		resume := &Message{ID: "resume-1", InstanceID: d.id, Event: &Event{Kind: EventExecutionResumed, Reason: "go on"}}
		for _, batch := range [][]*Message{{suspend}, {resume}, {suspend}, {resume, suspend}} {
			d.inbox = batch
			d.runEpisode()
		}
		if d.exec.suspended || d.exec.status != StatusRunning {
			t.Fatalf("cache=%v: duplicates suspended the instance again: %s", cache, d.exec.status)
		}
		kinds := map[EventKind]int{}
		for _, ev := range d.history {
			kinds[ev.Kind]++
		}
		if kinds[EventExecutionSuspended] != 1 || kinds[EventExecutionResumed] != 1 {
			t.Fatalf("cache=%v: history has %d suspends and %d resumes, want 1 and 1", cache,
				kinds[EventExecutionSuspended], kinds[EventExecutionResumed])
		}
		d.raise("go", "now")
		d.run()
		var out string
		if err := d.result(&out); err != nil || out != "event=now" {
			t.Fatalf("cache=%v: result %q, %v", cache, out, err)
		}
		d.exec.close()
	}
}
