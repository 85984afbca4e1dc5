// Package memory is the in-memory core.Provider: the reference implementation
// of the storage contract that core/providertest checks every provider
// against, and the store under core/tester.
//
// It keeps everything in process memory, so it is fast and loses everything
// when the process ends. It keeps the contract to the letter: messages go
// through the stable message encoding, locks expire by the provider's clock,
// commits are atomic per episode and guarded by tokens, and nothing a caller
// passes in or gets back aliases stored data.
package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/core"
)

var (
	_ core.Provider     = (*Provider)(nil)
	_ core.TaskHubAdmin = (*Provider)(nil)
)

// Provider is an in-memory task hub. It is safe for concurrent use.
//
// Locks are taken in one order — work-item queue, then partitions by index,
// then dead letters, then hosts — and never the other way round.
type Provider struct {
	opts Options

	parts []*partition

	workMu sync.Mutex
	work   *queue

	deadMu   sync.Mutex
	dead     map[string]*core.DeadLetter
	deadNext uint64

	hostsMu sync.Mutex
	hosts   map[string]*core.HostInfo

	// seq numbers queue entries and tokens numbers commits, across the whole
	// provider, so that neither is ever reused, not even after a purge.
	seq    atomic.Uint64
	tokens atomic.Uint64
	calls  [numMethods]atomic.Int64
}

// partition is one partition's control queue and instances.
type partition struct {
	mu        sync.Mutex
	queue     *queue
	instances map[string]*instance
}

// instance is what a commit stores for one instance: its row, the history of
// its current execution, its token and its pending rows.
type instance struct {
	state   *core.InstanceState
	history []*core.Event
	token   core.CommitToken
	timers  map[rowKey]core.TimerRow
	acts    map[rowKey]*core.ActivityTask
	// outbox maps an outbox unit id to copies of its messages.
	outbox map[string][]*core.Message
}

// rowKey identifies a timer or activity row of an instance.
type rowKey struct {
	execution string
	task      int64
}

// New returns an empty in-memory task hub.
func New(opts Options) (*Provider, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Provider{opts: o, parts: make([]*partition, o.Partitions), work: newQueue(),
		dead: map[string]*core.DeadLetter{}, hosts: map[string]*core.HostInfo{}}
	for i := range p.parts {
		p.parts[i] = &partition{queue: newQueue(), instances: map[string]*instance{}}
	}
	return p, nil
}

// Partitions is the partition count of the task hub.
func (p *Provider) Partitions() int { return p.opts.Partitions }

// PartitionOf routes an instance id with core.PartitionFor.
func (p *Provider) PartitionOf(instanceID string) int {
	return core.PartitionFor(instanceID, p.opts.Partitions)
}

// Limits reports the configured payload and instance id limits.
func (p *Provider) Limits() core.Limits {
	return core.Limits{MaxPayloadBytes: p.opts.MaxPayloadBytes, MaxInstanceIDLength: p.opts.MaxInstanceIDLength}
}

// now is the provider's time. The monotonic reading is dropped so that every
// stored time compares by its wall time, the way times read back from a store do.
func (p *Provider) now() time.Time { return p.opts.Clock().Round(0) }

// enter counts a call and fails it when ctx is already done.
func (p *Provider) enter(ctx context.Context, m method) error {
	p.calls[m].Add(1)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory provider: %s: %w", m, err)
	}
	return nil
}

// partition returns partition i, or an error naming the valid range.
func (p *Provider) partition(i int) (*partition, error) {
	if i < 0 || i >= len(p.parts) {
		return nil, fmt.Errorf("%w: partition %d does not exist; the task hub has partitions 0..%d", core.ErrInvalidInput, i, len(p.parts)-1)
	}
	return p.parts[i], nil
}

// partitionOfInstance validates an instance id and returns its partition.
func (p *Provider) partitionOfInstance(id string) (*partition, error) {
	if err := core.ValidateInstanceID(id, p.opts.MaxInstanceIDLength); err != nil {
		return nil, err
	}
	return p.parts[p.PartitionOf(id)], nil
}

// checkPayload rejects a payload above the limit, naming what it is.
func (p *Provider) checkPayload(b []byte, what string, args ...any) error {
	if limit := p.opts.MaxPayloadBytes; limit > 0 && len(b) > limit {
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d bytes", core.ErrPayloadTooLarge, fmt.Sprintf(what, args...), len(b), limit)
	}
	return nil
}

// QueueDepth is the number of messages in the partition's control queue,
// visible or not (locked, or delayed). 0 for a partition that does not exist.
func (p *Provider) QueueDepth(partition int) int {
	part, err := p.partition(partition)
	if err != nil {
		return 0
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	return part.queue.len()
}

// WorkItemDepth is the number of work items in the work-item queue, visible or not.
func (p *Provider) WorkItemDepth() int {
	p.workMu.Lock()
	defer p.workMu.Unlock()
	return p.work.len()
}

// NextVisibleAt is the earliest time at which a message or work item that is
// invisible now (locked or delayed) becomes visible; false when none is. A
// virtual-time tester advances to it when everything else is idle.
func (p *Provider) NextVisibleAt() (time.Time, bool) {
	now := p.now()
	var next time.Time
	consider := func(q *queue) {
		for e := range q.live() {
			if e.visibleAt.After(now) && (next.IsZero() || e.visibleAt.Before(next)) {
				next = e.visibleAt
			}
		}
	}
	p.workMu.Lock()
	consider(p.work)
	p.workMu.Unlock()
	for _, part := range p.parts {
		part.mu.Lock()
		consider(part.queue)
		part.mu.Unlock()
	}
	return next, !next.IsZero()
}
