package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/azdurable/azdurable/core"
)

// GetInstance returns a copy of the instance's state; input, output and
// custom status only when withPayloads.
func (p *Provider) GetInstance(ctx context.Context, instanceID string, withPayloads bool) (*core.InstanceState, error) {
	if err := p.enter(ctx, mGetInstance); err != nil {
		return nil, err
	}
	part, err := p.partitionOfInstance(instanceID)
	if err != nil {
		return nil, err
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	inst := part.instances[instanceID]
	if inst == nil {
		return nil, fmt.Errorf("%w: %q", core.ErrInstanceNotFound, instanceID)
	}
	st := copyState(inst.state)
	if !withPayloads {
		stripPayloads(st)
	}
	return st, nil
}

// GetHistory returns a copy of the history of the instance's current execution.
func (p *Provider) GetHistory(ctx context.Context, instanceID string) ([]*core.Event, error) {
	if err := p.enter(ctx, mGetHistory); err != nil {
		return nil, err
	}
	part, err := p.partitionOfInstance(instanceID)
	if err != nil {
		return nil, err
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	inst := part.instances[instanceID]
	if inst == nil {
		return nil, fmt.Errorf("%w: %q", core.ErrInstanceNotFound, instanceID)
	}
	return copyEvents(inst.history), nil
}

// QueryInstances lists the instances that match every filter of q, ordered by
// creation time, then instance id, one page at a time. The continuation token
// holds the key of the last instance of the previous page, so an instance
// created while a listing is paged through never shifts the pages: every
// instance that matches throughout the listing appears exactly once.
func (p *Provider) QueryInstances(ctx context.Context, q core.InstanceQuery) (*core.InstancePage, error) {
	if err := p.enter(ctx, mQueryInstances); err != nil {
		return nil, err
	}
	size, err := pageSizeOf(q.PageSize)
	if err != nil {
		return nil, err
	}
	if err := checkFilter(q); err != nil {
		return nil, err
	}
	var after *pageKey
	if q.Continuation != "" {
		k, err := decodePageKey(q.Continuation, pageKindInstances)
		if err != nil {
			return nil, err
		}
		after = &k
	}
	var all []*core.InstanceState
	for _, part := range p.parts {
		part.mu.Lock()
		for _, inst := range part.instances {
			st := inst.state
			if matches(q, st) && (after == nil || after.less(st.CreatedAt, st.InstanceID)) {
				c := copyState(st)
				if !q.WithPayloads {
					stripPayloads(c)
				}
				all = append(all, c)
			}
		}
		part.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b *core.InstanceState) int {
		return compareKeys(a.CreatedAt, a.InstanceID, b.CreatedAt, b.InstanceID)
	})
	page := &core.InstancePage{Instances: all}
	if len(all) > size {
		page.Instances = all[:size]
		last := all[size-1]
		page.Continuation = encodePageKey(pageKindInstances, last.CreatedAt, last.InstanceID)
	}
	if page.Instances == nil {
		page.Instances = []*core.InstanceState{}
	}
	return page, nil
}

// checkFilter rejects a filter that can match nothing because it is wrong.
func checkFilter(q core.InstanceQuery) error {
	if !q.CreatedFrom.IsZero() && !q.CreatedTo.IsZero() && !q.CreatedFrom.Before(q.CreatedTo) {
		return fmt.Errorf("%w: CreatedFrom (%s) must be before CreatedTo (%s)", core.ErrInvalidInput, q.CreatedFrom, q.CreatedTo)
	}
	return nil
}

// matches applies the filters of q (not its paging) to an instance. Stored
// times have no monotonic reading, so times compare by wall clock.
func matches(q core.InstanceQuery, st *core.InstanceState) bool {
	switch {
	case len(q.Statuses) > 0 && !slices.Contains(q.Statuses, st.Status),
		q.Name != "" && st.Name != q.Name,
		!q.CreatedFrom.IsZero() && st.CreatedAt.Before(q.CreatedFrom.Round(0)),
		!q.CreatedTo.IsZero() && !st.CreatedAt.Before(q.CreatedTo.Round(0)),
		!strings.HasPrefix(st.InstanceID, q.InstanceIDPrefix):
		return false
	}
	return true
}

// PurgeInstance deletes a terminal instance with its history and pending rows.
func (p *Provider) PurgeInstance(ctx context.Context, instanceID string) error {
	if err := p.enter(ctx, mPurgeInstance); err != nil {
		return err
	}
	part, err := p.partitionOfInstance(instanceID)
	if err != nil {
		return err
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	inst := part.instances[instanceID]
	switch {
	case inst == nil:
		return fmt.Errorf("%w: %q", core.ErrInstanceNotFound, instanceID)
	case !inst.state.Status.IsTerminal():
		return fmt.Errorf("%w: instance %q is %s; terminate it first, or wait until it ends", core.ErrNotTerminal, instanceID, inst.state.Status)
	}
	delete(part.instances, instanceID)
	return nil
}

// PurgeInstances purges every terminal instance that matches the filters of
// filter (its paging fields are ignored) and returns how many it purged.
func (p *Provider) PurgeInstances(ctx context.Context, filter core.InstanceQuery) (int, error) {
	if err := p.enter(ctx, mPurgeInstances); err != nil {
		return 0, err
	}
	if err := checkFilter(filter); err != nil {
		return 0, err
	}
	n := 0
	for _, part := range p.parts {
		part.mu.Lock()
		for id, inst := range part.instances {
			if inst.state.Status.IsTerminal() && matches(filter, inst.state) {
				delete(part.instances, id)
				n++
			}
		}
		part.mu.Unlock()
	}
	return n, nil
}
