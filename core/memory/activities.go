package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
)

// EnqueueActivities validates every task, then puts them on the work-item
// queue in order. Nothing is enqueued when one task is invalid (nil, an
// invalid instance id, no name, input over the payload limit).
func (p *Provider) EnqueueActivities(ctx context.Context, tasks []*core.ActivityTask) error {
	if err := p.enter(ctx, mEnqueueActivities); err != nil {
		return err
	}
	return p.enqueueActivities(tasks)
}

func (p *Provider) enqueueActivities(tasks []*core.ActivityTask) error {
	stored := make([]*core.ActivityTask, len(tasks))
	for i, t := range tasks {
		if t == nil {
			return fmt.Errorf("%w: activity %d of %d is nil", core.ErrInvalidInput, i+1, len(tasks))
		}
		if err := core.ValidateInstanceID(t.InstanceID, p.opts.MaxInstanceIDLength); err != nil {
			return fmt.Errorf("activity %q (task %d): %w", t.Name, t.TaskID, err)
		}
		if err := core.ValidateName("activity name", t.Name); err != nil {
			return fmt.Errorf("activity task %d of instance %q: %w", t.TaskID, t.InstanceID, err)
		}
		if err := p.checkPayload(t.Input, "input of activity %q (task %d) of instance %q", t.Name, t.TaskID, t.InstanceID); err != nil {
			return err
		}
		if err := checkTime(t.ScheduledAt); err != nil {
			return fmt.Errorf("%w: activity %q (task %d) of instance %q cannot be stored: scheduled time: %v", core.ErrInvalidInput, t.Name, t.TaskID, t.InstanceID, err)
		}
		stored[i] = copyTask(t)
		stored[i].ScheduledAt = t.ScheduledAt.Round(0)
	}
	now := p.now()
	p.workMu.Lock()
	defer p.workMu.Unlock()
	for _, t := range stored {
		p.work.push(&entry{seq: p.seq.Add(1), task: t, visibleAt: now})
	}
	return nil
}

// InjectRawActivity enqueues raw bytes on the work-item queue as if they were a
// stored work item, for poison tests. FetchActivity dead-letters what does not decode.
func (p *Provider) InjectRawActivity(raw []byte) {
	p.workMu.Lock()
	defer p.workMu.Unlock()
	p.work.push(&entry{seq: p.seq.Add(1), raw: append([]byte(nil), raw...), visibleAt: p.now()})
}

// FetchActivity hands out the oldest visible work item, locked until now+lock,
// or nil when there is none. Items that do not decode are dead-lettered with a
// reason that starts with "undecodable:".
func (p *Provider) FetchActivity(ctx context.Context, lock time.Duration) (*core.ActivityWorkItem, error) {
	if err := p.enter(ctx, mFetchActivity); err != nil {
		return nil, err
	}
	if lock <= 0 {
		return nil, fmt.Errorf("%w: FetchActivity: lock is %s; it must be positive", core.ErrInvalidInput, lock)
	}
	now := p.now()
	p.workMu.Lock()
	defer p.workMu.Unlock()
	for e := range p.work.live() {
		if e.visibleAt.After(now) {
			continue
		}
		t := copyTask(e.task)
		if e.raw != nil {
			var err error
			if t, err = decodeActivity(e.raw); err != nil {
				p.work.remove(e)
				p.addDeadLetter(&core.DeadLetter{Partition: workQueue, Reason: "undecodable: " + err.Error(), At: now,
					Raw: e.raw, DequeueCount: e.dequeues + 1})
				continue
			}
		}
		r := p.work.lock(e, workQueue, now.Add(lock))
		return &core.ActivityWorkItem{Task: t, DequeueCount: e.dequeues, Receipt: r}, nil
	}
	return nil, nil
}

// held returns the work-item entry an item's receipt still locks, or an error
// wrapping core.ErrLockLost when the item was handed out again or is gone. The
// caller holds p.workMu.
func (p *Provider) held(item *core.ActivityWorkItem) (*entry, error) {
	if item == nil || item.Task == nil || item.Receipt == nil {
		return nil, fmt.Errorf("%w: work item is nil or was not fetched from the work-item queue", core.ErrInvalidInput)
	}
	t := item.Task
	r, err := receiptOf(item.Receipt, workQueue, fmt.Sprintf("work item of activity %q (task %d) of instance %q", t.Name, t.TaskID, t.InstanceID))
	if err != nil {
		return nil, err
	}
	e := p.work.holder(r)
	if e == nil {
		return nil, fmt.Errorf("%w: work item of activity %q (task %d) of instance %q was handed out again or completed; drop this attempt",
			core.ErrLockLost, t.Name, t.TaskID, t.InstanceID)
	}
	return e, nil
}

// RenewActivity extends the lock of a work item to now+lock; core.ErrLockLost
// when the item was handed out again or is gone. An expired lock can still be
// renewed while no one else has fetched the item.
func (p *Provider) RenewActivity(ctx context.Context, item *core.ActivityWorkItem, lock time.Duration) error {
	if err := p.enter(ctx, mRenewActivity); err != nil {
		return err
	}
	if lock <= 0 {
		return fmt.Errorf("%w: RenewActivity: lock is %s; it must be positive", core.ErrInvalidInput, lock)
	}
	now := p.now()
	p.workMu.Lock()
	defer p.workMu.Unlock()
	e, err := p.held(item)
	if err != nil {
		return err
	}
	e.visibleAt = now.Add(lock)
	return nil
}

// CompleteActivity sends the result message to the instance's partition and
// deletes the work item, atomically: with a lost lock (core.ErrLockLost)
// neither happens.
func (p *Provider) CompleteActivity(ctx context.Context, item *core.ActivityWorkItem, result *core.Message) error {
	if err := p.enter(ctx, mCompleteActivity); err != nil {
		return err
	}
	p.workMu.Lock()
	defer p.workMu.Unlock()
	e, err := p.held(item)
	if err != nil {
		return err
	}
	if err := p.enqueueMessages([]*core.Message{result}); err != nil {
		return fmt.Errorf("complete activity %q (task %d) of instance %q: %w", item.Task.Name, item.Task.TaskID, item.Task.InstanceID, err)
	}
	p.work.remove(e)
	return nil
}

// AbandonActivity unlocks a work item: it is handed out again after delay.
// core.ErrLockLost when the item was handed out again or is gone.
func (p *Provider) AbandonActivity(ctx context.Context, item *core.ActivityWorkItem, delay time.Duration) error {
	if err := p.enter(ctx, mAbandonActivity); err != nil {
		return err
	}
	now := p.now()
	p.workMu.Lock()
	defer p.workMu.Unlock()
	e, err := p.held(item)
	if err != nil {
		return err
	}
	e.visibleAt = now.Add(max(delay, 0))
	e.gen++
	return nil
}

// DeadLetterActivity moves a work item to the dead-letter store with the
// reason. core.ErrLockLost when the item was handed out again or is gone.
func (p *Provider) DeadLetterActivity(ctx context.Context, item *core.ActivityWorkItem, reason string) error {
	if err := p.enter(ctx, mDeadLetterActivity); err != nil {
		return err
	}
	now := p.now()
	p.workMu.Lock()
	defer p.workMu.Unlock()
	e, err := p.held(item)
	if err != nil {
		return err
	}
	t := copyTask(e.task)
	if e.raw != nil {
		var err error
		if t, err = decodeActivity(e.raw); err != nil {
			// It was decoded when it was fetched; the stored bytes do not change.
			return fmt.Errorf("dead-letter work item: %w", err)
		}
	}
	p.work.remove(e)
	p.addDeadLetter(&core.DeadLetter{Partition: workQueue, Reason: reason, InstanceID: t.InstanceID, At: now,
		Activity: t, DequeueCount: e.dequeues})
	return nil
}
