package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
)

// SendMessages validates every message, then enqueues each on the control
// queue of its instance's partition, in order. Nothing is enqueued when one
// message is invalid: an empty or missing id or event, an invalid instance id,
// or event data over the payload limit.
func (p *Provider) SendMessages(ctx context.Context, msgs []*core.Message) error {
	if err := p.enter(ctx, mSendMessages); err != nil {
		return err
	}
	return p.enqueueMessages(msgs)
}

// enqueueMessages is SendMessages without the call bookkeeping, for the
// other methods that send (CompleteActivity, ReplayDeadLetter).
func (p *Provider) enqueueMessages(msgs []*core.Message) error {
	stored := make([]*core.Message, len(msgs))
	for i, m := range msgs {
		c, err := p.storedMessage(m, i, len(msgs), "message")
		if err != nil {
			return err
		}
		stored[i] = c
	}
	now := p.now()
	for i, c := range stored {
		part := p.parts[p.PartitionOf(c.InstanceID)]
		visibleAt := now
		if v := msgs[i].VisibleAt; v.After(now) {
			visibleAt = v.Round(0)
		}
		part.mu.Lock()
		part.queue.push(&entry{seq: p.seq.Add(1), msg: c, visibleAt: visibleAt})
		part.mu.Unlock()
	}
	return nil
}

// storedMessage validates message i of n and returns the copy to store. It
// rejects what the stored form of a durable provider could not hold, so that
// a message the memory provider accepts is one every provider accepts.
func (p *Provider) storedMessage(m *core.Message, i, n int, what string) (*core.Message, error) {
	switch {
	case m == nil:
		return nil, fmt.Errorf("%w: %s %d of %d is nil", core.ErrInvalidInput, what, i+1, n)
	case m.ID == "":
		return nil, fmt.Errorf("%w: %s %d of %d (to instance %q) has no id", core.ErrInvalidInput, what, i+1, n, m.InstanceID)
	case m.Event == nil:
		return nil, fmt.Errorf("%w: message %q (to instance %q) has no event", core.ErrInvalidInput, m.ID, m.InstanceID)
	}
	if err := core.ValidateInstanceID(m.InstanceID, p.opts.MaxInstanceIDLength); err != nil {
		return nil, fmt.Errorf("message %q: %w", m.ID, err)
	}
	if err := p.checkPayload(m.Event.Data, "data of %s message %q to instance %q", m.Event.Kind, m.ID, m.InstanceID); err != nil {
		return nil, err
	}
	if err := checkStorable(m.Event); err != nil {
		return nil, fmt.Errorf("%w: message %q to instance %q cannot be stored: %v", core.ErrInvalidInput, m.ID, m.InstanceID, err)
	}
	return copyMessage(m), nil
}

// InjectRawControlMessage enqueues raw bytes on a partition's control queue as
// if they were a stored message, for poison-message tests. FetchMessages
// dead-letters what does not decode. It panics on a partition that does not exist.
func (p *Provider) InjectRawControlMessage(partition int, raw []byte) {
	part, err := p.partition(partition)
	if err != nil {
		panic(err)
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	part.queue.push(&entry{seq: p.seq.Add(1), raw: append([]byte(nil), raw...), visibleAt: p.now()})
}

// FetchMessages hands out up to max visible messages of the partition's
// control queue, oldest first, each locked until now+lock with a fresh
// receipt and its delivery count. Messages that do not decode are
// dead-lettered with a reason that starts with "undecodable:".
func (p *Provider) FetchMessages(ctx context.Context, partition, max int, lock time.Duration) ([]*core.Message, error) {
	if err := p.enter(ctx, mFetchMessages); err != nil {
		return nil, err
	}
	part, err := p.partition(partition)
	if err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, fmt.Errorf("%w: FetchMessages of partition %d: max is %d; it must be positive", core.ErrInvalidInput, partition, max)
	}
	if lock <= 0 {
		return nil, fmt.Errorf("%w: FetchMessages of partition %d: lock is %s; it must be positive", core.ErrInvalidInput, partition, lock)
	}
	now := p.now()
	part.mu.Lock()
	defer part.mu.Unlock()
	out := []*core.Message{}
	for e := range part.queue.live() {
		if len(out) == max {
			break
		}
		if e.visibleAt.After(now) {
			continue
		}
		m := copyMessage(e.msg)
		if e.raw != nil {
			var err error
			if m, err = core.DecodeMessage(e.raw); err != nil {
				part.queue.remove(e)
				p.addDeadLetter(&core.DeadLetter{Partition: partition, Reason: "undecodable: " + err.Error(), At: now,
					Raw: e.raw, DequeueCount: e.dequeues + 1})
				continue
			}
		}
		r := part.queue.lock(e, partition, now.Add(lock))
		m.DequeueCount, m.Receipt = e.dequeues, r
		out = append(out, m)
	}
	return out, nil
}

// fetched resolves the receipts of fetched messages to the entries they still
// lock. Messages without a receipt are skipped, and so are stale receipts: the
// message was delivered again (or deleted) since. A receipt this provider did
// not issue for this partition is an error, and then nothing is resolved.
func fetched(part *partition, partition int, msgs []*core.Message) ([]*entry, error) {
	receipts := make([]receipt, 0, len(msgs))
	for _, m := range msgs {
		if m == nil || m.Receipt == nil {
			continue
		}
		r, err := receiptOf(m.Receipt, partition, fmt.Sprintf("message %q", m.ID))
		if err != nil {
			return nil, err
		}
		receipts = append(receipts, r)
	}
	var out []*entry
	for _, r := range receipts {
		if e := part.queue.holder(r); e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// AbandonMessages unlocks fetched messages: they become visible again after
// delay. A receipt whose message was delivered again or deleted meanwhile is
// ignored, and the receipts passed in are stale afterwards.
func (p *Provider) AbandonMessages(ctx context.Context, partition int, msgs []*core.Message, delay time.Duration) error {
	if err := p.enter(ctx, mAbandonMessages); err != nil {
		return err
	}
	part, err := p.partition(partition)
	if err != nil {
		return err
	}
	at := p.now().Add(max(delay, 0))
	part.mu.Lock()
	defer part.mu.Unlock()
	entries, err := fetched(part, partition, msgs)
	if err != nil {
		return err
	}
	for _, e := range entries {
		e.visibleAt = at
		e.gen++
	}
	return nil
}

// DeleteMessages removes fetched messages whose receipts are still current.
// A message already gone, or delivered again since, is left alone without error.
func (p *Provider) DeleteMessages(ctx context.Context, partition int, msgs []*core.Message) error {
	if err := p.enter(ctx, mDeleteMessages); err != nil {
		return err
	}
	part, err := p.partition(partition)
	if err != nil {
		return err
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	entries, err := fetched(part, partition, msgs)
	if err != nil {
		return err
	}
	for _, e := range entries {
		part.queue.remove(e)
	}
	return nil
}

// DeadLetterMessages moves fetched messages whose receipts are still current
// to the dead-letter store, with the reason, and removes them from the queue.
// A stale receipt (the message was deleted, or delivered again since) is
// skipped without error. A message without a receipt, or with one of another
// partition, is core.ErrInvalidInput, and then nothing is moved.
func (p *Provider) DeadLetterMessages(ctx context.Context, partition int, msgs []*core.Message, reason string) error {
	if err := p.enter(ctx, mDeadLetterMessages); err != nil {
		return err
	}
	part, err := p.partition(partition)
	if err != nil {
		return err
	}
	for i, m := range msgs {
		if m != nil && m.Receipt == nil {
			return fmt.Errorf("%w: dead-letter message %q (%d of %d) of instance %q: it has no receipt; only fetched messages can be dead-lettered",
				core.ErrInvalidInput, m.ID, i+1, len(msgs), m.InstanceID)
		}
	}
	now := p.now()
	part.mu.Lock()
	defer part.mu.Unlock()
	entries, err := fetched(part, partition, msgs)
	if err != nil {
		return err
	}
	for _, e := range entries {
		part.queue.remove(e)
		d := &core.DeadLetter{Partition: partition, Reason: reason, At: now, DequeueCount: e.dequeues}
		m := copyMessage(e.msg)
		if e.raw != nil {
			if dm, err := core.DecodeMessage(e.raw); err == nil {
				m = dm
			} else {
				d.Raw = e.raw
			}
		}
		if m != nil {
			d.Message, d.InstanceID = m, m.InstanceID
		}
		p.addDeadLetter(d)
	}
	return nil
}
