package ops

import (
	"reflect"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func TestTimeline(t *testing.T) {
	boom := &core.Failure{Kind: core.KindApplication, Type: "Boom", Message: "no stock"}
	tests := []struct {
		name    string
		history []*core.Event
		want    []Span
	}{
		{
			name: "empty",
		},
		{
			name: "completed sequence with a timer and an event",
			history: []*core.Event{
				{Kind: core.EventEpisodeStarted, Time: at(0)},
				{Kind: core.EventExecutionStarted, Time: at(0), Name: "Order", Data: []byte(`{"id":1}`)},
				{Kind: core.EventActivityScheduled, Time: at(0), TaskID: 0, Name: "Reserve", Data: []byte(`"a"`)},
				{Kind: core.EventEpisodeStarted, Time: at(2)},
				{Kind: core.EventActivityCompleted, Time: at(2), TaskID: 0, Data: []byte(`"r1"`)},
				{Kind: core.EventTimerCreated, Time: at(2), TaskID: 1, FireAt: at(10)},
				{Kind: core.EventEventRaised, Time: at(5), Name: "approved", Data: []byte(`true`), MessageID: "m1"},
				{Kind: core.EventTimerFired, Time: at(10), TaskID: 1, FireAt: at(10)},
				{Kind: core.EventPatched, Time: at(10), TaskID: 2, Name: "v2"},
				{Kind: core.EventExecutionCompleted, Time: at(10), Status: core.StatusCompleted, Data: []byte(`"done"`)},
			},
			want: []Span{
				{Kind: KindExecution, Name: "Order", Start: at(0), End: at(10), Status: StatusCompleted, Input: []byte(`{"id":1}`), Output: []byte(`"done"`)},
				{Kind: KindActivity, Name: "Reserve", TaskID: 0, Start: at(0), End: at(2), Status: StatusCompleted, Input: []byte(`"a"`), Output: []byte(`"r1"`)},
				{Kind: KindTimer, TaskID: 1, Start: at(2), End: at(10), Status: StatusFired, FireAt: at(10)},
				{Kind: KindEvent, Name: "approved", Start: at(5), End: at(5), Status: StatusCompleted, Input: []byte(`true`)},
			},
		},
		{
			name: "running fan-out with a failure, a cancellation and a pending activity",
			history: []*core.Event{
				{Kind: core.EventExecutionStarted, Time: at(0), Name: "FanOut"},
				{Kind: core.EventActivityScheduled, Time: at(0), TaskID: 0, Name: "Work"},
				{Kind: core.EventActivityScheduled, Time: at(0), TaskID: 1, Name: "Work"},
				{Kind: core.EventActivityScheduled, Time: at(0), TaskID: 2, Name: "Work"},
				{Kind: core.EventTimerCreated, Time: at(0), TaskID: 3, FireAt: at(60)},
				{Kind: core.EventActivityFailed, Time: at(3), TaskID: 1, Failure: boom},
				{Kind: core.EventTaskCanceled, Time: at(3), TaskID: 3},
				// A duplicate completion and one for an unknown task change nothing.
				{Kind: core.EventActivityFailed, Time: at(4), TaskID: 1, Failure: boom},
				{Kind: core.EventActivityCompleted, Time: at(4), TaskID: 99},
				{Kind: core.EventActivityCompleted, Time: at(4), TaskID: 0, Data: []byte(`1`)},
			},
			want: []Span{
				{Kind: KindExecution, Name: "FanOut", Start: at(0), Status: StatusPending},
				{Kind: KindActivity, Name: "Work", TaskID: 0, Start: at(0), End: at(4), Status: StatusCompleted, Output: []byte(`1`)},
				{Kind: KindActivity, Name: "Work", TaskID: 1, Start: at(0), End: at(3), Status: StatusFailed, Failure: boom},
				{Kind: KindActivity, Name: "Work", TaskID: 2, Start: at(0), Status: StatusPending},
				{Kind: KindTimer, TaskID: 3, Start: at(0), End: at(3), Status: StatusCanceled, FireAt: at(60)},
			},
		},
		{
			name: "sub-orchestrations, detached start and sent event",
			history: []*core.Event{
				{Kind: core.EventExecutionStarted, Time: at(0), Name: "Parent"},
				{Kind: core.EventSubOrchestrationScheduled, Time: at(0), TaskID: 0, Name: "Child", InstanceID: "p:0", Data: []byte(`2`)},
				{Kind: core.EventSubOrchestrationScheduled, Time: at(0), TaskID: 1, Name: "Child", InstanceID: "p:1"},
				{Kind: core.EventDetachedStarted, Time: at(1), TaskID: 2, Name: "Audit", InstanceID: "audit-1"},
				{Kind: core.EventEventSent, Time: at(1), TaskID: 3, Name: "ping", InstanceID: "other", Data: []byte(`"hi"`)},
				{Kind: core.EventSubOrchestrationCompleted, Time: at(7), TaskID: 0, Data: []byte(`4`)},
				{Kind: core.EventSubOrchestrationFailed, Time: at(8), TaskID: 1, Failure: boom},
				{Kind: core.EventExecutionCompleted, Time: at(8), Status: core.StatusFailed, Failure: boom},
			},
			want: []Span{
				{Kind: KindExecution, Name: "Parent", Start: at(0), End: at(8), Status: StatusFailed, Failure: boom},
				{Kind: KindSubOrchestration, Name: "Child", TaskID: 0, Start: at(0), End: at(7), Status: StatusCompleted, Input: []byte(`2`), Output: []byte(`4`), ChildID: "p:0"},
				{Kind: KindSubOrchestration, Name: "Child", TaskID: 1, Start: at(0), End: at(8), Status: StatusFailed, Failure: boom, ChildID: "p:1"},
				{Kind: KindDetached, Name: "Audit", TaskID: 2, Start: at(1), End: at(1), Status: StatusCompleted, ChildID: "audit-1"},
				{Kind: KindEvent, Name: "ping", TaskID: 3, Start: at(1), End: at(1), Status: StatusCompleted, Input: []byte(`"hi"`), ChildID: "other"},
			},
		},
		{
			name: "terminated",
			history: []*core.Event{
				{Kind: core.EventExecutionStarted, Time: at(0), Name: "Wait"},
				{Kind: core.EventTimerCreated, Time: at(0), TaskID: 0, FireAt: at(3600)},
				{Kind: core.EventExecutionSuspended, Time: at(1), Reason: "hold"},
				{Kind: core.EventExecutionResumed, Time: at(2)},
				{Kind: core.EventExecutionTerminated, Time: at(3), Reason: "operator"},
				// Nothing changes an ended execution.
				{Kind: core.EventExecutionCompleted, Time: at(4), Status: core.StatusCompleted},
			},
			want: []Span{
				{Kind: KindExecution, Name: "Wait", Start: at(0), End: at(3), Status: StatusCanceled,
					Failure: &core.Failure{Kind: core.KindApplication, Type: core.FailureTypeTerminated, Message: "operator"}},
				{Kind: KindTimer, TaskID: 0, Start: at(0), Status: StatusPending, FireAt: at(3600)},
			},
		},
		{
			name: "delayed start",
			history: []*core.Event{
				{Kind: core.EventExecutionStarted, Time: at(0), Name: "Later", ScheduledStart: at(60)},
				{Kind: core.EventTimerCreated, Time: at(0), TaskID: 0, FireAt: at(60)},
				{Kind: core.EventTimerFired, Time: at(60), TaskID: 0, FireAt: at(60)},
				{Kind: core.EventTimerCreated, Time: at(60), TaskID: 1, FireAt: at(120)},
			},
			want: []Span{
				{Kind: KindExecution, Name: "Later", Start: at(0), Status: StatusPending},
				{Kind: KindTimer, Name: ScheduledStartTimer, TaskID: 0, Start: at(0), End: at(60), Status: StatusFired, FireAt: at(60)},
				{Kind: KindTimer, TaskID: 1, Start: at(60), Status: StatusPending, FireAt: at(120)},
			},
		},
		{
			name: "continued as new",
			history: []*core.Event{
				{Kind: core.EventExecutionStarted, Time: at(0), Name: "Monitor", Data: []byte(`1`)},
				{Kind: core.EventContinuedAsNew, Time: at(5), Data: []byte(`2`)},
			},
			want: []Span{
				{Kind: KindExecution, Name: "Monitor", Start: at(0), End: at(5), Status: StatusCompleted, Input: []byte(`1`), Output: []byte(`2`)},
			},
		},
		{
			name: "two executions keep their task ids apart",
			history: []*core.Event{
				{Kind: core.EventExecutionStarted, Time: at(0), Name: "A"},
				{Kind: core.EventActivityScheduled, Time: at(0), TaskID: 0, Name: "X"},
				{Kind: core.EventContinuedAsNew, Time: at(1)},
				{Kind: core.EventExecutionStarted, Time: at(1), Name: "A"},
				{Kind: core.EventActivityScheduled, Time: at(1), TaskID: 0, Name: "Y"},
				{Kind: core.EventActivityCompleted, Time: at(2), TaskID: 0},
			},
			want: []Span{
				{Kind: KindExecution, Name: "A", Start: at(0), End: at(1), Status: StatusCompleted},
				{Kind: KindActivity, Name: "X", TaskID: 0, Start: at(0), Status: StatusPending},
				{Kind: KindExecution, Name: "A", Start: at(1), Status: StatusPending},
				{Kind: KindActivity, Name: "Y", TaskID: 0, Start: at(1), End: at(2), Status: StatusCompleted},
			},
		},
		{
			name: "history without its start",
			history: []*core.Event{
				nil,
				{Kind: core.EventActivityScheduled, Time: at(3), TaskID: 5, Name: "X"},
				{Kind: core.EventActivityCompleted, Time: at(4), TaskID: 5},
			},
			want: []Span{
				{Kind: KindExecution, Start: at(3), Status: StatusPending},
				{Kind: KindActivity, Name: "X", TaskID: 5, Start: at(3), End: at(4), Status: StatusCompleted},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Timeline(tt.history)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Timeline:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestSpanDuration(t *testing.T) {
	if d := (Span{Start: at(0), End: at(3)}).Duration(); d != 3*time.Second {
		t.Fatalf("Duration = %s, want 3s", d)
	}
	if d := (Span{Start: at(0)}).Duration(); d != 0 {
		t.Fatalf("Duration of a pending span = %s, want 0", d)
	}
}
