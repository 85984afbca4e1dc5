package azprovider

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/azdurable/azdurable/core"
)

// Provider is core.Provider on Azure Storage. It is safe for concurrent use.
type Provider struct {
	opts      Options
	hub       string
	n         int // partition count P
	tableName string
	redact    *redactor
	stats     *opStats

	tables   *aztables.ServiceClient
	table    *aztables.Client
	queues   *azqueue.ServiceClient
	control  []*azqueue.QueueClient
	work     *azqueue.QueueClient
	blobs    *azblob.Client
	payloads *container.Client
	leases   *container.Client

	// meta caches what a commit needs to know about the row it replaces,
	// keyed by instance and ETag: an entry describes one immutable version of
	// a row, so it never needs invalidation. A miss costs one point read.
	meta *lru.Cache[metaKey, *instanceMeta]
	// outboxBlobs remembers the blob of each spilled outbox unit (known from
	// the commit that wrote it or from OpenPartition), so that the commit that
	// deletes the unit can delete the blob without reading the row first.
	outboxBlobs sync.Map // unit id → blob name
	// senders pack the control messages of each partition (pack.go).
	senders []sender

	now func() time.Time
}

var (
	_ core.Provider        = (*Provider)(nil)
	_ core.TaskHubAdmin    = (*Provider)(nil)
	_ core.ActivityDeleter = (*Provider)(nil)

	_ core.ActivityBatchFetcher = (*Provider)(nil)
)

const metaCacheSize = 16384

// New connects to the task hub's storage. It reads the task hub's
// taskhub.json and fails when the task hub does not exist (unless
// Options.CreateIfMissing) or was created with another partition count.
func New(ctx context.Context, opts Options) (*Provider, error) {
	p, err := newProvider(opts)
	if err != nil {
		return nil, err
	}
	info, err := p.readHubInfo(ctx)
	switch {
	case err == nil:
		if err := p.checkHubInfo(info); err != nil {
			return nil, err
		}
	case errorsIsNotFound(err) && p.opts.CreateIfMissing:
		if err := p.CreateTaskHub(ctx); err != nil {
			return nil, err
		}
	case errorsIsNotFound(err):
		return nil, fmt.Errorf("%w: task hub %q does not exist in this storage account: create it with CreateTaskHub or set Options.CreateIfMissing", ErrTaskHubNotFound, p.hub)
	default:
		return nil, err
	}
	return p, nil
}

// newProvider validates the options and creates the clients, without I/O.
func newProvider(opts Options) (*Provider, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	meta, err := lru.New[metaKey, *instanceMeta](metaCacheSize)
	if err != nil {
		return nil, err
	}
	p := &Provider{opts: o, hub: o.TaskHub, n: o.Partitions, tableName: o.TaskHub + "State",
		stats: &opStats{}, meta: meta, now: time.Now}
	if err := p.connect(); err != nil {
		return nil, err
	}
	p.table = p.tables.NewClient(p.tableName)
	p.control = make([]*azqueue.QueueClient, p.n)
	p.senders = make([]sender, p.n)
	for i := range p.control {
		p.control[i] = p.queues.NewQueueClient(p.controlQueueName(i))
	}
	p.work = p.queues.NewQueueClient(p.workQueueName())
	p.payloads = p.blobs.ServiceClient().NewContainerClient(p.payloadContainerName())
	p.leases = p.blobs.ServiceClient().NewContainerClient(p.leaseContainerName())
	return p, nil
}

// Partitions is the partition count P of the task hub.
func (p *Provider) Partitions() int { return p.n }

// PartitionOf routes an instance: FNV-1a 32 of its UTF-8 bytes, mod P.
func (p *Provider) PartitionOf(instanceID string) int { return core.PartitionFor(instanceID, p.n) }

// Limits reports the payload and instance id limits.
func (p *Provider) Limits() core.Limits {
	return core.Limits{MaxPayloadBytes: p.opts.MaxPayloadBytes, MaxInstanceIDLength: core.MaxInstanceIDLength}
}

// TaskHub is the task hub's name.
func (p *Provider) TaskHub() string { return p.hub }

// ClosePartition forgets the partition's spilled outbox blobs; the provider
// caches nothing else per partition.
func (p *Provider) ClosePartition(partition int) {
	p.outboxBlobs.Range(func(k, v any) bool {
		if v.(outboxBlob).partition == partition {
			p.outboxBlobs.Delete(k)
		}
		return true
	})
}

type outboxBlob struct {
	partition int
	blob      string
}

// checkPartition validates a partition argument.
func (p *Provider) checkPartition(partition int) error {
	if partition < 0 || partition >= p.n {
		return fmt.Errorf("%w: partition %d is out of range (the task hub has %d partitions)", core.ErrInvalidInput, partition, p.n)
	}
	return nil
}

// checkRoute validates that an instance belongs to a partition.
func (p *Provider) checkRoute(partition int, instanceID string) error {
	if err := core.ValidateInstanceID(instanceID, 0); err != nil {
		return err
	}
	if q := p.PartitionOf(instanceID); q != partition {
		return fmt.Errorf("%w: instance %q belongs to partition %d, not %d", core.ErrInvalidInput, instanceID, q, partition)
	}
	return nil
}

// checkPayload enforces Options.MaxPayloadBytes.
func (p *Provider) checkPayload(what string, b []byte) error {
	if limit := p.opts.MaxPayloadBytes; limit > 0 && len(b) > limit {
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d bytes", core.ErrPayloadTooLarge, what, len(b), limit)
	}
	return nil
}

// pk is the partition key of partition i.
func (p *Provider) pk(i int) string { return partitionKey(i, p.n) }

// maxParallel bounds the concurrent storage calls of one provider call.
const maxParallel = 16

// parallel runs f(0..n-1) with at most limit at a time and returns the first error.
func parallel(n, limit int, f func(i int) error) error {
	if n == 0 {
		return nil
	}
	if n == 1 {
		return f(0)
	}
	sem := make(chan struct{}, limit)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
