package cluster

import (
	"strings"
	"testing"

	"github.com/azdurable/azdurable/core"
)

func TestValidateHistory(t *testing.T) {
	ev := func(kind core.EventKind, task int64) *core.Event { return &core.Event{Kind: kind, TaskID: task} }
	good := func() []*core.Event {
		return []*core.Event{
			ev(core.EventEpisodeStarted, 0),
			ev(core.EventExecutionStarted, 0),
			ev(core.EventActivityScheduled, 1),
			ev(core.EventTimerCreated, 2),
			ev(core.EventEpisodeStarted, 0),
			ev(core.EventActivityCompleted, 1),
			{Kind: core.EventEventRaised, Name: "go", MessageID: "m1"},
			ev(core.EventTimerFired, 2),
			ev(core.EventExecutionCompleted, 0),
		}
	}
	number := func(h []*core.Event) []*core.Event {
		for i, e := range h {
			e.Seq = int64(i)
		}
		return h
	}
	if err := ValidateHistory(number(good())); err != nil {
		t.Fatalf("valid history rejected: %v", err)
	}
	cases := map[string]struct {
		edit func([]*core.Event) []*core.Event
		want string
	}{
		"gap": {func(h []*core.Event) []*core.Event { h = number(h); h[3].Seq = 4; return h }, "position"},
		"completed twice": {func(h []*core.Event) []*core.Event {
			return number(append(h[:8:8], ev(core.EventActivityCompleted, 1), h[8]))
		}, "completed twice"},
		"never scheduled": {func(h []*core.Event) []*core.Event {
			return number(append(h[:8:8], ev(core.EventSubOrchestrationCompleted, 9), h[8]))
		}, "never scheduled"},
		"scheduled twice": {func(h []*core.Event) []*core.Event {
			return number(append(h[:4:4], ev(core.EventActivityScheduled, 2), h[4]))
		}, "scheduled twice"},
		"event twice": {func(h []*core.Event) []*core.Event {
			return number(append(h[:7:7], &core.Event{Kind: core.EventEventRaised, MessageID: "m1"}, h[7], h[8]))
		}, "recorded twice"},
		"after end": {func(h []*core.Event) []*core.Event {
			return number(append(h, ev(core.EventActivityScheduled, 7)))
		}, "follows the end"},
		"started twice": {func(h []*core.Event) []*core.Event {
			return number(append(h[:2:2], append([]*core.Event{ev(core.EventExecutionStarted, 0)}, h[2:]...)...))
		}, "started twice"},
	}
	for name, c := range cases {
		err := ValidateHistory(c.edit(good()))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}
