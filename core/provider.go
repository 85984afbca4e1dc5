package core

import (
	"context"
	"time"
)

// Provider is the storage contract. A provider stores instances, their
// histories and their pending work in P partitions, and moves messages between
// them. The runtime does everything else: it runs episodes, runs activities on
// the owning host, arms timers in memory and delivers messages between
// partitions it owns without a round trip. docs/provider-contract.md explains
// each method's guarantees; core/providertest checks them.
//
// Every method takes a context and may block on I/O. Errors wrap the sentinels
// of this package (ErrConflict, ErrInstanceNotFound, ...) or a *StorageError;
// IsRetryable classifies them. Transient storage faults are retried inside the
// provider before an error is returned.
//
// A provider may also implement ActivityDeleter, so that results of
// offloaded activities that run on the owning host skip the control queue.
type Provider interface {
	// Partitions is the fixed partition count P of the task hub.
	Partitions() int
	// PartitionOf routes an instance id to its partition. It must agree on
	// every host and client (the Azure provider uses FNV-1a 32 mod P).
	PartitionOf(instanceID string) int
	// Limits reports the provider's size limits, checked by the client and runtime.
	Limits() Limits

	// SendMessages durably enqueues messages to the partitions of their
	// instances. On return without error every message is durable. Order
	// within a partition is kept where the store allows.
	SendMessages(ctx context.Context, msgs []*Message) error

	// OpenPartition prepares a partition this host has just acquired and returns
	// its pending work: the timers to arm, the activities to run again, and the
	// outbox messages to send again. The cost is proportional to pending work.
	OpenPartition(ctx context.Context, partition int) (*PartitionState, error)
	// ClosePartition forgets what the provider cached for a partition this
	// host released. It does not fail.
	ClosePartition(partition int)
	// FetchMessages returns up to max messages of the partition's control
	// queue, locked for lock (a provider that packs several messages into
	// one queue message takes up to max queue messages). It returns an empty slice, not an error, when
	// there are none; it does not wait for messages to arrive. Messages that
	// cannot be decoded are dead-lettered by the provider, never returned.
	FetchMessages(ctx context.Context, partition, max int, lock time.Duration) ([]*Message, error)
	// AbandonMessages unlocks fetched messages so that they are delivered again
	// after delay. Messages without a Receipt are ignored.
	AbandonMessages(ctx context.Context, partition int, msgs []*Message, delay time.Duration) error
	// DeleteMessages removes fetched messages once a commit has consumed them.
	// Messages without a Receipt are ignored; a message already gone is not an error.
	DeleteMessages(ctx context.Context, partition int, msgs []*Message) error
	// DeadLetterMessages moves fetched messages to the dead-letter store with a
	// reason and removes them from the queue. Only messages whose Receipt is
	// current are moved: a stale one (deleted, or fetched again since) is
	// skipped without error and no dead letter is written for it. A message
	// without a Receipt, or with one of another partition, is ErrInvalidInput,
	// and then nothing of the call is moved.
	DeadLetterMessages(ctx context.Context, partition int, msgs []*Message, reason string) error

	// LoadInstance reads an instance's state, the history of its current
	// execution and its commit token. ErrInstanceNotFound when there is none.
	LoadInstance(ctx context.Context, partition int, instanceID string) (*InstanceSnapshot, error)
	// Commit writes a batch of episodes of one partition. Each episode commits
	// atomically and only if its Token still matches (an empty Token means the
	// instance must not exist yet). The result has one entry per episode, in
	// order: the new token, or an error wrapping ErrConflict for an episode whose
	// token did not match (nothing of it was written). The returned error is
	// for failures of the whole batch. Any error other than a conflict leaves
	// the outcome unknown (a commit whose response was lost may have been
	// applied): the runtime then reads the instance back with LoadInstance,
	// which must reflect every applied commit, to tell.
	// Batch.OutboxDelivered rows are deleted along with the batch. A nil
	// batch is ErrInvalidInput.
	Commit(ctx context.Context, partition int, batch *CommitBatch) ([]CommitResult, error)

	// EnqueueActivities puts activities on the shared work-item queue that every host serves.
	EnqueueActivities(ctx context.Context, tasks []*ActivityTask) error
	// FetchActivity returns one activity work item locked for lock, or nil
	// when the queue is empty. It does not wait.
	FetchActivity(ctx context.Context, lock time.Duration) (*ActivityWorkItem, error)
	// RenewActivity extends the lock of a running work item. ErrLockLost when
	// the lock cannot be extended any more.
	RenewActivity(ctx context.Context, item *ActivityWorkItem, lock time.Duration) error
	// CompleteActivity durably sends the result message to the instance's
	// partition, then deletes the work item.
	CompleteActivity(ctx context.Context, item *ActivityWorkItem, result *Message) error
	// AbandonActivity unlocks the work item so that it runs again after delay.
	// ErrLockLost, with nothing changed, when the item was fetched again or
	// is gone.
	AbandonActivity(ctx context.Context, item *ActivityWorkItem, delay time.Duration) error
	// DeadLetterActivity moves the work item to the dead-letter store with a
	// reason. ErrLockLost, with no dead letter written, when the item was
	// fetched again or is gone.
	DeadLetterActivity(ctx context.Context, item *ActivityWorkItem, reason string) error

	// GetInstance reads an instance's state; payloads only when withPayloads.
	GetInstance(ctx context.Context, instanceID string, withPayloads bool) (*InstanceState, error)
	// GetHistory reads the history of the instance's current execution.
	GetHistory(ctx context.Context, instanceID string) ([]*Event, error)
	// QueryInstances lists instances matching the query, one page at a time.
	QueryInstances(ctx context.Context, q InstanceQuery) (*InstancePage, error)
	// PurgeInstance deletes a terminal instance with its history and pending
	// rows. ErrNotTerminal for an instance that is still running.
	PurgeInstance(ctx context.Context, instanceID string) error
	// PurgeInstances purges every terminal instance matching the filter and
	// returns how many it purged. Non-terminal instances are never purged.
	PurgeInstances(ctx context.Context, filter InstanceQuery) (int, error)

	// ListDeadLetters lists dead letters, one page at a time.
	ListDeadLetters(ctx context.Context, pageSize int, continuation string) (*DeadLetterPage, error)
	// ReplayDeadLetter sends a dead letter back where it came from and removes it.
	ReplayDeadLetter(ctx context.Context, id string) error
	// DiscardDeadLetter deletes a dead letter. ReplayDeadLetter and
	// DiscardDeadLetter return an error wrapping ErrInvalidInput for a dead
	// letter that is not found (never written, already replayed or discarded).
	DiscardDeadLetter(ctx context.Context, id string) error

	// PublishHost records a live host with its registrations; hosts call it
	// periodically. ListHosts returns hosts seen within maxAge.
	PublishHost(ctx context.Context, host HostInfo) error
	ListHosts(ctx context.Context, maxAge time.Duration) ([]HostInfo, error)
}

// Limits are a provider's size limits. Zero means no limit.
type Limits struct {
	// MaxPayloadBytes bounds one payload (input, output, event data).
	MaxPayloadBytes int
	// MaxInstanceIDLength bounds instance ids, in bytes.
	MaxInstanceIDLength int
}

// CommitToken is the opaque guard of an instance: the provider returns it with
// a load or commit and rejects a commit whose token is no longer current.
type CommitToken string

// InstanceState is what the provider stores about an instance (the instance row).
type InstanceState struct {
	InstanceID   string     `json:"instanceId"`
	ExecutionID  string     `json:"executionId"`
	Name         string     `json:"name"`
	Version      string     `json:"version,omitempty"`
	Status       Status     `json:"status"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	CompletedAt  time.Time  `json:"completedAt,omitzero"`
	CustomStatus []byte     `json:"customStatus,omitempty"`
	Input        []byte     `json:"input,omitempty"`
	Output       []byte     `json:"output,omitempty"`
	Failure      *Failure   `json:"failure,omitempty"`
	Parent       *ParentRef `json:"parent,omitempty"`
	// HistoryEvents and HistoryBytes measure the current execution's history.
	HistoryEvents int   `json:"historyEvents"`
	HistoryBytes  int64 `json:"historyBytes"`
}

// InstanceSnapshot is a loaded instance.
type InstanceSnapshot struct {
	State   *InstanceState
	History []*Event
	Token   CommitToken
}

// TimerRow is a pending durable timer (a T| row in the Azure layout).
type TimerRow struct {
	InstanceID  string    `json:"inst"`
	ExecutionID string    `json:"exec"`
	TaskID      int64     `json:"task"`
	FireAt      time.Time `json:"fireAt"`
}

// ActivityTask is a dispatched activity (an A| row, and a work item when offloaded).
type ActivityTask struct {
	Partition   int       `json:"p"`
	InstanceID  string    `json:"inst"`
	ExecutionID string    `json:"exec"`
	TaskID      int64     `json:"task"`
	Name        string    `json:"name"`
	Version     string    `json:"ver,omitempty"`
	Input       []byte    `json:"input,omitempty"`
	ScheduledAt time.Time `json:"at"`
	// Trace is the trace of the orchestration's execution, whose span is
	// the parent of the activity's; nil without tracing.
	Trace *TraceContext `json:"trace,omitempty"`
}

// ActivityWorkItem is an activity fetched from the shared work-item queue.
type ActivityWorkItem struct {
	Task         *ActivityTask
	DequeueCount int
	// Receipt is the provider's lock handle.
	Receipt any
}

// PartitionState is the pending work of a partition, read when it is opened.
type PartitionState struct {
	Timers     []TimerRow
	Activities []*ActivityTask
	Outbox     []*OutboxUnit
}

// OutboxUnit is the outbox of one committed episode: messages stored with the
// commit and not yet known to be durable at their destinations.
type OutboxUnit struct {
	Ref      OutboxRef
	Messages []*Message
}

// Episode is the outcome of running one instance over its new messages: all
// that one atomic commit writes.
type Episode struct {
	InstanceID string
	// Token is the token the state was read with; empty for a new instance.
	Token CommitToken
	// State is the instance row after the episode.
	State *InstanceState
	// NewExecution means History starts a new execution (continue-as-new,
	// restart): the previous execution's history is dropped.
	NewExecution bool
	// History is appended to the execution's history (Seq already set).
	History []*Event
	// Timers, activities and outbox rows to add and remove. A removed row
	// always exists: it was added by an earlier commit.
	TimersAdded       []TimerRow
	TimersRemoved     []TimerRow
	ActivitiesAdded   []*ActivityTask
	ActivitiesRemoved []*ActivityTask
	// PendingTimers and PendingActivities are the complete sets after the
	// episode (the deltas above applied). A provider may store these instead
	// of the deltas, for example packed into one row per instance.
	PendingTimers     []TimerRow
	PendingActivities []*ActivityTask
	// Outbox holds messages to other instances; they are stored with the
	// commit, as one unit named OutboxID, and sent after it. Empty when the
	// episode sends nothing.
	OutboxID string
	Outbox   []*Message
	// Consumed are the messages the episode consumed. The runtime deletes the
	// fetched ones after the commit; providers may ignore this field.
	Consumed []*Message
}

// CommitBatch is one or more episodes of one partition, committed together.
type CommitBatch struct {
	Episodes []*Episode
	// OutboxDelivered lists outbox units of this partition all of whose
	// messages are durable at their destinations; they are deleted with the
	// batch. A unit already gone is not an error.
	OutboxDelivered []OutboxRef
}

// CommitResult is the outcome of one episode of a batch.
type CommitResult struct {
	Token CommitToken
	Err   error
}

// InstanceQuery filters instances. Zero fields do not filter.
type InstanceQuery struct {
	Statuses         []Status
	Name             string
	CreatedFrom      time.Time // inclusive
	CreatedTo        time.Time // exclusive
	InstanceIDPrefix string
	// PageSize bounds the page (default 100, at most 1000).
	PageSize int
	// Continuation is the token of the previous page.
	Continuation string
	// WithPayloads includes input, output and custom status.
	WithPayloads bool
}

// InstancePage is one page of a query.
type InstancePage struct {
	Instances []*InstanceState
	// Continuation is empty on the last page.
	Continuation string
}

// DeadLetter is a message that could not be processed.
type DeadLetter struct {
	ID         string    `json:"id"`
	Partition  int       `json:"partition"` // -1 for work items
	Reason     string    `json:"reason"`
	InstanceID string    `json:"instanceId,omitempty"`
	At         time.Time `json:"at"`
	// Message or Activity is set when the item could be decoded; Raw otherwise.
	Message      *Message      `json:"message,omitempty"`
	Activity     *ActivityTask `json:"activity,omitempty"`
	Raw          []byte        `json:"raw,omitempty"`
	DequeueCount int           `json:"dequeueCount"`
}

// DeadLetterPage is one page of dead letters.
type DeadLetterPage struct {
	DeadLetters  []*DeadLetter
	Continuation string
}

// HostInfo describes a live host and what it has registered.
type HostInfo struct {
	ID             string        `json:"id"`
	StartedAt      time.Time     `json:"startedAt"`
	LastSeen       time.Time     `json:"lastSeen"`
	Orchestrations []NameVersion `json:"orchestrations"`
	Activities     []NameVersion `json:"activities"`
	Partitions     []int         `json:"partitions,omitempty"`
}

// NameVersion names a registration.
type NameVersion struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// TaskHubAdmin is implemented by providers that can create and delete their storage.
type TaskHubAdmin interface {
	CreateTaskHub(ctx context.Context) error
	DeleteTaskHub(ctx context.Context) error
}
