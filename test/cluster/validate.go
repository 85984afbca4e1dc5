package cluster

import (
	"fmt"

	"github.com/azdurable/azdurable/core"
)

// ValidateHistory checks the invariants every stored history keeps, whatever
// failed while it was written: positions are 0..n-1 without gaps or
// repeats; each task is scheduled once and completes at most once, and only
// after it was scheduled; each external event (by message id) is recorded
// once; an execution starts once, and nothing follows its end.
func ValidateHistory(history []*core.Event) error {
	scheduled := map[int64]core.EventKind{}
	completed := map[int64]bool{}
	messages := map[string]bool{}
	started, ended := false, false
	for i, ev := range history {
		if ev.Seq != int64(i) {
			return fmt.Errorf("event %d (%s) has position %d", i, ev.Kind, ev.Seq)
		}
		if ended && ev.Kind != core.EventEpisodeStarted {
			return fmt.Errorf("event %d (%s) follows the end of the execution", i, ev.Kind)
		}
		switch ev.Kind {
		case core.EventExecutionStarted:
			if started {
				return fmt.Errorf("event %d: execution started twice", i)
			}
			started = true
		case core.EventExecutionCompleted, core.EventExecutionTerminated, core.EventContinuedAsNew:
			ended = true
		case core.EventActivityScheduled, core.EventTimerCreated, core.EventSubOrchestrationScheduled:
			if k, dup := scheduled[ev.TaskID]; dup {
				return fmt.Errorf("event %d: task %d scheduled twice (%s, then %s)", i, ev.TaskID, k, ev.Kind)
			}
			scheduled[ev.TaskID] = ev.Kind
		case core.EventActivityCompleted, core.EventActivityFailed, core.EventTimerFired,
			core.EventSubOrchestrationCompleted, core.EventSubOrchestrationFailed:
			if _, ok := scheduled[ev.TaskID]; !ok {
				return fmt.Errorf("event %d: %s for task %d, which was never scheduled", i, ev.Kind, ev.TaskID)
			}
			if completed[ev.TaskID] {
				return fmt.Errorf("event %d: task %d completed twice (%s)", i, ev.TaskID, ev.Kind)
			}
			completed[ev.TaskID] = true
		case core.EventEventRaised:
			if ev.MessageID != "" {
				if messages[ev.MessageID] {
					return fmt.Errorf("event %d: external event %q (message %s) recorded twice", i, ev.Name, ev.MessageID)
				}
				messages[ev.MessageID] = true
			}
		}
	}
	if len(history) > 0 && !started {
		return fmt.Errorf("history has no ExecutionStarted event")
	}
	return nil
}
