package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/azdurable/azdurable/core"
)

// OpenPartition returns copies of the partition's pending work: its timer
// rows (by fire time), activity rows and outbox units (by instance), in a
// deterministic order.
func (p *Provider) OpenPartition(ctx context.Context, partition int) (*core.PartitionState, error) {
	if err := p.enter(ctx, mOpenPartition); err != nil {
		return nil, err
	}
	part, err := p.partition(partition)
	if err != nil {
		return nil, err
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	st := &core.PartitionState{Timers: []core.TimerRow{}, Activities: []*core.ActivityTask{}, Outbox: []*core.OutboxUnit{}}
	for id, inst := range part.instances {
		for _, t := range inst.timers {
			st.Timers = append(st.Timers, t)
		}
		for _, a := range inst.acts {
			st.Activities = append(st.Activities, copyTask(a))
		}
		for unit, msgs := range inst.outbox {
			u := &core.OutboxUnit{Ref: core.OutboxRef{Partition: partition, InstanceID: id, ID: unit}, Messages: make([]*core.Message, len(msgs))}
			for i, m := range msgs {
				u.Messages[i] = copyMessage(m)
			}
			st.Outbox = append(st.Outbox, u)
		}
	}
	slices.SortFunc(st.Timers, func(a, b core.TimerRow) int {
		return cmp.Or(a.FireAt.Compare(b.FireAt), strings.Compare(a.InstanceID, b.InstanceID),
			strings.Compare(a.ExecutionID, b.ExecutionID), cmp.Compare(a.TaskID, b.TaskID))
	})
	slices.SortFunc(st.Activities, func(a, b *core.ActivityTask) int {
		return cmp.Or(strings.Compare(a.InstanceID, b.InstanceID), strings.Compare(a.ExecutionID, b.ExecutionID), cmp.Compare(a.TaskID, b.TaskID))
	})
	slices.SortFunc(st.Outbox, func(a, b *core.OutboxUnit) int {
		return cmp.Or(strings.Compare(a.Ref.InstanceID, b.Ref.InstanceID), strings.Compare(a.Ref.ID, b.Ref.ID))
	})
	return st, nil
}

// ClosePartition only counts the call: the memory provider caches nothing per partition.
func (p *Provider) ClosePartition(int) { p.calls[mClosePartition].Add(1) }
