package core

import (
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a Runtime. Zero fields take the defaults given.
type Options struct {
	// Provider is the storage. Required.
	Provider Provider
	// Registry holds what this host can run. Required.
	Registry *Registry
	// Ownership decides which partitions this host runs. Default: OwnAll.
	Ownership Ownership
	// HostID names this host in logs, leases and the hosts record.
	// Default: hostname-pid.
	HostID string
	// Codec encodes payloads. Default: JSONCodec. Every host and client of a
	// task hub must use the same codec.
	Codec Codec
	// Logger receives the runtime's logs. Default: no logging.
	Logger *zerolog.Logger
	// Clock is the source of time. Default: the real clock.
	Clock Clock

	// OrchestrationConcurrency bounds the episodes one partition runs at once
	// (loading, replaying). Default 16.
	OrchestrationConcurrency int
	// ActivityConcurrency bounds the activities this host runs at once, local
	// and from the work-item queue together. Default 64.
	ActivityConcurrency int
	// ActivityBacklog bounds the activities of this host's partitions that
	// wait in memory for a free slot, in dispatch order, instead of going
	// through the shared work-item queue; only those beyond it are
	// offloaded. They wait safely: each is durable in its partition's
	// pending activities, and the partition's next owner runs those that
	// had not started here. Default 10,000; negative: none wait (an
	// activity that finds no free slot is offloaded at once).
	ActivityBacklog int
	// MaxBatch is the most control messages fetched at once per partition.
	// Default 32. A provider that packs several messages into one queue
	// message counts queue messages: the Azure provider may return up to
	// 32 messages for each.
	MaxBatch int
	// LockDuration is how long fetched control messages stay locked. Default 1m.
	LockDuration time.Duration
	// ActivityLockDuration is how long a work item stays locked; running
	// activities renew it every third of it. Default 1m.
	ActivityLockDuration time.Duration
	// PollMinInterval and PollMaxInterval bound the idle backoff of queue
	// polling: after an empty poll the interval doubles up to the maximum, and
	// work resets it to the minimum. Defaults 10ms and 1s. The maximum is the
	// latency of a message sent from another process to an idle partition,
	// and sets the idle cost: one dequeue per partition per PollMaxInterval.
	PollMinInterval time.Duration
	PollMaxInterval time.Duration
	// OffloadActivities sends every activity through the shared work-item
	// queue instead of running it on the owning host when it can. Default false.
	OffloadActivities bool
	// NoInMemoryDelivery turns off delivering messages between partitions of
	// this host in memory; they then always go through the provider. Default false.
	NoInMemoryDelivery bool
	// ExecutorCacheSize is how many instances stay in memory between
	// episodes, to continue without replay. 0 means the default 10,000;
	// a negative value turns the cache off.
	ExecutorCacheSize int
	// MaxHistoryEvents and MaxHistoryBytes cap an execution's history; an
	// instance over the cap fails with ErrHistoryTooLarge. Defaults 100,000
	// events and 64 MiB; negative turns a cap off.
	MaxHistoryEvents int
	MaxHistoryBytes  int64
	// MaxDequeueCount: a message handed out more often than this is poison.
	// It is dead-lettered and its instance fails with ErrPoison. Default 10.
	MaxDequeueCount int
	// HostPublishInterval is how often the host record is refreshed. Default 15s.
	HostPublishInterval time.Duration
	// TracerProvider, when set, makes the runtime emit OpenTelemetry spans:
	// one per orchestration execution, per activity attempt and per fired
	// timer, parented as the work was (see docs/operations.md, "Tracing").
	// Install TraceIDGenerator in it (sdktrace.WithIDGenerator), so that
	// execution spans get the ids their children point to. Default: no spans.
	TracerProvider trace.TracerProvider
}

func (o *Options) withDefaults() (Options, error) {
	c := *o
	if c.Provider == nil {
		return c, fmt.Errorf("%w: Options.Provider is required", ErrInvalidInput)
	}
	if c.Registry == nil {
		return c, fmt.Errorf("%w: Options.Registry is required", ErrInvalidInput)
	}
	if c.Provider.Partitions() < 1 {
		return c, fmt.Errorf("%w: provider reports %d partitions", ErrInvalidInput, c.Provider.Partitions())
	}
	if c.Ownership == nil {
		c.Ownership = OwnAll{Partitions: c.Provider.Partitions()}
	}
	if c.HostID == "" {
		h, _ := os.Hostname()
		c.HostID = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if c.Codec == nil {
		c.Codec = JSONCodec{}
	}
	if c.Logger == nil {
		l := zerolog.Nop()
		c.Logger = &l
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.OrchestrationConcurrency, 16)
	def(&c.ActivityConcurrency, 64)
	def(&c.ActivityBacklog, 10000)
	def(&c.MaxBatch, 32)
	def(&c.ExecutorCacheSize, 10000)
	def(&c.MaxHistoryEvents, 100000)
	def(&c.MaxDequeueCount, 10)
	if c.MaxHistoryBytes == 0 {
		c.MaxHistoryBytes = 64 << 20
	}
	defD(&c.LockDuration, time.Minute)
	defD(&c.ActivityLockDuration, time.Minute)
	defD(&c.PollMinInterval, 10*time.Millisecond)
	defD(&c.PollMaxInterval, time.Second)
	defD(&c.HostPublishInterval, 15*time.Second)
	switch {
	case c.OrchestrationConcurrency < 1, c.ActivityConcurrency < 1, c.MaxBatch < 1, c.MaxDequeueCount < 1:
		return c, fmt.Errorf("%w: concurrency, MaxBatch and MaxDequeueCount must be positive", ErrInvalidInput)
	case c.PollMinInterval < 0 || c.PollMaxInterval < c.PollMinInterval:
		return c, fmt.Errorf("%w: PollMaxInterval (%s) must be at least PollMinInterval (%s)", ErrInvalidInput, c.PollMaxInterval, c.PollMinInterval)
	case c.LockDuration < time.Second || c.ActivityLockDuration < time.Second:
		return c, fmt.Errorf("%w: lock durations must be at least 1s", ErrInvalidInput)
	}
	return c, nil
}
