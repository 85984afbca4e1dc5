package main

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
	"github.com/azdurable/azdurable/metrics"
	"github.com/azdurable/azdurable/partition"
)

// ownership is what the worker needs of its partition manager.
type ownership interface {
	core.Ownership
	metrics.Ownership
	// Done is closed when Run has returned: every partition is released.
	Done() <-chan struct{}
}

// managed is the partition manager, with a signal when its Run returns.
// Runtime.Shutdown returns at its deadline even when the manager is still
// releasing leases (after a drain that used the whole deadline); the worker
// waits for Done a little longer, so that the leases are released rather
// than left to expire.
type managed struct {
	*partition.Manager
	done chan struct{}
}

func (m *managed) Run(ctx context.Context, h core.PartitionHandler) error {
	defer close(m.done)
	return m.Manager.Run(ctx, h)
}

func (m *managed) Done() <-chan struct{} { return m.done }

// newOwnership returns the host's partition manager, on the leases of the
// task hub's lease container.
func newOwnership(cfg *Config, prov *azprovider.Provider, log *zerolog.Logger) (ownership, error) {
	m, err := partition.New(partitionOptions(cfg, leases.NewBlobStore(prov.LeaseContainer()), log))
	if err != nil {
		return nil, err
	}
	return &managed{Manager: m, done: make(chan struct{})}, nil
}

// partitionOptions maps the configuration onto the partition manager's.
func partitionOptions(cfg *Config, store leases.Store, log *zerolog.Logger) partition.Options {
	return partition.Options{
		Store:              store,
		HostID:             cfg.HostID,
		Partitions:         cfg.Partitions,
		LeaseDuration:      cfg.LeaseDuration,
		RenewInterval:      cfg.RenewInterval,
		AcquireInterval:    cfg.AcquireInterval,
		SteadyScanInterval: cfg.SteadyScanInterval,
		DrainTimeout:       cfg.HandOverTimeout,
		Logger:             log,
	}
}

// checkPartitionOptions checks the lease settings before anything connects,
// so that a bad value exits at once even while storage is unreachable. The
// store is never called: only its duration rules are consulted.
func checkPartitionOptions(cfg *Config) error {
	_, err := partition.New(partitionOptions(cfg, leases.NewBlobStore(nil), nil))
	return err
}
