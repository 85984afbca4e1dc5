package tester

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/core"
)

// tracker is the provider the runtime under test sees: the in-memory provider
// with an account of the work in flight that core.Runtime.Idle does not
// count. That is every call that moves work (a send, a fetch, a commit, ...)
// while it runs, and every fetched message and work item until the runtime
// deletes, abandons, completes or dead-letters it. Reads pass through
// uncounted: they move nothing.
type tracker struct {
	core.Provider

	calls   atomic.Int64  // calls running now
	changes atomic.Uint64 // call starts and ends, ever

	mu   sync.Mutex
	held map[any]struct{} // receipts of fetched items not settled yet
}

var _ core.Provider = (*tracker)(nil)

func newTracker(p core.Provider) *tracker {
	return &tracker{Provider: p, held: map[any]struct{}{}}
}

func (t *tracker) enter() { t.calls.Add(1); t.changes.Add(1) }

// exit ends a call after its effects are visible (held receipts recorded).
func (t *tracker) exit() { t.changes.Add(1); t.calls.Add(-1) }

// busy reports calls running or fetched items held.
func (t *tracker) busy() bool {
	if t.calls.Load() != 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.held) > 0
}

func (t *tracker) hold(receipt any) {
	if receipt == nil {
		return
	}
	t.mu.Lock()
	t.held[receipt] = struct{}{}
	t.mu.Unlock()
}

// release forgets receipts whatever the call's outcome: an item the call
// failed to settle comes back when its lock expires, a visibility time the
// tester can advance to.
func (t *tracker) release(receipts ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range receipts {
		if r != nil {
			delete(t.held, r)
		}
	}
}

func (t *tracker) releaseMessages(msgs []*core.Message) {
	for _, m := range msgs {
		if m != nil {
			t.release(m.Receipt)
		}
	}
}

func (t *tracker) releaseItem(item *core.ActivityWorkItem) {
	if item != nil {
		t.release(item.Receipt)
	}
}

func (t *tracker) SendMessages(ctx context.Context, msgs []*core.Message) error {
	t.enter()
	defer t.exit()
	return t.Provider.SendMessages(ctx, msgs)
}

func (t *tracker) OpenPartition(ctx context.Context, partition int) (*core.PartitionState, error) {
	t.enter()
	defer t.exit()
	return t.Provider.OpenPartition(ctx, partition)
}

func (t *tracker) FetchMessages(ctx context.Context, partition, max int, lock time.Duration) ([]*core.Message, error) {
	t.enter()
	defer t.exit()
	msgs, err := t.Provider.FetchMessages(ctx, partition, max, lock)
	for _, m := range msgs {
		t.hold(m.Receipt)
	}
	return msgs, err
}

func (t *tracker) AbandonMessages(ctx context.Context, partition int, msgs []*core.Message, delay time.Duration) error {
	t.enter()
	defer t.exit()
	defer t.releaseMessages(msgs)
	return t.Provider.AbandonMessages(ctx, partition, msgs, delay)
}

func (t *tracker) DeleteMessages(ctx context.Context, partition int, msgs []*core.Message) error {
	t.enter()
	defer t.exit()
	defer t.releaseMessages(msgs)
	return t.Provider.DeleteMessages(ctx, partition, msgs)
}

func (t *tracker) DeadLetterMessages(ctx context.Context, partition int, msgs []*core.Message, reason string) error {
	t.enter()
	defer t.exit()
	defer t.releaseMessages(msgs)
	return t.Provider.DeadLetterMessages(ctx, partition, msgs, reason)
}

func (t *tracker) LoadInstance(ctx context.Context, partition int, instanceID string) (*core.InstanceSnapshot, error) {
	t.enter()
	defer t.exit()
	return t.Provider.LoadInstance(ctx, partition, instanceID)
}

func (t *tracker) Commit(ctx context.Context, partition int, batch *core.CommitBatch) ([]core.CommitResult, error) {
	t.enter()
	defer t.exit()
	return t.Provider.Commit(ctx, partition, batch)
}

func (t *tracker) EnqueueActivities(ctx context.Context, tasks []*core.ActivityTask) error {
	t.enter()
	defer t.exit()
	return t.Provider.EnqueueActivities(ctx, tasks)
}

func (t *tracker) FetchActivity(ctx context.Context, lock time.Duration) (*core.ActivityWorkItem, error) {
	t.enter()
	defer t.exit()
	item, err := t.Provider.FetchActivity(ctx, lock)
	if item != nil {
		t.hold(item.Receipt)
	}
	return item, err
}

func (t *tracker) CompleteActivity(ctx context.Context, item *core.ActivityWorkItem, result *core.Message) error {
	t.enter()
	defer t.exit()
	defer t.releaseItem(item)
	return t.Provider.CompleteActivity(ctx, item, result)
}

func (t *tracker) AbandonActivity(ctx context.Context, item *core.ActivityWorkItem, delay time.Duration) error {
	t.enter()
	defer t.exit()
	defer t.releaseItem(item)
	return t.Provider.AbandonActivity(ctx, item, delay)
}

func (t *tracker) DeadLetterActivity(ctx context.Context, item *core.ActivityWorkItem, reason string) error {
	t.enter()
	defer t.exit()
	defer t.releaseItem(item)
	return t.Provider.DeadLetterActivity(ctx, item, reason)
}

func (t *tracker) PurgeInstance(ctx context.Context, instanceID string) error {
	t.enter()
	defer t.exit()
	return t.Provider.PurgeInstance(ctx, instanceID)
}

func (t *tracker) PurgeInstances(ctx context.Context, filter core.InstanceQuery) (int, error) {
	t.enter()
	defer t.exit()
	return t.Provider.PurgeInstances(ctx, filter)
}

func (t *tracker) ReplayDeadLetter(ctx context.Context, id string) error {
	t.enter()
	defer t.exit()
	return t.Provider.ReplayDeadLetter(ctx, id)
}
