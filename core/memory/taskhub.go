package memory

import (
	"context"

	"github.com/azdurable/azdurable/core"
)

// CreateTaskHub does nothing: New creates the task hub. It is idempotent.
func (p *Provider) CreateTaskHub(ctx context.Context) error {
	return p.enter(ctx, mCreateTaskHub)
}

// DeleteTaskHub deletes everything the task hub holds: instances, histories,
// pending rows, queued messages and work items, dead letters and hosts. The
// provider stays usable, as an empty task hub with the same partition count.
func (p *Provider) DeleteTaskHub(ctx context.Context) error {
	if err := p.enter(ctx, mDeleteTaskHub); err != nil {
		return err
	}
	// Every lock, in the lock order, so that no call sees half a deletion.
	p.workMu.Lock()
	defer p.workMu.Unlock()
	for _, part := range p.parts {
		part.mu.Lock()
		defer part.mu.Unlock()
	}
	p.deadMu.Lock()
	defer p.deadMu.Unlock()
	p.hostsMu.Lock()
	defer p.hostsMu.Unlock()

	p.work = newQueue()
	for _, part := range p.parts {
		part.queue, part.instances = newQueue(), map[string]*instance{}
	}
	p.dead = map[string]*core.DeadLetter{}
	p.hosts = map[string]*core.HostInfo{}
	return nil
}
