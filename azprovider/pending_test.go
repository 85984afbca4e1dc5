package azprovider

import (
	"fmt"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

func TestAzuriteOpenPartitionReturnsPendingWork(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	const part = 3
	ep := newInstanceEpisode(idIn(p, "pending", part), testTime)
	id, exec := ep.InstanceID, ep.State.ExecutionID
	fire := testTime.Add(time.Hour).Add(123456789)
	timer := core.TimerRow{InstanceID: id, ExecutionID: exec, TaskID: 1, FireAt: fire}
	acts := []*core.ActivityTask{
		{Partition: part, InstanceID: id, ExecutionID: exec, TaskID: 2, Name: "Charge", Version: "v2", Input: []byte(`{"amount":5}`), ScheduledAt: testTime},
		{Partition: part, InstanceID: id, ExecutionID: exec, TaskID: 3, Name: "Ship", Input: []byte("not json"), ScheduledAt: testTime},
	}
	ep.History = append(ep.History,
		&core.Event{Seq: 2, Kind: core.EventTimerCreated, TaskID: 1, FireAt: fire},
		&core.Event{Seq: 3, Kind: core.EventActivityScheduled, TaskID: 2, Name: "Charge", Version: "v2", Data: acts[0].Input},
		&core.Event{Seq: 4, Kind: core.EventActivityScheduled, TaskID: 3, Name: "Ship", Data: acts[1].Input})
	ep.TimersAdded, ep.PendingTimers = []core.TimerRow{timer}, []core.TimerRow{timer}
	ep.ActivitiesAdded, ep.PendingActivities = acts, acts
	other := idIn(p, "receiver", 0)
	ep.OutboxID = "unit-1"
	ep.Outbox = []*core.Message{eventMessage(other, "hello", []byte(`"hi"`)), eventMessage(other, "later", nil)}
	ep.Outbox[1].VisibleAt = testTime.Add(time.Minute)
	res := commitOne(t, p, ep)
	must(t, res.Err)

	st, err := p.OpenPartition(ctx, part)
	must(t, err)
	if len(st.Timers) != 1 || st.Timers[0] != timer {
		t.Fatalf("timers %+v, want %+v", st.Timers, timer)
	}
	if len(st.Activities) != 2 {
		t.Fatalf("%d activities", len(st.Activities))
	}
	for i, a := range st.Activities {
		w := acts[i]
		if a.InstanceID != id || a.ExecutionID != exec || a.TaskID != w.TaskID || a.Name != w.Name || a.Version != w.Version ||
			string(a.Input) != string(w.Input) || !a.ScheduledAt.Equal(w.ScheduledAt) || a.Partition != part {
			t.Errorf("activity %d: %+v, want %+v", i, a, w)
		}
	}
	if len(st.Outbox) != 1 || st.Outbox[0].Ref != (core.OutboxRef{Partition: part, InstanceID: id, ID: "unit-1"}) || len(st.Outbox[0].Messages) != 2 {
		t.Fatalf("outbox %+v", st.Outbox)
	}
	if m := st.Outbox[0].Messages[1]; m.ID != ep.Outbox[1].ID || !m.VisibleAt.Equal(ep.Outbox[1].VisibleAt) {
		t.Errorf("outbox message %+v", m)
	}
	for q := range p.n {
		if q == part {
			continue
		}
		other, err := p.OpenPartition(ctx, q)
		must(t, err)
		if len(other.Timers)+len(other.Activities)+len(other.Outbox) != 0 {
			t.Fatalf("partition %d has pending work", q)
		}
	}

	// The next episode completes one activity, fires the timer and the
	// outbox unit is delivered: only one activity is left.
	snap, err := p.LoadInstance(ctx, part, id)
	must(t, err)
	ep2 := nextEpisode(snap.State, snap.Token, 5,
		&core.Event{Kind: core.EventTimerFired, TaskID: 1, FireAt: fire},
		&core.Event{Kind: core.EventActivityCompleted, TaskID: 2, Data: []byte(`"ok"`)})
	ep2.TimersRemoved = []core.TimerRow{timer}
	ep2.ActivitiesRemoved = acts[:1]
	ep2.PendingActivities = acts[1:]
	results, err := p.Commit(ctx, part, &core.CommitBatch{Episodes: []*core.Episode{ep2},
		OutboxDelivered: []core.OutboxRef{st.Outbox[0].Ref, {Partition: part, InstanceID: id, ID: "already-gone"}}})
	must(t, err)
	must(t, results[0].Err)
	st, err = p.OpenPartition(ctx, part)
	must(t, err)
	if len(st.Timers) != 0 || len(st.Outbox) != 0 || len(st.Activities) != 1 || st.Activities[0].TaskID != 3 || string(st.Activities[0].Input) != "not json" {
		t.Fatalf("after the second episode: %+v", st)
	}

	// The last activity completes: no pending rows remain.
	ep3 := nextEpisode(ep2.State, results[0].Token, 7, &core.Event{Kind: core.EventActivityCompleted, TaskID: 3})
	ep3.ActivitiesRemoved = acts[1:]
	must(t, commitOne(t, p, ep3).Err)
	st, err = p.OpenPartition(ctx, part)
	must(t, err)
	if len(st.Timers)+len(st.Activities)+len(st.Outbox) != 0 {
		t.Fatalf("pending work left: %+v", st)
	}
	rows, err := p.queryRange(ctx, part, "A|", "B", "", "")
	must(t, err)
	if len(rows) != 0 {
		t.Fatalf("%d A| rows left", len(rows))
	}

	// A batch of only delivered units (the runtime flushes them when idle).
	_, err = p.Commit(ctx, part, &core.CommitBatch{OutboxDelivered: []core.OutboxRef{{Partition: part, InstanceID: id, ID: "nothing"}}})
	must(t, err)
}

func TestAzuriteOpenPartitionCostIsProportionalToPendingWork(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	var eps []*core.Episode
	for i := range 30 {
		eps = append(eps, newInstanceEpisode(idIn(p, fmt.Sprintf("idle%d", i), 0), testTime))
	}
	_, err := p.Commit(ctx, 0, &core.CommitBatch{Episodes: eps})
	must(t, err)
	before := p.Stats()
	st, err := p.OpenPartition(ctx, 0)
	must(t, err)
	after := p.Stats()
	if len(st.Timers)+len(st.Activities)+len(st.Outbox) != 0 || after["table.query"]-before["table.query"] != 3 {
		t.Fatalf("opening a partition of 30 idle instances: %d queries", after["table.query"]-before["table.query"])
	}
}

// TestAzuriteActivityInputsNotInHistory: an input that the history does not
// hold stays in the A| row, also when later episodes rewrite the set.
func TestAzuriteActivityInputsNotInHistory(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	ep := newInstanceEpisode(idIn(p, "inline", 0), testTime)
	id, exec := ep.InstanceID, ep.State.ExecutionID
	inHist := &core.ActivityTask{Partition: 0, InstanceID: id, ExecutionID: exec, TaskID: 1, Name: "H", Input: []byte(`"from history"`), ScheduledAt: testTime}
	notInHist := &core.ActivityTask{Partition: 0, InstanceID: id, ExecutionID: exec, TaskID: 2, Name: "N", Input: []byte(`"only here"`), ScheduledAt: testTime}
	ep.History = append(ep.History, &core.Event{Seq: 2, Kind: core.EventActivityScheduled, TaskID: 1, Name: "H", Data: inHist.Input})
	ep.ActivitiesAdded = []*core.ActivityTask{inHist, notInHist}
	ep.PendingActivities = ep.ActivitiesAdded
	res := commitOne(t, p, ep)
	must(t, res.Err)
	p.meta.Purge() // the next commit learns the inline tasks from the instance row
	third := &core.ActivityTask{Partition: 0, InstanceID: id, ExecutionID: exec, TaskID: 3, Name: "T", ScheduledAt: testTime}
	ep2 := nextEpisode(ep.State, res.Token, 3, &core.Event{Kind: core.EventActivityScheduled, TaskID: 3, Name: "T"})
	ep2.ActivitiesAdded = []*core.ActivityTask{third}
	ep2.PendingActivities = []*core.ActivityTask{inHist, notInHist, third}
	must(t, commitOne(t, p, ep2).Err)
	st, err := p.OpenPartition(ctx, 0)
	must(t, err)
	if len(st.Activities) != 3 {
		t.Fatalf("%d activities", len(st.Activities))
	}
	for i, want := range ep2.PendingActivities {
		if got := st.Activities[i]; got.TaskID != want.TaskID || string(got.Input) != string(want.Input) {
			t.Errorf("activity %d: task %d input %q, want task %d input %q", i, got.TaskID, got.Input, want.TaskID, want.Input)
		}
	}
	r := rowOf(t, p, id)
	if b, _ := r.chunks("InlineInputs"); string(b) != "2" {
		t.Errorf("InlineInputs = %q, want 2", b)
	}
}
