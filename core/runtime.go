package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"
)

// Runtime runs orchestrations and activities on this host: episodes for the
// partitions it owns, activities on the owner or from the shared work-item
// queue, and timers in memory.
type Runtime struct {
	opts    Options
	p       Provider
	log     zerolog.Logger
	clock   Clock
	engine  *engineConfig
	tracing *tracing // nil without Options.TracerProvider
	cache   *executorCache
	hub     *completionHub

	activitySlots chan struct{}
	// backlog holds activities of owned partitions that wait for a slot.
	backlog *activityBacklog
	// activityWake tells the work-item poller that this host has just
	// enqueued work items, so that it does not wait out its idle backoff.
	activityWake chan struct{}

	mu      sync.Mutex
	workers map[int]*partitionWorker
	running map[activityKey]context.CancelFunc
	// cancelled remembers recent cancellations of activities that were not
	// running here yet (see cancelRunning).
	cancelled *lru.Cache[activityKey, struct{}]

	startOnce sync.Once
	started   atomic.Bool
	stopping  atomic.Bool
	baseCtx   context.Context // lives until Shutdown ends; parent of all work
	cancelAll context.CancelFunc
	runCancel context.CancelFunc // stops Ownership.Run
	runCtx    context.Context
	drainCtx  atomic.Pointer[context.Context]
	ownDone   chan error
	bg        sync.WaitGroup // activity poller, host publisher, local activities

	stats runtimeStats
	// busy counts work in flight (batches, activities, re-queues), so that
	// Idle can tell when nothing moves; the tester advances virtual time then.
	busy atomic.Int64
}

// cancelledCacheSize bounds the cancellations remembered for activities
// that have not started here yet.
const cancelledCacheSize = 4096

type activityKey struct {
	instance, execution string
	task                int64
}

// runtimeStats are counters for tests and metrics.
type runtimeStats struct {
	episodes, cacheHits, cacheMisses, conflicts, activitiesLocal, activitiesOffloaded, activitiesRemote atomic.Int64
	deliveredInMemory, deadLettered                                                                     atomic.Int64

	activityFailures, orchestrationFailures [numFailureClasses]atomic.Int64
	activityStartDelay, episodeDuration     histogram
	startToComplete                         [len(completionStatuses)]histogram
}

// The runtime keeps its latency histograms and failure counts itself, as
// fixed buckets of atomic counters, instead of calling an observer that a
// metrics library implements. Recording is then a scan of a short array and
// two atomic adds: no allocation, no lock, no interface call and no label
// lookup on the episode and activity paths, and core stays free of any
// metrics dependency. Readers take snapshots with Stats, like the other
// counters, so package metrics stays stateless and pays the conversion at
// scrape time only.

// latencyBounds are the upper bounds of the latency histograms' buckets: wide
// enough for an episode (milliseconds) as for an instance's whole life (days).
var latencyBounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
	15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour,
}

// histogram counts observations in the buckets of latencyBounds.
type histogram struct {
	buckets [len(latencyBounds) + 1]atomic.Uint64 // the last one: above every bound
	sum     atomic.Int64                          // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	d = max(d, 0) // clocks of different hosts may disagree a little
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: append([]time.Duration(nil), latencyBounds[:]...), Counts: make([]uint64, len(latencyBounds))}
	for i := range h.buckets {
		s.Count += h.buckets[i].Load()
		if i < len(latencyBounds) {
			s.Counts[i] = s.Count
		}
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Histogram is a snapshot of a latency distribution in fixed buckets.
type Histogram struct {
	// Bounds are the buckets' upper bounds, ascending.
	Bounds []time.Duration
	// Counts[i] is the number of observations no longer than Bounds[i]
	// (cumulative, as Prometheus counts buckets).
	Counts []uint64
	// Count is the number of observations, Sum their total.
	Count uint64
	Sum   time.Duration
}

// failureClass is what failures are counted by: the engine's own failure
// types, and the ErrorKind for the others.
type failureClass uint8

const (
	failureApplication failureClass = iota
	failurePanic
	failureCanceled
	failureTimeout
	failureTerminated
	failureNonDeterminism
	failureNotRegistered
	failureHistoryTooLarge
	failureInvalidInput
	failureInstanceExists
	failurePoison
	failureConfiguration
	failureInfrastructure
	numFailureClasses
)

var failureClassNames = [numFailureClasses]string{
	failureApplication:     "application",
	failurePanic:           "panic",
	failureCanceled:        "canceled",
	failureTimeout:         "timeout",
	failureTerminated:      "terminated",
	failureNonDeterminism:  "nondeterminism",
	failureNotRegistered:   "not_registered",
	failureHistoryTooLarge: "history_too_large",
	failureInvalidInput:    "invalid_input",
	failureInstanceExists:  "instance_exists",
	failurePoison:          "poison",
	failureConfiguration:   "configuration",
	failureInfrastructure:  "infrastructure",
}

var failureClassByType = map[string]failureClass{
	FailureTypePanic:           failurePanic,
	FailureTypeCanceled:        failureCanceled,
	FailureTypeTimeout:         failureTimeout,
	FailureTypeTerminated:      failureTerminated,
	FailureTypeNonDeterminism:  failureNonDeterminism,
	FailureTypeNotRegistered:   failureNotRegistered,
	FailureTypeHistoryTooLarge: failureHistoryTooLarge,
	FailureTypeInvalidInput:    failureInvalidInput,
	FailureTypeInstanceExists:  failureInstanceExists,
	FailureTypePoison:          failurePoison,
}

func classify(f *Failure) failureClass {
	if f == nil {
		return failureInfrastructure
	}
	if c, ok := failureClassByType[f.Type]; ok {
		return c
	}
	switch f.Kind {
	case KindConfiguration:
		return failureConfiguration
	case KindInfrastructure:
		return failureInfrastructure
	}
	return failureApplication
}

// completionStatuses are the statuses start-to-complete latencies are kept for.
var completionStatuses = [...]Status{StatusCompleted, StatusFailed, StatusTerminated}

// activityStarted records the wait of an activity between its scheduling and
// the start of this attempt.
func (s *runtimeStats) activityStarted(t *ActivityTask, now time.Time) {
	if !t.ScheduledAt.IsZero() {
		s.activityStartDelay.observe(now.Sub(t.ScheduledAt))
	}
}

// activityFailed counts an activity attempt that failed.
func (s *runtimeStats) activityFailed(f *Failure) { s.activityFailures[classify(f)].Add(1) }

// episodeCommitted records a committed episode: its duration since began
// (real time: it measures work, not durable time; zero when unknown) and, when
// it ended the execution, the instance's time from creation to completion.
func (s *runtimeStats) episodeCommitted(began time.Time, st *InstanceState) {
	s.episodes.Add(1)
	if !began.IsZero() {
		s.episodeDuration.observe(time.Since(began))
	}
	if st.Status == StatusFailed {
		s.orchestrationFailures[classify(st.Failure)].Add(1)
	}
	// Last, so that a reader who sees the completion sees the rest too.
	for i, c := range completionStatuses {
		if st.Status == c {
			s.startToComplete[i].observe(st.CompletedAt.Sub(st.CreatedAt))
		}
	}
}

func failureCounts(c *[numFailureClasses]atomic.Int64) map[string]int64 {
	m := make(map[string]int64, numFailureClasses)
	for i := range c {
		m[failureClassNames[i]] = c[i].Load()
	}
	return m
}

// RuntimeStats is a snapshot of the runtime's counters.
type RuntimeStats struct {
	Episodes            int64 // episodes committed
	CacheHits           int64 // episodes that continued a cached executor
	CacheMisses         int64 // episodes without a cached executor: history loaded and replayed, or a new instance
	Conflicts           int64 // commits rejected by their token
	ActivitiesLocal     int64 // activities run on the owning host
	ActivitiesOffloaded int64 // activities sent to the work-item queue
	ActivitiesRemote    int64 // work items this host ran from the queue
	DeliveredInMemory   int64 // messages delivered in memory: between local partitions, and results of work items run here
	DeadLettered        int64 // messages dead-lettered as poison
	CachedInstances     int   // instances in the executor cache now
	ActivitiesWaiting   int   // activities of owned partitions waiting in memory for a free slot now

	// ActivityFailures counts the activity attempts this host ran that
	// failed (and work items it dead-lettered as poison);
	// OrchestrationFailures the executions whose commit on this host ended
	// them Failed. Both are keyed by failure kind, every kind present:
	// application (an error returned by user code), panic, canceled,
	// timeout, terminated, nondeterminism, not_registered,
	// history_too_large, invalid_input, instance_exists, poison, and
	// configuration or infrastructure for the other failures of those
	// ErrorKinds.
	ActivityFailures      map[string]int64
	OrchestrationFailures map[string]int64
	// ActivityStartDelay is the time from an activity's scheduling (its
	// ActivityScheduled event) to the start of each attempt on this host.
	ActivityStartDelay Histogram
	// EpisodeDuration is the time an episode took on this host, from the
	// start of its preparation (load or cached executor, replay, run) to
	// the end of its commit. Only committed episodes count.
	EpisodeDuration Histogram
	// StartToComplete is, per final status (Completed, Failed, Terminated),
	// the time from an instance's creation (InstanceState.CreatedAt, kept
	// across continue-as-new) to the commit that ended it on this host.
	StartToComplete map[Status]Histogram
}

// NewRuntime checks the options and returns a runtime that is not started yet.
func NewRuntime(o Options) (*Runtime, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	cacheSize := opts.ExecutorCacheSize
	maxEvents, maxBytes := opts.MaxHistoryEvents, opts.MaxHistoryBytes
	if maxEvents < 0 {
		maxEvents = 0
	}
	if maxBytes < 0 {
		maxBytes = 0
	}
	cancelled, err := lru.New[activityKey, struct{}](cancelledCacheSize)
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		opts:  opts,
		p:     opts.Provider,
		log:   opts.Logger.With().Str("host", opts.HostID).Logger(),
		clock: opts.Clock,
		engine: &engineConfig{registry: opts.Registry, codec: opts.Codec, logger: *opts.Logger,
			maxHistoryEvents: maxEvents, maxHistoryBytes: maxBytes, tracing: opts.TracerProvider != nil},
		cache:         newExecutorCache(cacheSize),
		hub:           newCompletionHub(),
		activitySlots: make(chan struct{}, opts.ActivityConcurrency),
		backlog:       newActivityBacklog(opts.ActivityBacklog),
		activityWake:  make(chan struct{}, 1),
		workers:       map[int]*partitionWorker{},
		running:       map[activityKey]context.CancelFunc{},
		cancelled:     cancelled,
		ownDone:       make(chan error, 1),
	}
	r.tracing = newTracing(opts.TracerProvider, opts.HostID, r.log)
	return r, nil
}

// HostID is this host's id.
func (r *Runtime) HostID() string { return r.opts.HostID }

// Start begins processing: ownership, the work-item queue, and the host
// record. It returns at once; work runs until Shutdown.
func (r *Runtime) Start(ctx context.Context) error {
	err := fmt.Errorf("%w: a runtime starts once", ErrInvalidInput)
	r.startOnce.Do(func() {
		err = nil
		r.baseCtx, r.cancelAll = context.WithCancel(context.WithoutCancel(ctx))
		runCtx, cancel := context.WithCancel(r.baseCtx)
		r.runCancel = cancel
		r.runCtx = runCtx
		r.started.Store(true)
		go func() { r.ownDone <- r.opts.Ownership.Run(runCtx, r) }()
		r.bg.Add(2)
		go r.pollActivities()
		go r.publishHost()
	})
	return err
}

// Shutdown stops the runtime gracefully, like http.Server.Shutdown: it stops
// fetching, lets in-flight episodes and activities finish until ctx is done,
// abandons what is left and releases every partition. It returns ctx.Err()
// when the deadline cut the drain short.
func (r *Runtime) Shutdown(ctx context.Context) error {
	if !r.started.Load() || !r.stopping.CompareAndSwap(false, true) {
		return nil
	}
	r.drainCtx.Store(&ctx)
	r.runCancel()
	var ownErr error
	select {
	case ownErr = <-r.ownDone:
	case <-ctx.Done():
	}
	bgDone := make(chan struct{})
	go func() { r.bg.Wait(); close(bgDone) }()
	select {
	case <-bgDone:
	case <-ctx.Done():
	}
	r.cancelAll()
	<-bgDone
	r.cache.dropWhere(func(string, *cachedInstance) bool { return true })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if ownErr != nil && !errors.Is(ownErr, context.Canceled) {
		return ownErr
	}
	return nil
}

// drainContext is the deadline for draining released partitions during a shutdown.
func (r *Runtime) drainContext(ctx context.Context) context.Context {
	if p := r.drainCtx.Load(); p != nil {
		return *p
	}
	return ctx
}

// Stats returns the runtime's counters.
func (r *Runtime) Stats() RuntimeStats {
	s := &r.stats
	out := RuntimeStats{Episodes: s.episodes.Load(), CacheHits: s.cacheHits.Load(), CacheMisses: s.cacheMisses.Load(),
		Conflicts: s.conflicts.Load(), ActivitiesLocal: s.activitiesLocal.Load(), ActivitiesOffloaded: s.activitiesOffloaded.Load(),
		ActivitiesRemote: s.activitiesRemote.Load(), DeliveredInMemory: s.deliveredInMemory.Load(),
		DeadLettered: s.deadLettered.Load(), CachedInstances: r.cache.len(), ActivitiesWaiting: r.backlog.len(),
		ActivityFailures: failureCounts(&s.activityFailures), OrchestrationFailures: failureCounts(&s.orchestrationFailures),
		ActivityStartDelay: s.activityStartDelay.snapshot(), EpisodeDuration: s.episodeDuration.snapshot(),
		StartToComplete: make(map[Status]Histogram, len(completionStatuses))}
	for i, st := range completionStatuses {
		out.StartToComplete[st] = s.startToComplete[i].snapshot()
	}
	return out
}

// Idle reports whether this host has no work in flight: no batch running, no
// activity running or waiting for a slot, nothing waiting in a partition's
// in-memory inbox. Work that waits for a timer or in the provider's queues
// is not counted.
func (r *Runtime) Idle() bool {
	if r.busy.Load() != 0 || r.backlog.len() != 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		w.mu.Lock()
		n := len(w.inbox)
		w.mu.Unlock()
		if n > 0 {
			return false
		}
	}
	return r.busy.Load() == 0
}

// OwnedPartitions lists the partitions this host runs now.
func (r *Runtime) OwnedPartitions() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, 0, len(r.workers))
	for p := 0; p < r.p.Partitions(); p++ {
		if r.workers[p] != nil {
			out = append(out, p)
		}
	}
	return out
}

// PartitionAcquired implements PartitionHandler: it opens the partition and
// starts its dispatcher.
func (r *Runtime) PartitionAcquired(ctx context.Context, p int) error {
	if r.stopping.Load() {
		return ErrRuntimeStopped
	}
	r.mu.Lock()
	if r.workers[p] != nil {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	state, err := r.p.OpenPartition(ctx, p)
	if err != nil {
		r.log.Warn().Err(err).Int("partition", p).Msg("open partition")
		return fmt.Errorf("open partition %d: %w", p, err)
	}
	w := newPartitionWorker(r, p)
	r.mu.Lock()
	r.workers[p] = w
	r.mu.Unlock()
	w.recover(state)
	go w.run()
	r.log.Info().Int("partition", p).Int("timers", len(state.Timers)).Int("activities", len(state.Activities)).
		Int("outbox", len(state.Outbox)).Msg("partition acquired")
	return nil
}

// PartitionReleased implements PartitionHandler: it stops the dispatcher,
// drains until ctx is done (or the Shutdown deadline, whichever comes first)
// and forgets the partition's cached state.
func (r *Runtime) PartitionReleased(ctx context.Context, p int) {
	r.mu.Lock()
	w := r.workers[p]
	r.mu.Unlock()
	if w == nil {
		return
	}
	// Drain until the first of the two deadlines: the ownership manager's
	// (its lease may be about to expire) and, during Shutdown, the
	// shutdown's.
	dctx := ctx
	if d := r.drainContext(ctx); d != ctx {
		var cancel context.CancelFunc
		dctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(d, cancel)()
	}
	w.stop(dctx)
	r.mu.Lock()
	delete(r.workers, p)
	r.mu.Unlock()
	w.handOff(ctx)
	r.cache.dropWhere(func(_ string, ci *cachedInstance) bool { return ci.exec.partition == p })
	// Waiters on its instances stop relying on this host's notices.
	r.hub.publishWhere(func(id string) bool { return r.p.PartitionOf(id) == p })
	r.p.ClosePartition(p)
	r.log.Info().Int("partition", p).Msg("partition released")
}

func (r *Runtime) worker(p int) *partitionWorker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workers[p]
}

// deliver hands messages to local partitions in memory where allowed, and
// sends the rest through the provider. It reports which messages it sent
// through the provider.
func (r *Runtime) route(ctx context.Context, msgs []*Message, origin *OutboxRef) (viaProvider []*Message, err error) {
	for _, m := range msgs {
		if !r.opts.NoInMemoryDelivery && m.VisibleAt.IsZero() {
			if w := r.worker(r.p.PartitionOf(m.InstanceID)); w != nil {
				c := *m
				c.Origin = origin
				if w.deliver(&c) {
					r.stats.deliveredInMemory.Add(1)
					continue
				}
			}
		}
		viaProvider = append(viaProvider, m)
	}
	if len(viaProvider) == 0 {
		return nil, nil
	}
	return viaProvider, r.p.SendMessages(ctx, viaProvider)
}

// wake tells a local partition that a message was sent to it through the provider.
func (r *Runtime) wake(p int) {
	if w := r.worker(p); w != nil {
		w.pollNow()
	}
}

// Client returns a client that shares the runtime's provider and codec and
// learns of completions on this host without polling.
func (r *Runtime) Client() *Client {
	c := NewClient(r.p, WithClientCodec(r.opts.Codec))
	c.hub = r.hub
	c.wake = r.wake
	c.local = func(p int) bool { return r.worker(p) != nil }
	c.clock = r.clock
	c.tracer = r.opts.TracerProvider
	return c
}

func (r *Runtime) registrations() HostInfo {
	return HostInfo{ID: r.opts.HostID, Orchestrations: r.opts.Registry.Orchestrations(),
		Activities: r.opts.Registry.Activities(), Partitions: r.OwnedPartitions()}
}

func (r *Runtime) publishHost() {
	defer r.bg.Done()
	started := r.clock.Now()
	for {
		info := r.registrations()
		info.StartedAt = started
		if err := r.p.PublishHost(r.runCtx, info); err != nil && r.runCtx.Err() == nil {
			r.log.Warn().Err(err).Msg("publish host record")
		}
		if !r.sleep(r.runCtx, r.opts.HostPublishInterval) || r.stopping.Load() {
			return
		}
	}
}

// sleep waits d on the runtime's clock; false when ctx ended first.
func (r *Runtime) sleep(ctx context.Context, d time.Duration) bool {
	ch := make(chan struct{})
	stop := r.clock.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		stop()
		return false
	}
}
