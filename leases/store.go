package leases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Store keeps one lease per partition and one record per host. Leases decide
// who processes a partition; host records say which hosts are alive and which
// partitions they want to take over. Implementations are safe for concurrent
// use.
type Store interface {
	// Acquire takes the partition's lease for owner for duration d when it is
	// free, released or expired, and records owner and the next epoch with it.
	// It fails with an error wrapping ErrLeaseHeld while another lease lives.
	Acquire(ctx context.Context, partition int, owner string, d time.Duration) (*Lease, error)
	// Renew extends l by its duration. It fails with an error wrapping
	// ErrLeaseLost when l is no longer the partition's lease: released,
	// broken, or acquired by someone else. A lease that expired but that
	// nobody acquired since can still be renewed, as on Azure.
	Renew(ctx context.Context, l *Lease) error
	// Release ends l at once, so that anyone can acquire the partition. It
	// fails with an error wrapping ErrLeaseLost when l is no longer the
	// partition's lease.
	Release(ctx context.Context, l *Lease) error
	// Change hands the live lease l to owner without a gap: the returned
	// lease has a new id, the new owner and the next epoch, and l stops
	// being valid. It fails with an error wrapping ErrLeaseLost when l is not
	// the partition's live lease.
	Change(ctx context.Context, l *Lease, owner string) (*Lease, error)

	// List reads every lease and every host record at once.
	List(ctx context.Context) (*Snapshot, error)
	// PutHost creates or replaces a host record; the store stamps its
	// heartbeat with its own clock.
	PutHost(ctx context.Context, h *Host) error
	// DeleteHost removes a host record; a missing record is not an error.
	DeleteHost(ctx context.Context, id string) error
}

// DurationChecker is implemented by stores that accept only some lease
// durations; partition.New calls it to reject bad options early.
type DurationChecker interface {
	CheckDuration(d time.Duration) error
}

var (
	// ErrLeaseHeld: another holder's lease on the partition is live. Try
	// again after it expires or is released.
	ErrLeaseHeld = errors.New("lease held by another owner")
	// ErrLeaseLost: the caller's lease is no longer the partition's lease
	// (released, broken or taken by someone else). The caller must stop
	// processing the partition; renewing again cannot help.
	ErrLeaseLost = errors.New("lease lost")
)

// Lease is a lease the caller holds. It is a value: Renew does not change it,
// and Change returns a new one.
type Lease struct {
	Partition int
	// Owner is the host id recorded with the lease.
	Owner string
	// Epoch grows by one on every Acquire and every Change, so that two
	// ownership terms of a partition never share an epoch.
	Epoch int64
	// ID is the store's lease id; whoever knows it can renew or release.
	ID string
	// Duration is how long the lease lives after an Acquire or a Renew.
	Duration time.Duration
}

// State is the state of a partition's lease.
type State uint8

const (
	// Free: never leased, or released by its holder.
	Free State = iota
	// Held: a lease lives; only its holder may process the partition.
	Held
	// Expired: the last holder neither renewed nor released it in time (or
	// it was broken). Anyone may acquire it. The last holder stopped
	// renewing, which is why partition managers read this state as a sign
	// that the owner is stuck or dead.
	Expired
)

func (s State) String() string {
	switch s {
	case Free:
		return "free"
	case Held:
		return "held"
	case Expired:
		return "expired"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Info describes a partition's lease as listed.
type Info struct {
	Partition int
	State     State
	// Owner is the holder, or the last holder when the lease is not Held;
	// empty when the partition was never leased.
	Owner string
	// Epoch is the epoch of the current or last lease; 0 when never leased.
	Epoch int64
	// Expires is when a Held lease expires unless renewed; zero when not
	// Held or unknown. MemoryStore knows it exactly; BlobStore estimates it
	// (see BlobStore).
	Expires time.Time
}

// Host is a host record: a heartbeat and the partitions the host wants to
// take over.
type Host struct {
	ID string
	// Heartbeat is when the record was last written, on the store's clock.
	// PutHost ignores it.
	Heartbeat time.Time
	// Intents are the partitions the host asks their owners to hand over.
	Intents []Intent
	// Expires is, per partition the host holds, when its lease expires
	// unless renewed, on the host's clock. Stores use it to estimate
	// Info.Expires; it may be left empty.
	Expires map[int]time.Time
}

// Intent is a host's request that the owner of a partition hands it over.
// A host gives each new request a new Serial, so that observers can tell a
// renewed request from an old one.
type Intent struct {
	Partition int
	Serial    int64
}

// Snapshot is every lease and every host record, read at once.
type Snapshot struct {
	// Time is the store's clock when it was read; compare heartbeats with it,
	// not with the local clock.
	Time time.Time
	// Leases lists the partitions that were ever leased, by partition;
	// partitions that are missing are Free.
	Leases []Info
	// Hosts lists the host records, by id.
	Hosts []Host
}

// checkArgs validates the arguments of Acquire and Change.
func checkArgs(partition int, owner string) error {
	if partition < 0 {
		return fmt.Errorf("%w: partition %d is negative", core.ErrInvalidInput, partition)
	}
	return core.ValidateName("lease owner", owner)
}

func checkLease(l *Lease) error {
	if l == nil || l.ID == "" {
		return fmt.Errorf("%w: no lease given", core.ErrInvalidInput)
	}
	return nil
}

func heldErr(partition int, owner string) error {
	if owner == "" {
		return fmt.Errorf("partition %d: %w", partition, ErrLeaseHeld)
	}
	return fmt.Errorf("partition %d: %w (%q)", partition, ErrLeaseHeld, owner)
}

func lostErr(op string, l *Lease) error {
	return fmt.Errorf("%s lease of partition %d (epoch %d): %w", op, l.Partition, l.Epoch, ErrLeaseLost)
}
