package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
)

// addDeadLetter stores d under a new id. The caller may hold a partition or
// the work-item lock (the dead-letter lock comes after them).
func (p *Provider) addDeadLetter(d *core.DeadLetter) {
	p.deadMu.Lock()
	defer p.deadMu.Unlock()
	p.deadNext++
	d.ID = fmt.Sprintf("dl-%08d", p.deadNext)
	p.dead[d.ID] = d
}

// ListDeadLetters lists dead letters oldest first (by time, then id), one page
// at a time: pageSize defaults to 100 and is at most 1000. The continuation
// names the last dead letter of the previous page, so pages stay consistent
// while dead letters are added or removed.
func (p *Provider) ListDeadLetters(ctx context.Context, pageSize int, continuation string) (*core.DeadLetterPage, error) {
	if err := p.enter(ctx, mListDeadLetters); err != nil {
		return nil, err
	}
	size, err := pageSizeOf(pageSize)
	if err != nil {
		return nil, err
	}
	var after *pageKey
	if continuation != "" {
		k, err := decodePageKey(continuation, pageKindDeadLetters)
		if err != nil {
			return nil, err
		}
		after = &k
	}
	p.deadMu.Lock()
	all := make([]*core.DeadLetter, 0, len(p.dead))
	for _, d := range p.dead {
		if after == nil || after.less(d.At, d.ID) {
			all = append(all, copyDeadLetter(d))
		}
	}
	p.deadMu.Unlock()
	slices.SortFunc(all, func(a, b *core.DeadLetter) int { return compareKeys(a.At, a.ID, b.At, b.ID) })
	page := &core.DeadLetterPage{DeadLetters: all}
	if len(all) > size {
		page.DeadLetters = all[:size]
		last := all[size-1]
		page.Continuation = encodePageKey(pageKindDeadLetters, last.At, last.ID)
	}
	return page, nil
}

// ReplayDeadLetter sends a dead letter back where it came from — a message to
// the control queue of its instance's partition, a work item to the work-item
// queue — with its delivery count reset, and removes it. A dead letter that
// could not be decoded cannot be replayed; discard it instead.
func (p *Provider) ReplayDeadLetter(ctx context.Context, id string) error {
	if err := p.enter(ctx, mReplayDeadLetter); err != nil {
		return err
	}
	// Taken out first (the dead-letter lock comes last in the lock order, so
	// it cannot be held while enqueueing); concurrent replays of one dead
	// letter then replay it once.
	p.deadMu.Lock()
	d := p.dead[id]
	switch {
	case d == nil:
		p.deadMu.Unlock()
		return fmt.Errorf("%w: dead letter %q does not exist", core.ErrInvalidInput, id)
	case d.Message == nil && d.Activity == nil:
		p.deadMu.Unlock()
		return fmt.Errorf("%w: dead letter %q holds %d bytes that could not be decoded (%s); it cannot be replayed, only discarded",
			core.ErrInvalidInput, id, len(d.Raw), d.Reason)
	}
	delete(p.dead, id)
	p.deadMu.Unlock()

	var err error
	if d.Message != nil {
		err = p.enqueueMessages([]*core.Message{d.Message})
	} else {
		err = p.enqueueActivities([]*core.ActivityTask{d.Activity})
	}
	if err != nil {
		// Only a limit lowered since the item was dead-lettered gets here.
		p.deadMu.Lock()
		p.dead[id] = d
		p.deadMu.Unlock()
		return fmt.Errorf("replay dead letter %q: %w", id, err)
	}
	return nil
}

// DiscardDeadLetter deletes a dead letter. One that is not found (never
// written, or already replayed or discarded) is core.ErrInvalidInput.
func (p *Provider) DiscardDeadLetter(ctx context.Context, id string) error {
	if err := p.enter(ctx, mDiscardDeadLetter); err != nil {
		return err
	}
	p.deadMu.Lock()
	defer p.deadMu.Unlock()
	if p.dead[id] == nil {
		return fmt.Errorf("%w: dead letter %q does not exist (never written, or already replayed or discarded)", core.ErrInvalidInput, id)
	}
	delete(p.dead, id)
	return nil
}

// compareKeys orders by time (wall clock), then id.
func compareKeys(at time.Time, id string, bt time.Time, bid string) int {
	if c := at.Round(0).Compare(bt.Round(0)); c != 0 {
		return c
	}
	return strings.Compare(id, bid)
}
