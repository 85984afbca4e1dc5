package ops

import (
	"time"

	"github.com/azdurable/azdurable/core"
)

// Span kinds: what a span of a timeline stands for.
const (
	// KindExecution spans the execution itself, from its start to its end.
	KindExecution = "execution"
	// KindActivity spans an activity call, from its scheduling to its result.
	KindActivity = "activity"
	// KindTimer spans a durable timer, from its creation to its firing.
	KindTimer = "timer"
	// KindSubOrchestration spans a sub-orchestration, from its scheduling to
	// its result; ChildID names the child instance.
	KindSubOrchestration = "suborchestration"
	// KindEvent marks an external event: received (ChildID empty) or sent by
	// the orchestration to the instance ChildID. Start and End are equal.
	KindEvent = "event"
	// KindDetached marks an independent instance the orchestration started;
	// ChildID names it. Start and End are equal.
	KindDetached = "detached"
)

// ScheduledStartTimer names the timer span that delays the start of an
// execution until its scheduled time.
const ScheduledStartTimer = "scheduled start"

// Span statuses.
const (
	// StatusPending: the span has not ended yet; End is zero.
	StatusPending = "pending"
	// StatusCompleted: the span ended well. Output holds the result (for a
	// continued-as-new execution, the input of the next execution).
	StatusCompleted = "completed"
	// StatusFailed: the span ended with Failure.
	StatusFailed = "failed"
	// StatusCanceled: the orchestration cancelled the task, or (for the
	// execution span) the instance was terminated; Failure then has the type
	// core.FailureTypeTerminated and the reason as its message.
	StatusCanceled = "canceled"
	// StatusFired: a timer fired.
	StatusFired = "fired"
)

// Span is one thing that happened in an execution, for people: an activity,
// a timer, a sub-orchestration, an event, a detached start or the execution
// itself.
type Span struct {
	Kind   string    `json:"kind"` // one of the Kind constants
	Name   string    `json:"name,omitempty"`
	TaskID int64     `json:"taskId"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"` // zero while pending
	Status string    `json:"status"`       // one of the Status constants
	// Input, Output and Failure are the payloads recorded in history, as the
	// codec wrote them (JSON with the default codec).
	Input   []byte        `json:"input,omitempty"`
	Output  []byte        `json:"output,omitempty"`
	Failure *core.Failure `json:"failure,omitempty"`
	// ChildID is the instance a sub-orchestration, detached start or sent
	// event targets.
	ChildID string `json:"childId,omitempty"`
	// FireAt is when a timer is due (pending) or was due (fired).
	FireAt time.Time `json:"fireAt,omitzero"`
}

// Duration is End - Start, or zero while the span is pending.
func (s Span) Duration() time.Duration {
	if s.End.IsZero() {
		return 0
	}
	return s.End.Sub(s.Start)
}

// Timeline turns a history into spans for people: one per activity, timer,
// sub-orchestration and external event, with scheduled/started/ended times,
// input, output, failure and the child instance id.
//
// Start is when the orchestration scheduled the task (history does not
// record when an activity began to run on a host) and End when its result,
// firing or cancellation was recorded. Timers have no name, except the one
// that delays a start (WithStartAt), named ScheduledStartTimer.
//
// The first span of each execution is the execution itself; the others follow
// in the order they began. A history normally holds one execution (the
// current one); if it holds several, each contributes its own spans. Events
// that are not spans (episode markers, patches, suspend and resume) are
// skipped, and a completion without its scheduling event is ignored, so that
// a partial or unusual history still gives a timeline rather than an error.
func Timeline(history []*core.Event) []Span {
	var (
		spans        []Span
		exec         = -1          // index of the current execution span
		tasks        map[int64]int // task id → index of its span, in the current execution
		delayedStart time.Time     // the current execution's scheduled start
	)
	open := func(taskID int64) (*Span, bool) {
		i, ok := tasks[taskID]
		if !ok || spans[i].Status != StatusPending {
			return nil, false
		}
		return &spans[i], true
	}
	add := func(s Span) {
		if exec < 0 {
			// History without its ExecutionStarted: give the spans an
			// execution to belong to, so that task ids stay apart.
			spans = append(spans, Span{Kind: KindExecution, Start: s.Start, Status: StatusPending})
			exec, tasks = len(spans)-1, map[int64]int{}
		}
		spans = append(spans, s)
		if s.Status == StatusPending {
			tasks[s.TaskID] = len(spans) - 1
		}
	}
	for _, ev := range history {
		if ev == nil {
			continue
		}
		switch ev.Kind {
		case core.EventExecutionStarted:
			spans = append(spans, Span{Kind: KindExecution, Name: ev.Name, Start: ev.Time, Status: StatusPending, Input: ev.Data})
			exec, tasks, delayedStart = len(spans)-1, map[int64]int{}, ev.ScheduledStart
		case core.EventExecutionCompleted, core.EventExecutionTerminated, core.EventContinuedAsNew:
			if exec < 0 || spans[exec].Status != StatusPending {
				continue
			}
			s := &spans[exec]
			s.End = ev.Time
			switch {
			case ev.Kind == core.EventExecutionTerminated:
				s.Status = StatusCanceled
				s.Failure = &core.Failure{Kind: core.KindApplication, Type: core.FailureTypeTerminated, Message: ev.Reason}
			case ev.Kind == core.EventContinuedAsNew:
				s.Status, s.Output = StatusCompleted, ev.Data
			case ev.Status == core.StatusFailed:
				s.Status, s.Failure = StatusFailed, ev.Failure
			default:
				s.Status, s.Output = StatusCompleted, ev.Data
			}
		case core.EventActivityScheduled:
			add(Span{Kind: KindActivity, Name: ev.Name, TaskID: ev.TaskID, Start: ev.Time, Status: StatusPending, Input: ev.Data})
		case core.EventTimerCreated:
			s := Span{Kind: KindTimer, TaskID: ev.TaskID, Start: ev.Time, Status: StatusPending, FireAt: ev.FireAt}
			if !delayedStart.IsZero() && ev.FireAt.Equal(delayedStart) {
				s.Name = ScheduledStartTimer
			}
			add(s)
		case core.EventSubOrchestrationScheduled:
			add(Span{Kind: KindSubOrchestration, Name: ev.Name, TaskID: ev.TaskID, Start: ev.Time, Status: StatusPending,
				Input: ev.Data, ChildID: ev.InstanceID})
		case core.EventEventRaised:
			add(Span{Kind: KindEvent, Name: ev.Name, Start: ev.Time, End: ev.Time, Status: StatusCompleted, Input: ev.Data})
		case core.EventEventSent:
			add(Span{Kind: KindEvent, Name: ev.Name, TaskID: ev.TaskID, Start: ev.Time, End: ev.Time, Status: StatusCompleted,
				Input: ev.Data, ChildID: ev.InstanceID})
		case core.EventDetachedStarted:
			add(Span{Kind: KindDetached, Name: ev.Name, TaskID: ev.TaskID, Start: ev.Time, End: ev.Time, Status: StatusCompleted,
				Input: ev.Data, ChildID: ev.InstanceID})
		case core.EventActivityCompleted, core.EventSubOrchestrationCompleted:
			if s, ok := open(ev.TaskID); ok {
				s.End, s.Status, s.Output = ev.Time, StatusCompleted, ev.Data
			}
		case core.EventActivityFailed, core.EventSubOrchestrationFailed:
			if s, ok := open(ev.TaskID); ok {
				s.End, s.Status, s.Failure = ev.Time, StatusFailed, ev.Failure
			}
		case core.EventTimerFired:
			if s, ok := open(ev.TaskID); ok && s.Kind == KindTimer {
				s.End, s.Status = ev.Time, StatusFired
			}
		case core.EventTaskCanceled:
			if s, ok := open(ev.TaskID); ok {
				s.End, s.Status = ev.Time, StatusCanceled
			}
		}
	}
	return spans
}
