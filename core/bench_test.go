package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Benchmarks of the replay engine. Run them with
//
//	go test -run='^$' -bench=. -benchmem ./core/

// benchSequence calls n activities one after another: 3 history events per
// call, one episode each.
func benchSequence(ctx *OrchestrationContext, n int) (int, error) {
	sum := 0
	for i := range n {
		v, err := CallActivity[int](ctx, "Echo", i).Await(ctx)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// benchFanOut calls n activities at once and waits for all of them.
func benchFanOut(ctx *OrchestrationContext, n int) (int, error) {
	fs := make([]Awaitable, n)
	for i := range fs {
		fs[i] = CallActivity[int](ctx, "Echo", i)
	}
	return n, WhenAll(ctx, fs...)
}

func benchRegistry() *Registry {
	r := NewRegistry()
	for name, fn := range map[string]func(*OrchestrationContext, int) (int, error){"Sequence": benchSequence, "FanOut": benchFanOut} {
		if err := RegisterOrchestration(r, fn, WithName(name)); err != nil {
			panic(err)
		}
	}
	return r
}

// engineRun runs one instance on the engine alone, like driver but without a
// *testing.T, for benchmarks and fuzz seeds: activities answer through acts,
// children through childAnswer, the events are raised once the instance has
// started, and timers fire in virtual time when nothing else is pending.
type engineRun struct {
	cfg      *engineConfig
	exec     *executor
	now      time.Time
	history  []*Event   // the current execution's
	messages []*Message // every message delivered or sent
	acts     map[string]func([]byte) ([]byte, error)
}

func newEngineRun(reg *Registry) *engineRun {
	return &engineRun{cfg: &engineConfig{registry: reg, codec: JSONCodec{}, logger: zerolog.Nop()},
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), acts: propActivities()}
}

func (r *engineRun) run(name string, input any, events ...string) error {
	in, err := JSONCodec{}.Marshal(input)
	if err != nil {
		return err
	}
	r.exec = newExecutor(r.cfg, "inst-1", 0)
	inbox := []*Message{{ID: "start", InstanceID: "inst-1",
		Event: &Event{Kind: EventExecutionStarted, Name: name, Data: in, ExecutionID: "exec-1"}}}
	var timers []TimerRow
	for range 100000 {
		out := r.exec.episode(r.now, inbox)
		r.messages = append(r.messages, inbox...)
		inbox = nil
		if out.newExecution {
			r.history = nil
		}
		r.history = append(r.history, out.history...)
		timers = append(timers, out.timersAdded...)
		timers = slices.DeleteFunc(timers, func(t TimerRow) bool { return slices.Contains(out.timersRemoved, t) })
		for _, a := range out.activitiesAdded {
			inbox = append(inbox, r.answer(a))
		}
		for _, m := range out.outbox {
			r.messages = append(r.messages, m)
			if a := childAnswer(m); a != nil {
				inbox = append(inbox, a)
			}
		}
		for i, name := range events {
			inbox = append(inbox, &Message{ID: fmt.Sprint("raise-", i), InstanceID: "inst-1",
				Event: &Event{Kind: EventEventRaised, Name: name, Data: []byte(`"<` + name + `> & more"`)}})
		}
		events = nil
		if r.exec.done {
			return nil
		}
		if len(inbox) == 0 {
			if len(timers) == 0 {
				return fmt.Errorf("%s waits for nothing the run can give", name)
			}
			next := slices.MinFunc(timers, func(a, b TimerRow) int { return a.FireAt.Compare(b.FireAt) })
			r.now = later(r.now, next.FireAt)
			inbox = append(inbox, &Message{ID: fmt.Sprint("timer-", next.TaskID), InstanceID: "inst-1", ExecutionID: next.ExecutionID,
				Event: &Event{Kind: EventTimerFired, TaskID: next.TaskID, FireAt: next.FireAt}})
			timers = slices.DeleteFunc(timers, func(t TimerRow) bool { return t == next })
		}
	}
	return fmt.Errorf("%s did not finish", name)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// answer is the completion message of an activity.
func (r *engineRun) answer(a *ActivityTask) *Message {
	ev := &Event{TaskID: a.TaskID, Kind: EventActivityCompleted}
	if fn := r.acts[a.Name]; fn == nil {
		ev.Kind, ev.Failure = EventActivityFailed, NewFailure(fmt.Errorf("no activity %s", a.Name))
	} else if res, err := fn(a.Input); err != nil {
		ev.Kind, ev.Failure = EventActivityFailed, NewFailure(err)
	} else {
		ev.Data = res
	}
	return &Message{ID: fmt.Sprintf("act-%s-%d", a.ExecutionID, a.TaskID), InstanceID: a.InstanceID, ExecutionID: a.ExecutionID, Event: ev}
}

// sequenceHistory is the complete history of a Sequence of n calls: 3n+3 events.
func sequenceHistory(tb testing.TB, n int) ([]*Event, *engineConfig) {
	tb.Helper()
	r := newEngineRun(benchRegistry())
	if err := r.run("Sequence", n); err != nil {
		tb.Fatal(err)
	}
	r.exec.close()
	return r.history, r.cfg
}

func BenchmarkReplay10kEvents(b *testing.B) {
	history, cfg := sequenceHistory(b, 3333)
	if len(history) < 10000 {
		b.Fatalf("the history has %d events", len(history))
	}
	b.ReportAllocs()
	for b.Loop() {
		e := newExecutor(cfg, "inst-1", 0)
		e.replay(history)
		if e.ndErr != nil || !e.done {
			b.Fatalf("replay: %v, done %v", e.ndErr, e.done)
		}
		e.close()
	}
}

// BenchmarkDecodeHistory10kEvents is the other half of a cache miss: reading
// the stored history.
func BenchmarkDecodeHistory10kEvents(b *testing.B) {
	history, _ := sequenceHistory(b, 3333)
	raw, err := EncodeEvents(history)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvents(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFanOut1000Activities(b *testing.B) {
	cfg := &engineConfig{registry: benchRegistry(), codec: JSONCodec{}, logger: zerolog.Nop()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in, _ := JSONCodec{}.Marshal(1000)
	b.ReportAllocs()
	for b.Loop() {
		e := newExecutor(cfg, "inst-1", 0)
		out := e.episode(now, []*Message{{ID: "start", InstanceID: "inst-1",
			Event: &Event{Kind: EventExecutionStarted, Name: "FanOut", Data: in, ExecutionID: "exec-1"}}})
		if len(out.activitiesAdded) != 1000 {
			b.Fatalf("%d activities scheduled", len(out.activitiesAdded))
		}
		e.close()
	}
}

// BenchmarkCacheHitEpisode is the common case: an instance whose executor is
// in memory receives one completion and schedules its next call.
// TestCacheHitEpisodeDoesNotReplay checks that no replay happens.
func BenchmarkCacheHitEpisode(b *testing.B) {
	cfg := &engineConfig{registry: benchRegistry(), codec: JSONCodec{}, logger: zerolog.Nop()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in, _ := JSONCodec{}.Marshal(1 << 40)
	e := newExecutor(cfg, "inst-1", 0)
	defer e.close()
	out := e.episode(now, []*Message{{ID: "start", InstanceID: "inst-1",
		Event: &Event{Kind: EventExecutionStarted, Name: "Sequence", Data: in, ExecutionID: "exec-1"}}})
	b.ReportAllocs()
	for b.Loop() {
		task := out.activitiesAdded[0].TaskID
		out = e.episode(now, []*Message{{ID: "done", InstanceID: "inst-1", ExecutionID: "exec-1",
			Event: &Event{Kind: EventActivityCompleted, TaskID: task, Data: []byte("1")}}})
		if len(out.activitiesAdded) != 1 {
			b.Fatalf("episode scheduled %d activities", len(out.activitiesAdded))
		}
	}
}

func TestCacheHitEpisodeDoesNotReplay(t *testing.T) {
	for _, cache := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
			d := newDriver(t, benchRegistry())
			d.cache = cache
			d.acts["Echo"] = func(in []byte) ([]byte, error) { return in, nil }
			d.start("Sequence", 5)
			d.runEpisode()
			first := d.exec
			for len(d.inbox) > 0 {
				before := int64(len(d.history))
				d.runEpisode()
				switch {
				case cache && (d.exec != first || d.exec.replayed != 0):
					t.Fatalf("a cached executor replayed %d events", d.exec.replayed)
				case !cache && d.exec.replayed != before:
					t.Fatalf("a fresh executor replayed %d events of %d", d.exec.replayed, before)
				}
			}
			var sum int
			if err := d.result(&sum); err != nil || sum != 10 {
				t.Fatalf("result %d, %v", sum, err)
			}
			d.exec.close()
		})
	}
}

func BenchmarkEncodeHistory10kEvents(b *testing.B) {
	history, _ := sequenceHistory(b, 3333)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvents(history); err != nil {
			b.Fatal(err)
		}
	}
}
