package tester

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/azdurable/azdurable/core"
)

// maxDepth bounds how deep diagnose follows sub-orchestrations.
const maxDepth = 8

// diagnose says what the instance and the sub-orchestrations below it wait
// for, as far as their histories tell (event waits are not recorded, so an
// instance with nothing else pending is taken to wait for an event). It
// returns an error matching ErrBlocked and core.ErrNotRegistered when one
// waits for an activity or orchestration registered nowhere.
func (x *Tester) diagnose(ctx context.Context, id string) ([]string, error) {
	var what []string
	err := x.waitsOf(ctx, id, 0, &what)
	return what, err
}

func (x *Tester) waitsOf(ctx context.Context, id string, depth int, what *[]string) error {
	st, err := x.mem.GetInstance(ctx, id, false)
	switch {
	case errors.Is(err, core.ErrInstanceNotFound):
		*what = append(*what, fmt.Sprintf("instance %q does not exist", id))
		return nil
	case err != nil:
		return fmt.Errorf("tester: read instance %q: %w", id, err)
	case st.Status.IsTerminal():
		return nil
	}
	who := fmt.Sprintf("instance %q (%s)", id, st.Name)
	if st.Status == core.StatusSuspended {
		*what = append(*what, who+" is suspended")
	}
	history, err := x.mem.GetHistory(ctx, id)
	if err != nil {
		return fmt.Errorf("tester: read history of instance %q: %w", id, err)
	}
	open := map[int64]*core.Event{}
	for _, ev := range history {
		switch ev.Kind {
		case core.EventActivityScheduled, core.EventTimerCreated, core.EventSubOrchestrationScheduled:
			open[ev.TaskID] = ev
		case core.EventActivityCompleted, core.EventActivityFailed, core.EventTimerFired,
			core.EventSubOrchestrationCompleted, core.EventSubOrchestrationFailed, core.EventTaskCanceled:
			delete(open, ev.TaskID)
		}
	}
	tasks := make([]int64, 0, len(open))
	for task := range open {
		tasks = append(tasks, task)
	}
	slices.Sort(tasks)
	for _, task := range tasks {
		ev := open[task]
		switch ev.Kind {
		case core.EventActivityScheduled:
			if !x.reg.HasActivity(ev.Name, ev.Version) {
				return fmt.Errorf("tester: %w: %s calls activity %q (task %d), which is neither registered nor mocked: %w",
					ErrBlocked, who, ev.Name, task, &core.NotRegisteredError{Kind: "activity", Name: ev.Name, Version: ev.Version})
			}
			*what = append(*what, fmt.Sprintf("%s waits for activity %q (task %d)", who, ev.Name, task))
		case core.EventTimerCreated:
			*what = append(*what, fmt.Sprintf("%s waits for a timer (task %d) due at %s", who, task, ev.FireAt.Format(time.RFC3339Nano)))
		case core.EventSubOrchestrationScheduled:
			if !x.hasOrchestration(ev.Name, ev.Version) {
				return fmt.Errorf("tester: %w: %s calls sub-orchestration %q (task %d), which is not registered: %w",
					ErrBlocked, who, ev.Name, task, &core.NotRegisteredError{Kind: "orchestration", Name: ev.Name, Version: ev.Version})
			}
			*what = append(*what, fmt.Sprintf("%s waits for sub-orchestration %q (instance %q)", who, ev.Name, ev.InstanceID))
			if depth < maxDepth {
				if err := x.waitsOf(ctx, ev.InstanceID, depth+1, what); err != nil {
					return err
				}
			}
		}
	}
	if len(tasks) == 0 && st.Status == core.StatusRunning {
		*what = append(*what, who+" waits for an external event (it has no activity, timer or sub-orchestration pending)")
	}
	return nil
}

// hasOrchestration reports whether the registry has the orchestration; an
// empty version means any.
func (x *Tester) hasOrchestration(name, version string) bool {
	return slices.ContainsFunc(x.reg.Orchestrations(), func(nv core.NameVersion) bool {
		return nv.Name == name && (version == "" || nv.Version == version)
	})
}
