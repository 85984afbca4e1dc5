package core

import (
	"context"
	"time"
)

// Ownership decides which partitions this host runs. The partition package
// implements it with blob leases; OwnAll is the single-host default.
type Ownership interface {
	// Run blocks until ctx is done, calling h as partitions are acquired and
	// released. Before it returns it releases every partition it acquired
	// (calling h.PartitionReleased for each) and reports why it stopped; on a
	// normal shutdown it returns ctx.Err().
	Run(ctx context.Context, h PartitionHandler) error
}

// PartitionHandler is the runtime side of ownership.
type PartitionHandler interface {
	// PartitionAcquired starts the partition's dispatchers. It returns once
	// they run; an error means the partition could not be opened, and the
	// ownership manager should give it up and try again later.
	PartitionAcquired(ctx context.Context, partition int) error
	// PartitionReleased stops fetching for the partition, drains in-flight
	// episodes until ctx is done, abandons what is left, and returns when the
	// partition is no longer processed. After it returns the lease may go.
	PartitionReleased(ctx context.Context, partition int)
}

// OwnAll is the default Ownership: this host owns every partition of the
// provider, for as long as the runtime runs.
type OwnAll struct {
	// Partitions is the partition count.
	Partitions int
}

// Run acquires every partition and holds them until ctx is done.
func (o OwnAll) Run(ctx context.Context, h PartitionHandler) error {
	acquired := make([]int, 0, o.Partitions)
	for p := range o.Partitions {
		// Storage may be down when the host starts: keep trying until it is up.
		for delay := 100 * time.Millisecond; h.PartitionAcquired(ctx, p) != nil; delay = min(2*delay, 5*time.Second) {
			select {
			case <-ctx.Done():
				for _, q := range acquired {
					h.PartitionReleased(context.WithoutCancel(ctx), q)
				}
				return ctx.Err()
			case <-time.After(delay):
			}
		}
		acquired = append(acquired, p)
	}
	<-ctx.Done()
	for _, p := range acquired {
		h.PartitionReleased(context.WithoutCancel(ctx), p)
	}
	return ctx.Err()
}
