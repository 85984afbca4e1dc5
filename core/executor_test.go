package core

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// driver runs one instance through the engine alone: it answers activities
// inline, fires timers in virtual time and keeps the history, so that engine
// behaviour can be checked without a runtime or a provider.
type driver struct {
	t        *testing.T
	cfg      *engineConfig
	id       string
	history  []*Event
	exec     *executor
	now      time.Time
	inbox    []*Message
	timers   []TimerRow
	acts     map[string]func(in []byte) ([]byte, error)
	outbox   []*Message
	episodes int
	cache    bool
}

func newDriver(t *testing.T, reg *Registry) *driver {
	return &driver{t: t, id: "inst-1", now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), cache: true,
		cfg:  &engineConfig{registry: reg, codec: JSONCodec{}, logger: zerolog.Nop()},
		acts: map[string]func([]byte) ([]byte, error){}}
}

func (d *driver) start(name string, input any) {
	b, _ := JSONCodec{}.Marshal(input)
	d.inbox = append(d.inbox, &Message{ID: NewID(), InstanceID: d.id,
		Event: &Event{Kind: EventExecutionStarted, Name: name, Data: b, ExecutionID: "exec-1"}})
}

func (d *driver) raise(name string, data any) {
	b, _ := JSONCodec{}.Marshal(data)
	d.inbox = append(d.inbox, &Message{ID: NewID(), InstanceID: d.id, Event: &Event{Kind: EventEventRaised, Name: name, Data: b}})
}

// runEpisode runs one episode over the inbox and applies its output.
func (d *driver) runEpisode() *episodeOut {
	d.t.Helper()
	if d.exec == nil || !d.cache {
		if d.exec != nil {
			d.exec.close()
		}
		d.exec = newExecutor(d.cfg, d.id, 0)
		d.exec.replay(d.history)
	}
	msgs := d.inbox
	d.inbox = nil
	out := d.exec.episode(d.now, msgs)
	d.episodes++
	if out.newExecution {
		d.history = nil
	}
	for i, ev := range out.history {
		if want := int64(len(d.history)); ev.Seq != want {
			d.t.Fatalf("event %d of episode has seq %d, want %d", i, ev.Seq, want)
		}
		d.history = append(d.history, ev)
	}
	d.timers = append(d.timers, out.timersAdded...)
	for _, r := range out.timersRemoved {
		for i, t := range d.timers {
			if t == r {
				d.timers = append(d.timers[:i], d.timers[i+1:]...)
				break
			}
		}
	}
	for _, a := range out.activitiesAdded {
		fn := d.acts[a.Name]
		ev := &Event{TaskID: a.TaskID}
		if fn == nil {
			ev.Kind, ev.Failure = EventActivityFailed, NewFailure(fmt.Errorf("no activity %s", a.Name))
		} else if res, err := fn(a.Input); err != nil {
			ev.Kind, ev.Failure = EventActivityFailed, NewFailure(err)
		} else {
			ev.Kind, ev.Data = EventActivityCompleted, res
		}
		d.inbox = append(d.inbox, &Message{ID: NewID(), InstanceID: d.id, ExecutionID: a.ExecutionID, Event: ev})
	}
	d.outbox = append(d.outbox, out.outbox...)
	return out
}

// run drives the instance until it is done or idle, advancing virtual time to
// the next timer when nothing else is pending.
func (d *driver) run() {
	d.t.Helper()
	for range 10000 {
		if len(d.inbox) > 0 {
			d.runEpisode()
			continue
		}
		if d.exec != nil && d.exec.done || len(d.timers) == 0 {
			return
		}
		next := d.timers[0]
		for _, t := range d.timers {
			if t.FireAt.Before(next.FireAt) {
				next = t
			}
		}
		if next.FireAt.After(d.now) {
			d.now = next.FireAt
		}
		d.inbox = append(d.inbox, &Message{ID: NewID(), InstanceID: d.id, ExecutionID: next.ExecutionID,
			Event: &Event{Kind: EventTimerFired, TaskID: next.TaskID, FireAt: next.FireAt}})
	}
	d.t.Fatal("instance did not settle")
}

func (d *driver) result(v any) error {
	d.t.Helper()
	e := d.exec
	if !e.done {
		d.t.Fatalf("instance not done: status %s", e.status)
	}
	if e.failure != nil {
		return &FailureError{InstanceID: d.id, Failure: e.failure}
	}
	return JSONCodec{}.Unmarshal(e.output, v)
}

func mustRegister(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func helloRegistry(t *testing.T) *Registry {
	r := NewRegistry()
	mustRegister(t, RegisterOrchestration(r, func(ctx *OrchestrationContext, names []string) (string, error) {
		var parts []string
		for _, n := range names {
			s, err := CallActivity[string](ctx, "Hello", n).Await(ctx)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " "), nil
	}, WithName("Seq")))
	return r
}

func TestSequenceLiveAndReplayed(t *testing.T) {
	for _, cache := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
			d := newDriver(t, helloRegistry(t))
			d.cache = cache
			d.acts["Hello"] = func(in []byte) ([]byte, error) { return []byte(`"hi ` + strings.Trim(string(in), `"`) + `"`), nil }
			d.start("Seq", []string{"a", "b", "c"})
			d.run()
			var got string
			if err := d.result(&got); err != nil {
				t.Fatal(err)
			}
			if got != "hi a hi b hi c" {
				t.Fatalf("got %q", got)
			}
			if d.episodes != 4 {
				t.Fatalf("episodes = %d, want 4", d.episodes)
			}
			// A fresh replay of the full history reaches the same end without divergence.
			e := newExecutor(d.cfg, d.id, 0)
			e.replay(d.history)
			if e.ndErr != nil || !e.done || string(e.output) != `"hi a hi b hi c"` {
				t.Fatalf("replay: nd=%v done=%v out=%s", e.ndErr, e.done, e.output)
			}
		})
	}
}

func TestNonDeterminismReported(t *testing.T) {
	d := newDriver(t, helloRegistry(t))
	d.acts["Hello"] = func(in []byte) ([]byte, error) { return in, nil }
	d.start("Seq", []string{"a", "b"})
	d.runEpisode() // schedules Hello(a)
	// New code calls another activity at the same position.
	reg := NewRegistry()
	mustRegister(t, RegisterOrchestration(reg, func(ctx *OrchestrationContext, names []string) (string, error) {
		return CallActivity[string](ctx, "Goodbye", names[0]).Await(ctx)
	}, WithName("Seq")))
	d.cfg = &engineConfig{registry: reg, codec: JSONCodec{}, logger: zerolog.Nop()}
	d.cache = false
	d.run()
	err := d.result(new(string))
	var nd *NonDeterminismError
	if !errors.Is(err, ErrNonDeterminism) {
		t.Fatalf("err = %v, want non-determinism", err)
	}
	if KindOf(err) != KindConfiguration {
		t.Fatalf("kind = %v", KindOf(err))
	}
	_ = nd
	if !strings.Contains(err.Error(), `ActivityScheduled "Hello"`) || !strings.Contains(err.Error(), `ActivityScheduled "Goodbye"`) {
		t.Fatalf("error does not name both actions: %v", err)
	}
}
