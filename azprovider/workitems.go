package azprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/core"
)

// Work items: an ActivityTask per message of <hub>-workitems, with its
// input (spilled to a blob with the rest of the task when large), or up to
// 32 of them in a pack (pack.go) when one call enqueues several. The lock
// is the message's visibility; renewing it returns a new pop receipt, which
// the work item keeps. A fetch hands out the items of a pack up to the
// number asked for (the runtime asks for its free activity slots) and gives
// the rest back at once; each item settles as if it had a queue message of
// its own.

const workItemFormat = 1

type workItemDoc struct {
	V    int                `json:"v"`
	Task *core.ActivityTask `json:"task"`
}

func decodeWorkItem(b []byte) (*core.ActivityTask, error) {
	var doc workItemDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode work item: %w", err)
	}
	if doc.V != workItemFormat {
		return nil, fmt.Errorf("decode work item: unsupported format version %d (this build reads %d)", doc.V, workItemFormat)
	}
	if doc.Task == nil || doc.Task.InstanceID == "" || doc.Task.Name == "" {
		return nil, errors.New("decode work item: missing task, instance or name")
	}
	return doc.Task, nil
}

// EnqueueActivities puts activities on the shared work-item queue. They
// are all checked before any is enqueued.
func (p *Provider) EnqueueActivities(ctx context.Context, tasks []*core.ActivityTask) error {
	bodies := make([][]byte, len(tasks))
	for i, t := range tasks {
		if t == nil {
			continue
		}
		if err := core.ValidateInstanceID(t.InstanceID, 0); err != nil {
			return err
		}
		if err := p.checkPayload(fmt.Sprintf("input of activity %q (instance %q, task %d)", t.Name, t.InstanceID, t.TaskID), t.Input); err != nil {
			return err
		}
		b, err := json.Marshal(workItemDoc{V: workItemFormat, Task: t})
		if err != nil {
			return fmt.Errorf("%w: activity %q of instance %q: %v", core.ErrInvalidInput, t.Name, t.InstanceID, err)
		}
		bodies[i] = b
	}
	var kept [][]byte
	for _, b := range bodies {
		if b != nil {
			kept = append(kept, xmlSafe(b))
		}
	}
	if p.opts.NoMessagePacking {
		return parallel(len(kept), maxParallel, func(i int) error { return p.putWorkItems(ctx, kept[i:i+1]) })
	}
	ranges := packRanges(kept)
	return parallel(len(ranges), maxParallel, func(i int) error { return p.putWorkItems(ctx, kept[ranges[i][0]:ranges[i][1]]) })
}

// putWorkItems puts encoded work items in one queue message: one alone as
// plain text (spilled to a blob when large), several as a pack.
func (p *Provider) putWorkItems(ctx context.Context, bodies [][]byte) error {
	if len(bodies) > 1 {
		return p.enqueue(ctx, p.work, p.workQueueName(), packText(bodies, nil), 0)
	}
	text, blob, err := p.queueText(ctx, bodies[0], "w", time.Time{})
	if err != nil {
		return err
	}
	if err := p.enqueue(ctx, p.work, p.workQueueName(), text, 0); err != nil {
		if blob != "" {
			p.deleteBlobs(ctx, []string{blob})
		}
		return err
	}
	return nil
}

// FetchActivity takes one work item off the queue, locked for lock, or
// returns nil when there is none (FetchActivities with max 1).
func (p *Provider) FetchActivity(ctx context.Context, lock time.Duration) (*core.ActivityWorkItem, error) {
	items, err := p.FetchActivities(ctx, 1, lock)
	if len(items) == 0 {
		return nil, err
	}
	return items[0], err
}

// FetchActivities takes one queue message off the work-item queue, locked
// for lock, and returns its work items, at most max (core.ActivityBatchFetcher).
// The items of a pack beyond max go back to the queue at once, and this
// fetch does not count as one of their deliveries. Undecodable items are
// dead-lettered.
func (p *Provider) FetchActivities(ctx context.Context, max int, lock time.Duration) ([]*core.ActivityWorkItem, error) {
	if max <= 0 {
		return nil, nil
	}
	for range 8 {
		lockUntil := time.Now().Add(lock)
		fs, err := p.dequeue(ctx, p.work, p.workQueueName(), -1, 1, lock)
		if err != nil || len(fs) == 0 {
			return nil, err
		}
		f := fs[0]
		if f.err == nil && f.parts != nil {
			var items []*core.ActivityWorkItem
			var ps *packState
			p.openPack(ctx, f, lockUntil, dlActivity, func(rc *receipt, count int, body []byte) error {
				t, err := decodeWorkItem(body)
				if err == nil {
					ps = rc.pack
					items = append(items, &core.ActivityWorkItem{Task: t, DequeueCount: count, Receipt: rc})
				}
				return err
			})
			if len(items) > max {
				extra := make([]int, 0, len(items)-max)
				for _, it := range items[max:] {
					extra = append(extra, it.Receipt.(*receipt).part)
				}
				if err := p.releaseParts(ctx, ps, extra); err != nil {
					// They come back when the pack's lock ends.
					return items[:max], err
				}
				items = items[:max]
			}
			if len(items) == 0 {
				continue
			}
			return items, nil
		}
		if f.err == nil {
			t, err := decodeWorkItem(f.body)
			if err == nil {
				return []*core.ActivityWorkItem{{Task: t, DequeueCount: f.count, Receipt: f.rc}}, nil
			}
			f.err = err
		}
		if err := p.deadLetterFetched(ctx, []*fetched{f}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func itemReceipt(item *core.ActivityWorkItem) (*receipt, error) {
	if item == nil || item.Task == nil {
		return nil, fmt.Errorf("%w: nil work item, or one without its task", core.ErrInvalidInput)
	}
	rc, ok := item.Receipt.(*receipt)
	if !ok || rc == nil {
		return nil, fmt.Errorf("%w: work item without a receipt of this provider", core.ErrInvalidInput)
	}
	return rc, nil
}

// setVisibility hides a fetched message or work item for d (whole seconds,
// at least minimum) and keeps the new pop receipt. lost reports a stale
// receipt: the item was deleted, or fetched again after its lock expired.
func (p *Provider) setVisibility(ctx context.Context, rc *receipt, d time.Duration, minimum int32, op string) (lost bool, err error) {
	rc = rc.queueMessage()
	resp, err := rc.queue.UpdateMessage(ctx, rc.id, rc.popReceipt(), rc.text, &azqueue.UpdateMessageOptions{VisibilityTimeout: ptr(visibility(d, minimum))})
	switch {
	case err == nil:
		rc.setPop(deref(resp.PopReceipt))
		return false, nil
	case lostLock(err):
		return true, nil
	default:
		return false, p.storageErr(op, "queue "+rc.queueName, err)
	}
}

// lockLost is the error of an operation on a work item whose lock is lost.
func lockLost(rc *receipt, item *core.ActivityWorkItem) error {
	return fmt.Errorf("%w: work item %q (activity %q of instance %q) was fetched again or is gone; drop this attempt",
		core.ErrLockLost, rc.id, item.Task.Name, item.Task.InstanceID)
}

// RenewActivity extends the lock; core.ErrLockLost when the item is gone or
// was fetched again after its lock expired.
func (p *Provider) RenewActivity(ctx context.Context, item *core.ActivityWorkItem, lock time.Duration) error {
	rc, err := itemReceipt(item)
	if err != nil {
		return err
	}
	var lost bool
	if rc.pack != nil {
		lost, err = p.renewPack(ctx, rc.pack, rc.part, lock)
	} else {
		lost, err = p.setVisibility(ctx, rc, lock, 1, "renew work item")
	}
	if lost {
		return lockLost(rc, item)
	}
	return err
}

// CompleteActivity durably sends the result to the instance's partition,
// then deletes the work item. core.ErrLockLost when the item was gone or
// fetched again: the result was sent all the same, and the instance drops
// the duplicate of the item's next run.
func (p *Provider) CompleteActivity(ctx context.Context, item *core.ActivityWorkItem, result *core.Message) error {
	rc, err := itemReceipt(item)
	if err != nil {
		return err
	}
	if result != nil {
		if err := p.SendMessages(ctx, []*core.Message{result}); err != nil {
			return err
		}
	}
	if rc.pack != nil {
		applied, err := p.settlePack(ctx, rc.pack, []int{rc.part}, false, 0)
		if err == nil && !applied {
			return lockLost(rc, item)
		}
		return err
	}
	_, err = rc.queue.DeleteMessage(ctx, rc.id, rc.popReceipt(), nil)
	switch {
	case err == nil:
		if rc.blob != "" {
			p.deleteBlobs(ctx, []string{rc.blob})
		}
		return nil
	case lostLock(err):
		return lockLost(rc, item)
	default:
		return p.storageErr("delete work item", "queue "+rc.queueName, err)
	}
}

// DeleteActivity deletes a work item without sending a result
// (core.ActivityDeleter): the runtime delivered the result in memory and a
// commit consumed it. A work item already gone, or fetched again after its
// lock expired, is not an error: it runs again, and its result is dropped
// as a duplicate.
func (p *Provider) DeleteActivity(ctx context.Context, item *core.ActivityWorkItem) error {
	return p.DeleteActivities(ctx, []*core.ActivityWorkItem{item})
}

// DeleteActivities deletes work items as DeleteActivity does; the items of
// one pack are settled together (one request for the pack).
func (p *Provider) DeleteActivities(ctx context.Context, items []*core.ActivityWorkItem) error {
	rcs := make([]*receipt, 0, len(items))
	for _, it := range items {
		rc, err := itemReceipt(it)
		if err != nil {
			return err
		}
		rcs = append(rcs, rc)
	}
	return p.settleReceipts(ctx, rcs, false, 0, func(rc *receipt) error {
		return p.deleteMessage(ctx, rc, true)
	})
}

// AbandonActivity makes the work item visible again after delay;
// core.ErrLockLost when the item is gone or was fetched again after its
// lock expired (then nothing changes).
func (p *Provider) AbandonActivity(ctx context.Context, item *core.ActivityWorkItem, delay time.Duration) error {
	rc, err := itemReceipt(item)
	if err != nil {
		return err
	}
	if rc.pack != nil {
		applied, err := p.settlePack(ctx, rc.pack, []int{rc.part}, true, delay)
		if err == nil && !applied {
			return lockLost(rc, item)
		}
		return err
	}
	lost, err := p.setVisibility(ctx, rc, delay, 0, "abandon work item")
	if lost {
		return lockLost(rc, item)
	}
	return err
}

// DeadLetterActivity moves the work item to the dead-letter store;
// core.ErrLockLost, with nothing written, when the item is gone or was
// fetched again after its lock expired.
func (p *Provider) DeadLetterActivity(ctx context.Context, item *core.ActivityWorkItem, reason string) error {
	rc, err := itemReceipt(item)
	if err != nil {
		return err
	}
	dl := &deadLetterRecord{kind: dlActivity, partition: -1, reason: reason, instanceID: item.Task.InstanceID,
		dequeueCount: item.DequeueCount, text: rc.text, blob: rc.blob}
	if rc.pack != nil {
		applied, err := p.deadLetterParts(ctx, rc.pack, []int{rc.part}, func(int) *deadLetterRecord { return dl })
		if err == nil && !applied {
			return lockLost(rc, item)
		}
		return err
	}
	if err := p.deadLetterHeld(ctx, rc, dl, "work item "+strconv.Quote(rc.id)); err != nil {
		if errors.Is(err, core.ErrLockLost) {
			return lockLost(rc, item)
		}
		return err
	}
	return nil
}
