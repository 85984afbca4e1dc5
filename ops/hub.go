package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
)

// ErrTaskHubNotFound: the task hub does not exist in the storage account.
// It is azprovider.ErrTaskHubNotFound, so either matches with errors.Is.
var ErrTaskHubNotFound = azprovider.ErrTaskHubNotFound

// Hub is an operator's handle on a task hub.
type Hub struct {
	Provider *azprovider.Provider
	Client   *core.Client
	Leases   leases.Store
}

// Open connects to an existing task hub: it reads the hub's partition count
// from its descriptor, so the caller need not know it. It creates nothing;
// when the task hub does not exist the error wraps ErrTaskHubNotFound. Errors
// never quote the connection string.
func Open(ctx context.Context, connectionString, taskHub string) (*Hub, error) {
	opts := azprovider.Options{ConnectionString: connectionString, TaskHub: taskHub}
	info, err := azprovider.ReadTaskHub(ctx, opts)
	if err != nil {
		return nil, err
	}
	opts.Partitions = info.Partitions
	p, err := azprovider.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Hub{Provider: p, Client: core.NewClient(p), Leases: leases.NewBlobStore(p.LeaseContainer())}, nil
}

// Lease states of PartitionInfo.LeaseState.
const (
	LeaseLeased  = "leased"  // a host holds the lease and processes the partition
	LeaseExpired = "expired" // the last owner stopped renewing: stuck or dead; any host may take it
	LeaseFree    = "free"    // never leased, or released; any host may take it
)

// PartitionInfo is the state of one partition: its lease and its control queue.
type PartitionInfo struct {
	Partition int `json:"partition"`
	// Owner is the host holding the lease; for an expired lease, the host
	// that last held it; "" when free.
	Owner      string `json:"owner"`
	LeaseState string `json:"leaseState"` // one of the Lease constants
	// Epoch is the epoch of the current or last lease; 0 when never leased.
	Epoch int64 `json:"epoch"`
	// QueueDepth is the control queue's approximate message count, visible
	// and invisible (locked or delayed) messages together.
	QueueDepth int `json:"queueDepth"`
	// OldestMessageAge is how long the first visible message of the control
	// queue has waited; 0 when none is visible.
	OldestMessageAge time.Duration `json:"oldestMessageAge"`
}

// Partitions reads every partition's lease and control queue: one listing of
// the leases and two operations per queue. It also returns every queue it
// read (the control queues, then the work-item queue), so that a caller that
// shows the work-item queue too does not read them all again.
func (h *Hub) Partitions(ctx context.Context) ([]PartitionInfo, []QueueInfo, error) {
	snap, err := h.Leases.List(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("task hub %q: read partition leases: %w", h.Provider.TaskHub(), err)
	}
	queues, err := h.Queues(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]PartitionInfo, h.Provider.Partitions())
	for i := range out {
		out[i] = PartitionInfo{Partition: i, LeaseState: LeaseFree}
	}
	for _, l := range snap.Leases {
		if l.Partition < 0 || l.Partition >= len(out) {
			continue // a lease blob of another partition count: not ours to show
		}
		pi := &out[l.Partition]
		pi.Epoch = l.Epoch
		switch l.State {
		case leases.Held:
			pi.LeaseState, pi.Owner = LeaseLeased, l.Owner
		case leases.Expired:
			pi.LeaseState, pi.Owner = LeaseExpired, l.Owner
		}
	}
	for _, q := range queues {
		if q.Partition >= 0 && q.Partition < len(out) {
			out[q.Partition].QueueDepth = q.Depth
			out[q.Partition].OldestMessageAge = q.OldestMessageAge
		}
	}
	return out, queues, nil
}

// QueueInfo is the state of one queue of the task hub.
type QueueInfo struct {
	Name string `json:"name"`
	// Partition is the partition of a control queue; -1 for the work-item queue.
	Partition int `json:"partition"`
	// Depth is the approximate message count, visible and invisible.
	Depth int `json:"depth"`
	// OldestMessageAge is how long the first visible message has waited; 0
	// when none is visible.
	OldestMessageAge time.Duration `json:"oldestMessageAge"`
}

// Queues reads the control queues, in partition order, then the work-item
// queue. Reading neither dequeues nor locks a message.
func (h *Hub) Queues(ctx context.Context) ([]QueueInfo, error) {
	stats, err := h.Provider.QueueStats(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]QueueInfo, len(stats))
	for i, s := range stats {
		out[i] = QueueInfo{Name: s.Name, Partition: s.Partition, Depth: s.ApproximateCount, OldestMessageAge: s.Age()}
	}
	return out, nil
}
