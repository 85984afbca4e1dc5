package azprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// Pending work is packed per instance, a deliberate refinement of DESIGN §4:
// T|<inst> holds the instance's complete set of pending timers and A|<inst>
// its complete set of dispatched activities, rewritten by an episode that
// changes them and deleted when the set becomes empty. So an episode that
// schedules 5,000 activities writes one row, not 5,000, and always fits one
// transaction. O|<inst>|<unit> holds one outbox unit per episode that sent
// messages.
//
// The A| row leaves out an input that the history holds (an
// ActivityScheduled event of the same task with the same data, written by
// the episode that dispatched it): OpenPartition reads it back from there.
// Rewriting the set would otherwise copy every pending input on every
// episode of a fan-out. An input the history does not hold is kept in the
// row, and the instance row lists those tasks (InlineInputs), so that later
// rewrites keep them too.

const pendingFormat = 1

type packedTimers struct {
	V      int           `json:"v"`
	Exec   string        `json:"exec"`
	Timers []packedTimer `json:"timers"`
}

type packedTimer struct {
	Exec   string    `json:"e,omitempty"` // when not the row's Exec
	Task   int64     `json:"t"`
	FireAt time.Time `json:"f"`
}

type packedActivities struct {
	V          int              `json:"v"`
	Exec       string           `json:"exec"`
	Activities []packedActivity `json:"activities"`
	// Trace is the trace of the activities of Exec (see core.TraceContext).
	Trace *core.TraceContext `json:"trace,omitempty"`
}

type packedActivity struct {
	Exec    string    `json:"e,omitempty"`
	Task    int64     `json:"t"`
	Name    string    `json:"n"`
	Version string    `json:"v,omitempty"`
	At      time.Time `json:"a"`
	Inline  bool      `json:"i,omitempty"` // Input is the input (the history does not hold it)
	Input   []byte    `json:"in,omitempty"`
	// Trace is set for an activity of another execution than the row's.
	Trace *core.TraceContext `json:"tr,omitempty"`
}

type packedOutbox struct {
	V        int            `json:"v"`
	Messages []outboxRecord `json:"messages"`
}

type outboxRecord struct {
	Msg       json.RawMessage `json:"m"`
	VisibleAt time.Time       `json:"at,omitzero"`
}

func pendingProps(id string, n int) func(e *entity) {
	return func(e *entity) {
		e.str("InstanceID", id)
		e.i64("Count", int64(n))
	}
}

func timersRow(id, exec string, timers []core.TimerRow) (*dataRow, error) {
	doc := packedTimers{V: pendingFormat, Exec: exec, Timers: make([]packedTimer, len(timers))}
	for i, t := range timers {
		doc.Timers[i] = packedTimer{Task: t.TaskID, FireAt: t.FireAt}
		if t.ExecutionID != exec {
			doc.Timers[i].Exec = t.ExecutionID
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: instance %q: encode timers: %v", core.ErrInvalidInput, id, err)
	}
	return &dataRow{rk: timersKey(id), kind: "timers", data: b, props: pendingProps(id, len(timers)), action: aztables.TransactionTypeInsertReplace}, nil
}

// activitiesRow packs the pending activities; the inputs of the tasks in
// inline are kept in the row.
func activitiesRow(id, exec string, acts []*core.ActivityTask, inline map[int64]bool) (*dataRow, error) {
	doc := packedActivities{V: pendingFormat, Exec: exec, Activities: make([]packedActivity, len(acts))}
	for i, a := range acts {
		doc.Activities[i] = packedActivity{Task: a.TaskID, Name: a.Name, Version: a.Version, At: a.ScheduledAt}
		switch {
		case a.ExecutionID != exec:
			doc.Activities[i].Exec, doc.Activities[i].Trace = a.ExecutionID, a.Trace
		case doc.Trace == nil:
			doc.Trace = a.Trace
		}
		if inline[a.TaskID] {
			doc.Activities[i].Inline, doc.Activities[i].Input = true, a.Input
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: instance %q: encode activities: %v", core.ErrInvalidInput, id, err)
	}
	return &dataRow{rk: activitiesKey(id), kind: "activities", data: b, props: pendingProps(id, len(acts)), action: aztables.TransactionTypeInsertReplace}, nil
}

func outboxRow(id, unit string, msgs []*core.Message) (*dataRow, error) {
	doc := packedOutbox{V: pendingFormat, Messages: make([]outboxRecord, len(msgs))}
	for i, m := range msgs {
		b, err := core.EncodeMessage(m)
		if err != nil {
			return nil, fmt.Errorf("%w: instance %q: encode outbox message: %v", core.ErrInvalidInput, id, err)
		}
		doc.Messages[i] = outboxRecord{Msg: b, VisibleAt: m.VisibleAt}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: instance %q: encode outbox: %v", core.ErrInvalidInput, id, err)
	}
	return &dataRow{rk: outboxKey(id, unit), kind: "outbox", data: b, action: aztables.TransactionTypeInsertReplace,
		props: func(e *entity) {
			e.str("InstanceID", id)
			e.str("Unit", unit)
			e.i64("Count", int64(len(msgs)))
		}}, nil
}

// OpenPartition reads the partition's pending work: three range queries
// (T|, A|, O|), whose cost is proportional to pending work, plus one history
// query per instance with dispatched activities, to recover their inputs.
func (p *Provider) OpenPartition(ctx context.Context, partition int) (*core.PartitionState, error) {
	if err := p.checkPartition(partition); err != nil {
		return nil, err
	}
	var trows, arows, orows []row
	ranges := []struct {
		prefix string
		out    *[]row
	}{{"T|", &trows}, {"A|", &arows}, {"O|", &orows}}
	err := parallel(len(ranges), 3, func(i int) error {
		rows, err := p.queryRange(ctx, partition, ranges[i].prefix, prefixEnd(ranges[i].prefix), "", "")
		if err != nil {
			return p.storageErr("open partition", p.tableResource(partition, ""), err)
		}
		*ranges[i].out = rows
		return nil
	})
	if err != nil {
		return nil, err
	}
	st := &core.PartitionState{}
	tdata, err := p.rowValues(ctx, trows)
	if err != nil {
		return nil, err
	}
	for i, r := range trows {
		var doc packedTimers
		if err := json.Unmarshal(tdata[i], &doc); err != nil {
			return nil, fmt.Errorf("partition %d: timers row %s: %w", partition, r.rowKey(), err)
		}
		id := r.str("InstanceID")
		for _, t := range doc.Timers {
			st.Timers = append(st.Timers, core.TimerRow{InstanceID: id, ExecutionID: orDefault(t.Exec, doc.Exec), TaskID: t.Task, FireAt: t.FireAt})
		}
	}
	adata, err := p.rowValues(ctx, arows)
	if err != nil {
		return nil, err
	}
	type instActs struct {
		id   string
		exec string
		acts []*core.ActivityTask
	}
	var byInst []*instActs
	for i, r := range arows {
		var doc packedActivities
		if err := json.Unmarshal(adata[i], &doc); err != nil {
			return nil, fmt.Errorf("partition %d: activities row %s: %w", partition, r.rowKey(), err)
		}
		ia := &instActs{id: r.str("InstanceID"), exec: doc.Exec}
		for _, a := range doc.Activities {
			t := &core.ActivityTask{Partition: partition, InstanceID: ia.id, ExecutionID: orDefault(a.Exec, doc.Exec),
				TaskID: a.Task, Name: a.Name, Version: a.Version, ScheduledAt: a.At, Input: a.Input, Trace: a.Trace}
			if a.Exec == "" {
				t.Trace = doc.Trace
			}
			if !a.Inline {
				ia.acts = append(ia.acts, t)
			}
			st.Activities = append(st.Activities, t)
		}
		if len(ia.acts) > 0 {
			byInst = append(byInst, ia)
		}
	}
	// Inputs are in the ActivityScheduled events of the instances' histories.
	err = parallel(len(byInst), maxParallel, func(i int) error {
		ia := byInst[i]
		prefix := historyPrefix(ia.id, ia.exec)
		rows, err := p.queryRange(ctx, partition, prefix, prefixEnd(prefix), "", "")
		if err != nil {
			return p.storageErr("read history", p.tableResource(partition, ia.id), err)
		}
		data, err := p.rowValues(ctx, rows)
		if err != nil {
			return err
		}
		inputs := map[int64][]byte{}
		for _, b := range data {
			evs, err := core.DecodeEvents(b)
			if err != nil {
				return fmt.Errorf("instance %q: %w", ia.id, err)
			}
			for _, ev := range evs {
				if ev.Kind == core.EventActivityScheduled {
					inputs[ev.TaskID] = ev.Data
				}
			}
		}
		for _, t := range ia.acts {
			if t.ExecutionID == ia.exec {
				t.Input = inputs[t.TaskID]
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	odata, err := p.rowValues(ctx, orows)
	if err != nil {
		return nil, err
	}
	for i, r := range orows {
		var doc packedOutbox
		if err := json.Unmarshal(odata[i], &doc); err != nil {
			return nil, fmt.Errorf("partition %d: outbox row %s: %w", partition, r.rowKey(), err)
		}
		u := &core.OutboxUnit{Ref: core.OutboxRef{Partition: partition, InstanceID: r.str("InstanceID"), ID: r.str("Unit")}}
		for _, rec := range doc.Messages {
			m, err := core.DecodeMessage(rec.Msg)
			if err != nil {
				return nil, fmt.Errorf("partition %d: outbox row %s: %w", partition, r.rowKey(), err)
			}
			m.VisibleAt = rec.VisibleAt
			u.Messages = append(u.Messages, m)
		}
		if b := r.str("Blob"); b != "" {
			p.outboxBlobs.Store(u.Ref.ID, outboxBlob{partition: partition, blob: b})
		}
		st.Outbox = append(st.Outbox, u)
	}
	return st, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
