package memory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Deep copies: whatever goes into the store and whatever comes out of it is
// copied, so that no caller can change stored data through a shared pointer
// or slice.

func copyFailure(f *core.Failure) *core.Failure {
	if f == nil {
		return nil
	}
	c := *f
	c.Cause = copyFailure(f.Cause)
	return &c
}

func copyParent(r *core.ParentRef) *core.ParentRef {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

func copyEvent(e *core.Event) *core.Event {
	if e == nil {
		return nil
	}
	c := *e
	c.Data = bytes.Clone(e.Data)
	c.Failure = copyFailure(e.Failure)
	c.Parent = copyParent(e.Parent)
	c.Seen = slices.Clone(e.Seen)
	return &c
}

func copyEvents(events []*core.Event) []*core.Event {
	out := make([]*core.Event, len(events))
	for i, e := range events {
		out[i] = copyEvent(e)
	}
	return out
}

func copyState(s *core.InstanceState) *core.InstanceState {
	if s == nil {
		return nil
	}
	c := *s
	c.CustomStatus = bytes.Clone(s.CustomStatus)
	c.Input = bytes.Clone(s.Input)
	c.Output = bytes.Clone(s.Output)
	c.Failure = copyFailure(s.Failure)
	c.Parent = copyParent(s.Parent)
	return &c
}

// stripPayloads drops what GetInstance and QueryInstances return only on request.
func stripPayloads(s *core.InstanceState) {
	s.Input, s.Output, s.CustomStatus = nil, nil, nil
}

func copyTask(t *core.ActivityTask) *core.ActivityTask {
	if t == nil {
		return nil
	}
	c := *t
	c.Input = bytes.Clone(t.Input)
	return &c
}

// copyMessage copies a stored message; the delivery fields (receipt, count,
// visibility, origin) are not part of what is stored and are left empty, and
// times keep their wall clock only, as they would read back from a store.
func copyMessage(m *core.Message) *core.Message {
	if m == nil {
		return nil
	}
	ev := copyEvent(m.Event)
	ev.Time, ev.FireAt, ev.ScheduledStart = ev.Time.Round(0), ev.FireAt.Round(0), ev.ScheduledStart.Round(0)
	return &core.Message{ID: m.ID, InstanceID: m.InstanceID, ExecutionID: m.ExecutionID, Event: ev}
}

// checkStorable rejects an event that the stored form of a durable provider
// (core.EncodeMessage) cannot hold or read back: an unknown kind, a failure
// without kind, a time outside years 0 to 9999.
func checkStorable(e *core.Event) error {
	if _, err := e.Kind.MarshalText(); err != nil {
		return err
	}
	for f := e.Failure; f != nil; f = f.Cause {
		if f.Kind == 0 {
			return fmt.Errorf("event %s has a failure without kind", e.Kind)
		}
	}
	for _, t := range []time.Time{e.Time, e.FireAt, e.ScheduledStart} {
		if err := checkTime(t); err != nil {
			return fmt.Errorf("event %s: %w", e.Kind, err)
		}
	}
	return nil
}

// checkTime rejects a time that JSON cannot encode.
func checkTime(t time.Time) error {
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("time %s is outside years 0 to 9999", t)
	}
	return nil
}

func copyHost(h *core.HostInfo) *core.HostInfo {
	c := *h
	c.Orchestrations = slices.Clone(h.Orchestrations)
	c.Activities = slices.Clone(h.Activities)
	c.Partitions = slices.Clone(h.Partitions)
	return &c
}

func copyDeadLetter(d *core.DeadLetter) *core.DeadLetter {
	c := *d
	c.Message = copyMessage(d.Message)
	c.Activity = copyTask(d.Activity)
	c.Raw = bytes.Clone(d.Raw)
	return &c
}

// activityFormatVersion versions the stored form of work items.
const activityFormatVersion = 1

type activityDoc struct {
	V int `json:"v"`
	*core.ActivityTask
}

// decodeActivity decodes the stored form of a work item (as a poison test
// injects it), checking that the task is
// complete enough to run and to report.
func decodeActivity(b []byte) (*core.ActivityTask, error) {
	doc := activityDoc{ActivityTask: &core.ActivityTask{}}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode work item: %w", err)
	}
	if doc.V != activityFormatVersion {
		return nil, fmt.Errorf("decode work item: unsupported format version %d (this build reads %d)", doc.V, activityFormatVersion)
	}
	if doc.InstanceID == "" || doc.Name == "" {
		return nil, fmt.Errorf("decode work item: missing instance or activity name")
	}
	return doc.ActivityTask, nil
}
