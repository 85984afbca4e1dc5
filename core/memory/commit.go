package memory

import (
	"context"
	"fmt"

	"github.com/azdurable/azdurable/core"
)

// LoadInstance returns a copy of the instance's state, the history of its
// current execution and its commit token.
func (p *Provider) LoadInstance(ctx context.Context, partition int, instanceID string) (*core.InstanceSnapshot, error) {
	if err := p.enter(ctx, mLoadInstance); err != nil {
		return nil, err
	}
	part, err := p.ownPartition(partition, instanceID)
	if err != nil {
		return nil, err
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	inst := part.instances[instanceID]
	if inst == nil {
		return nil, fmt.Errorf("%w: %q (partition %d)", core.ErrInstanceNotFound, instanceID, partition)
	}
	return &core.InstanceSnapshot{State: copyState(inst.state), History: copyEvents(inst.history), Token: inst.token}, nil
}

// ownPartition returns the partition of an instance id that a caller names
// together with the partition it believes the instance is in.
func (p *Provider) ownPartition(partition int, instanceID string) (*partition, error) {
	part, err := p.partition(partition)
	if err != nil {
		return nil, err
	}
	if err := core.ValidateInstanceID(instanceID, p.opts.MaxInstanceIDLength); err != nil {
		return nil, err
	}
	if q := p.PartitionOf(instanceID); q != partition {
		return nil, fmt.Errorf("%w: instance %q belongs to partition %d, not %d", core.ErrInvalidInput, instanceID, q, partition)
	}
	return part, nil
}

// Commit writes the episodes of a batch, each on its own: an episode whose
// token is not current (or, with an empty token, whose instance exists) fails
// with core.ErrConflict; an episode that is malformed — history that does not
// continue the stored one, a removed row that does not exist, a payload over
// the limit — fails with core.ErrInvalidInput or core.ErrPayloadTooLarge.
// A failed episode writes nothing. The batch's delivered outbox units are
// deleted whatever the episodes' outcomes.
//
// The whole batch fails, with nothing written, only when the partition does
// not exist, the batch is nil, or a delivered unit names another partition.
func (p *Provider) Commit(ctx context.Context, partition int, batch *core.CommitBatch) ([]core.CommitResult, error) {
	if err := p.enter(ctx, mCommit); err != nil {
		return nil, err
	}
	part, err := p.partition(partition)
	if err != nil {
		return nil, err
	}
	if batch == nil {
		return nil, fmt.Errorf("%w: commit to partition %d: batch is nil", core.ErrInvalidInput, partition)
	}
	for _, ref := range batch.OutboxDelivered {
		if ref.Partition != partition {
			return nil, fmt.Errorf("%w: commit to partition %d: delivered outbox unit %q of instance %q is of partition %d",
				core.ErrInvalidInput, partition, ref.ID, ref.InstanceID, ref.Partition)
		}
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	results := make([]core.CommitResult, len(batch.Episodes))
	for i, ep := range batch.Episodes {
		results[i].Token, results[i].Err = p.commitEpisode(part, partition, ep)
	}
	for _, ref := range batch.OutboxDelivered {
		if inst := part.instances[ref.InstanceID]; inst != nil {
			delete(inst.outbox, ref.ID)
		}
	}
	return results, nil
}

// commitEpisode checks an episode completely, then applies it. The caller
// holds the partition's lock.
func (p *Provider) commitEpisode(part *partition, partition int, ep *core.Episode) (core.CommitToken, error) {
	if ep == nil {
		return "", fmt.Errorf("%w: commit to partition %d: episode is nil", core.ErrInvalidInput, partition)
	}
	id := ep.InstanceID
	if err := core.ValidateInstanceID(id, p.opts.MaxInstanceIDLength); err != nil {
		return "", fmt.Errorf("commit to partition %d: %w", partition, err)
	}
	if q := p.PartitionOf(id); q != partition {
		return "", fmt.Errorf("%w: commit of instance %q to partition %d: the instance belongs to partition %d",
			core.ErrInvalidInput, id, partition, q)
	}
	if ep.State == nil || ep.State.InstanceID != id {
		return "", fmt.Errorf("%w: commit of instance %q: the episode's State is missing or is of another instance", core.ErrInvalidInput, id)
	}
	inst := part.instances[id]
	switch {
	case ep.Token == "" && inst != nil:
		return "", fmt.Errorf("%w: instance %q was created by another writer (partition %d)", core.ErrConflict, id, partition)
	case ep.Token != "" && inst == nil:
		return "", fmt.Errorf("%w: instance %q no longer exists (partition %d)", core.ErrConflict, id, partition)
	case ep.Token != "" && inst.token != ep.Token:
		return "", fmt.Errorf("%w: instance %q has token %q, the episode was run from %q (partition %d)",
			core.ErrConflict, id, inst.token, ep.Token, partition)
	}
	outbox, err := p.checkEpisode(inst, ep)
	if err != nil {
		return "", err
	}

	if inst == nil {
		inst = &instance{timers: map[rowKey]core.TimerRow{}, acts: map[rowKey]*core.ActivityTask{}, outbox: map[string][]*core.Message{}}
		part.instances[id] = inst
	}
	inst.state = copyState(ep.State)
	// Compare stored times by wall clock, as times read back from a store do.
	inst.state.CreatedAt, inst.state.UpdatedAt, inst.state.CompletedAt =
		inst.state.CreatedAt.Round(0), inst.state.UpdatedAt.Round(0), inst.state.CompletedAt.Round(0)
	if ep.NewExecution {
		inst.history = nil
	}
	inst.history = append(inst.history, copyEvents(ep.History)...)
	for _, t := range ep.TimersRemoved {
		delete(inst.timers, rowKey{t.ExecutionID, t.TaskID})
	}
	for _, t := range ep.TimersAdded {
		inst.timers[rowKey{t.ExecutionID, t.TaskID}] = t
	}
	for _, a := range ep.ActivitiesRemoved {
		delete(inst.acts, rowKey{a.ExecutionID, a.TaskID})
	}
	for _, a := range ep.ActivitiesAdded {
		inst.acts[rowKey{a.ExecutionID, a.TaskID}] = copyTask(a)
	}
	if len(outbox) > 0 {
		inst.outbox[ep.OutboxID] = outbox
	}
	inst.token = core.CommitToken(fmt.Sprintf("v%d", p.tokens.Add(1)))
	return inst.token, nil
}

// checkEpisode validates the content of an episode against the stored
// instance (nil for a new one) and returns the copy of its outbox to store.
func (p *Provider) checkEpisode(inst *instance, ep *core.Episode) ([]*core.Message, error) {
	id, st := ep.InstanceID, ep.State
	for _, f := range []struct {
		what string
		b    []byte
	}{{"input", st.Input}, {"output", st.Output}, {"custom status", st.CustomStatus}} {
		if err := p.checkPayload(f.b, "%s of instance %q", f.what, id); err != nil {
			return nil, err
		}
	}

	next := 0
	if inst != nil && !ep.NewExecution {
		next = len(inst.history)
	}
	for i, ev := range ep.History {
		if ev == nil {
			return nil, fmt.Errorf("%w: commit of instance %q: history event %d of the episode is nil", core.ErrInvalidInput, id, i)
		}
		if ev.Seq != int64(next+i) {
			return nil, fmt.Errorf("%w: commit of instance %q: history event %d of the episode (%s) has seq %d, but the stored history continues at %d",
				core.ErrInvalidInput, id, i, ev.Kind, ev.Seq, next+i)
		}
		if err := p.checkPayload(ev.Data, "data of history event %d (%s) of instance %q", ev.Seq, ev.Kind, id); err != nil {
			return nil, err
		}
	}

	removedTimers := map[rowKey]bool{}
	for _, t := range ep.TimersRemoved {
		k := rowKey{t.ExecutionID, t.TaskID}
		if !inst.hasTimer(k) || removedTimers[k] || t.InstanceID != id {
			return nil, fmt.Errorf("%w: commit of instance %q removes timer row (instance %q, execution %q, task %d), which does not exist",
				core.ErrInvalidInput, id, t.InstanceID, t.ExecutionID, t.TaskID)
		}
		removedTimers[k] = true
	}
	for _, t := range ep.TimersAdded {
		if t.InstanceID != id {
			return nil, fmt.Errorf("%w: commit of instance %q adds a timer row of instance %q", core.ErrInvalidInput, id, t.InstanceID)
		}
	}
	removedActs := map[rowKey]bool{}
	for _, a := range ep.ActivitiesRemoved {
		if a == nil {
			return nil, fmt.Errorf("%w: commit of instance %q removes a nil activity row", core.ErrInvalidInput, id)
		}
		k := rowKey{a.ExecutionID, a.TaskID}
		if inst.activity(k) == nil || removedActs[k] || a.InstanceID != id {
			return nil, fmt.Errorf("%w: commit of instance %q removes activity row (instance %q, execution %q, task %d), which does not exist",
				core.ErrInvalidInput, id, a.InstanceID, a.ExecutionID, a.TaskID)
		}
		removedActs[k] = true
	}
	for _, a := range ep.ActivitiesAdded {
		if a == nil || a.InstanceID != id {
			return nil, fmt.Errorf("%w: commit of instance %q adds an activity row that is nil or of another instance", core.ErrInvalidInput, id)
		}
		if err := p.checkPayload(a.Input, "input of activity %q (task %d) of instance %q", a.Name, a.TaskID, id); err != nil {
			return nil, err
		}
	}

	if len(ep.Outbox) > 0 && ep.OutboxID == "" {
		return nil, fmt.Errorf("%w: commit of instance %q: the outbox has %d messages but no OutboxID", core.ErrInvalidInput, id, len(ep.Outbox))
	}
	outbox := make([]*core.Message, 0, len(ep.Outbox))
	for i, m := range ep.Outbox {
		c, err := p.storedMessage(m, i, len(ep.Outbox), "outbox message")
		if err != nil {
			return nil, fmt.Errorf("commit of instance %q: %w", id, err)
		}
		outbox = append(outbox, c)
	}
	return outbox, nil
}

func (inst *instance) hasTimer(k rowKey) bool {
	if inst == nil {
		return false
	}
	_, ok := inst.timers[k]
	return ok
}

func (inst *instance) activity(k rowKey) *core.ActivityTask {
	if inst == nil {
		return nil
	}
	return inst.acts[k]
}
