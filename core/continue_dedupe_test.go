package core

import "testing"

// An event consumed by one execution and delivered again after the instance
// continued as new (its delete was lost, or a sender re-sent its outbox after
// a fail-over) is dropped, with and without the executor cache.
func TestDuplicateEventAfterContinueAsNewIsDropped(t *testing.T) {
	for _, cache := range []bool{true, false} {
		reg := NewRegistry()
		mustRegister(t, RegisterOrchestration(reg, func(ctx *OrchestrationContext, round int) (string, error) {
			v, err := WaitForEvent[string](ctx, "go").Await(ctx)
			if err != nil || round == 1 {
				return v, err
			}
			return "", ctx.ContinueAsNew(round + 1)
		}, WithName("Rounds")))
		d := newDriver(t, reg)
		d.cache = cache
		d.start("Rounds", 0)
		d.runEpisode()
		first := &Message{ID: "event-1", InstanceID: d.id, Event: &Event{Kind: EventEventRaised, Name: "go", Data: []byte(`"first"`)}}
		d.inbox = []*Message{first}
		d.runEpisode() // consumes event-1 and continues as new
		if d.exec.done {
			t.Fatalf("cache=%v: finished in the first round", cache)
		}
		again := *first
		again.Event = &Event{Kind: EventEventRaised, Name: "go", Data: []byte(`"first"`)}
		d.inbox = []*Message{&again}
		d.runEpisode()
		if d.exec.done {
			t.Fatalf("cache=%v: the duplicate of event-1 completed the second execution", cache)
		}
		d.inbox = []*Message{{ID: "event-2", InstanceID: d.id, Event: &Event{Kind: EventEventRaised, Name: "go", Data: []byte(`"second"`)}}}
		d.runEpisode()
		var out string
		if err := d.result(&out); err != nil || out != "second" {
			t.Fatalf("cache=%v: result %q, %v; want the second event", cache, out, err)
		}
		d.exec.close()
	}
}
