package azprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/core"
)

// What operators' tools read about a task hub: its descriptor, the state of
// its queues and single dead letters. Nothing here writes.

// TaskHubInfo is what taskhub.json records about a task hub.
type TaskHubInfo struct {
	Name          string    `json:"name"`
	Partitions    int       `json:"partitions"`
	CreatedAt     time.Time `json:"createdAt"`
	FormatVersion int       `json:"formatVersion"`
}

// ReadTaskHub reads the descriptor of an existing task hub without knowing
// its partition count (opts.Partitions is ignored), so that a tool can then
// call New with the right count. It fails with ErrTaskHubNotFound when the
// task hub does not exist. It creates nothing.
func ReadTaskHub(ctx context.Context, opts Options) (*TaskHubInfo, error) {
	opts.Partitions = 1
	opts.CreateIfMissing = false
	p, err := newProvider(opts)
	if err != nil {
		return nil, err
	}
	return p.TaskHubInfo(ctx)
}

// TaskHubInfo reads the task hub's descriptor. It fails with
// ErrTaskHubNotFound when the task hub does not exist (any more).
func (p *Provider) TaskHubInfo(ctx context.Context) (*TaskHubInfo, error) {
	info, err := p.readHubInfo(ctx)
	if errorsIsNotFound(err) {
		return nil, fmt.Errorf("%w: task hub %q does not exist in this storage account", ErrTaskHubNotFound, p.hub)
	}
	if err != nil {
		return nil, err
	}
	return &TaskHubInfo{Name: p.hub, Partitions: info.Partitions, CreatedAt: info.CreatedAt, FormatVersion: info.FormatVersion}, nil
}

// QueueStat is the state of one queue of the task hub.
type QueueStat struct {
	Name string
	// Partition is the partition of a control queue; -1 for the work-item queue.
	Partition int
	// ApproximateCount is the queue's approximate message count, visible and
	// invisible (locked or delayed) messages together, as the service reports it.
	ApproximateCount int
	// OldestInsertion is when the first visible message was enqueued; zero
	// when no message is visible.
	OldestInsertion time.Time
	// ReadAt is the service's clock when the queue was peeked: compare
	// OldestInsertion with it, not with the local clock.
	ReadAt time.Time
}

// Age is how long the oldest visible message has waited, by the service's
// clock; zero when none is visible.
func (s QueueStat) Age() time.Duration {
	if s.OldestInsertion.IsZero() || s.ReadAt.Before(s.OldestInsertion) {
		return 0
	}
	return s.ReadAt.Sub(s.OldestInsertion)
}

// QueueStats reads the control queues (in partition order) and then the
// work-item queue: two operations per queue (properties and a peek of one
// message), which neither dequeue nor lock anything.
func (p *Provider) QueueStats(ctx context.Context) ([]QueueStat, error) {
	queues, names := p.allQueues() // the work-item queue first, then the control queues
	stats := make([]QueueStat, len(queues))
	err := parallel(len(queues), maxParallel, func(i int) error {
		s, err := p.queueStat(ctx, queues[i], names[i])
		s.Partition = i - 1
		stats[i] = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return append(stats[1:], stats[0]), nil
}

func (p *Provider) queueStat(ctx context.Context, q *azqueue.QueueClient, name string) (QueueStat, error) {
	s := QueueStat{Name: name}
	props, err := q.GetProperties(ctx, nil)
	if err != nil {
		if errorsIsNotFound(err) {
			return s, fmt.Errorf("%w: task hub %q has no queue %s: recreate it with CreateTaskHub", ErrTaskHubNotFound, p.hub, name)
		}
		return s, p.storageErr("read queue properties", "queue "+name, err)
	}
	if props.ApproximateMessagesCount != nil {
		s.ApproximateCount = int(*props.ApproximateMessagesCount)
	}
	one := int32(1)
	peek, err := q.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: &one})
	if err != nil {
		return s, p.storageErr("peek queue", "queue "+name, err)
	}
	if peek.Date != nil {
		s.ReadAt = peek.Date.UTC()
	} else {
		s.ReadAt = p.now().UTC()
	}
	if len(peek.Messages) > 0 && peek.Messages[0] != nil && peek.Messages[0].InsertionTime != nil {
		s.OldestInsertion = peek.Messages[0].InsertionTime.UTC()
	}
	return s, nil
}

// ErrDeadLetterNotFound: no dead letter has that id (any more).
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// GetDeadLetter reads one dead letter with a point read. An id that cannot
// be a dead letter's is core.ErrInvalidInput; an absent one ErrDeadLetterNotFound.
func (p *Provider) GetDeadLetter(ctx context.Context, id string) (*core.DeadLetter, error) {
	r, err := p.readDeadLetter(ctx, id)
	if errors.Is(err, ErrDeadLetterNotFound) {
		return nil, fmt.Errorf("%w: %q in task hub %q", ErrDeadLetterNotFound, id, p.hub)
	}
	if err != nil {
		return nil, err
	}
	return p.decodeDeadLetter(ctx, r)
}
