package core

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"time"
)

// ActivityDeleter is an optional extension of Provider: DeleteActivities
// removes fetched work items without sending results; a work item already
// gone, or locked again by another fetch, is not an error. One call may
// settle several items at the cost of one (the Azure provider deletes a pack
// of work items whose items are all in the call once).
//
// With it, the host that ran an offloaded activity and owns the instance's
// partition hands the result to the partition in memory, and deletes the
// work item only once a commit has consumed the result: the result skips
// the control queue (a send, a dequeue and a delete), and a crash before the
// commit loses nothing, because the work item, still locked, runs again when
// its lock expires. Without it, every result goes through CompleteActivity.
type ActivityDeleter interface {
	DeleteActivities(ctx context.Context, items []*ActivityWorkItem) error
}

// ActivityBatchFetcher is an optional extension of Provider:
// FetchActivities returns up to max work items (none, not an error, when
// the queue is empty), each locked for lock; it does not wait. The runtime
// asks for as many as it has free activity slots, so that a provider that
// carries several work items in one queue message keeps no more than this
// host can start, and leaves the rest to other hosts.
type ActivityBatchFetcher interface {
	FetchActivities(ctx context.Context, max int, lock time.Duration) ([]*ActivityWorkItem, error)
}

// maxFetchActivities bounds the activity slots one fetch fills.
const maxFetchActivities = 32

// deleteWorkItems deletes work items whose results were consumed (or will be
// recovered from the pending rows), best effort: one left behind runs again
// when its lock expires, and its result is dropped as a duplicate.
func (r *Runtime) deleteWorkItems(ctx context.Context, items []*ActivityWorkItem) {
	d, ok := r.p.(ActivityDeleter)
	if !ok || len(items) == 0 {
		return
	}
	if err := d.DeleteActivities(ctx, items); err != nil && ctx.Err() == nil {
		r.log.Warn().Err(err).Int("items", len(items)).Msg("delete work items")
	}
}

// wakeActivities tells the work-item poller that work items were enqueued.
func (r *Runtime) wakeActivities() {
	select {
	case r.activityWake <- struct{}{}:
	default:
	}
}

func (r *Runtime) tryActivitySlot() bool {
	select {
	case r.activitySlots <- struct{}{}:
		return true
	default:
		return false
	}
}

// releaseActivitySlot gives a slot back, or rather hands it to the oldest
// activity waiting in the backlog, which starts in it.
func (r *Runtime) releaseActivitySlot() {
	b := r.backlog
	b.mu.Lock()
	next := b.pop()
	if next == nil {
		<-r.activitySlots
	}
	b.mu.Unlock()
	if next != nil {
		r.runLocal(next.partition, next.task)
	}
}

// runLocal runs an activity of partition p on this host, in a slot the
// caller holds, and delivers its result to the partition in memory. If the
// partition has moved by then, the result is dropped: the activity row stays
// and the new owner runs it again.
func (r *Runtime) runLocal(p int, t *ActivityTask) {
	r.stats.activitiesLocal.Add(1)
	r.inSlot(func() {
		ctx, cancel := r.activityContext(t)
		defer cancel()
		labels := pprof.Labels("partition", strconv.Itoa(p), "kind", "activity", "activity", t.Name)
		var msg *Message
		pprof.Do(ctx, labels, func(ctx context.Context) { msg = r.execute(ctx, t) })
		if r.baseCtx.Err() != nil {
			return
		}
		if w := r.worker(p); w != nil {
			w.deliver(msg)
		}
	})
}

// inSlot runs f in a goroutine of its own, in an activity slot the caller
// holds, which it gives back when f returns.
func (r *Runtime) inSlot(f func()) {
	r.bg.Add(1)
	r.busy.Add(1)
	go func() {
		defer r.bg.Done()
		defer r.busy.Add(-1)
		defer r.releaseActivitySlot()
		f()
	}()
}

func (r *Runtime) activityContext(t *ActivityTask) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.baseCtx)
	k := keyOf(t)
	r.mu.Lock()
	r.running[k] = cancel
	if r.cancelled.Contains(k) {
		// Cancelled before it started here (a work item fetched late).
		r.cancelled.Remove(k)
		cancel()
	}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.running, k)
		r.mu.Unlock()
		cancel()
	}
}

// cancelRunning cancels an activity the orchestration no longer wants, if it
// runs here; one waiting in the backlog is dropped from it. One that has not
// started yet (an offloaded work item this host has not fetched yet) is
// remembered, and cancelled when it starts here. Cancellation is best
// effort: a work item another host runs runs to the end.
func (r *Runtime) cancelRunning(t *ActivityTask) {
	if r.backlog.remove(t) {
		return // it waited for a slot here: it never starts
	}
	k := keyOf(t)
	r.mu.Lock()
	cancel := r.running[k]
	if cancel == nil {
		r.cancelled.Add(k, struct{}{})
	}
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// execute runs the activity function and returns the result message.
func (r *Runtime) execute(ctx context.Context, t *ActivityTask) *Message {
	r.stats.activityStarted(t, r.clock.Now())
	ctx, span := r.tracing.startActivity(ctx, t)
	out, err := r.call(ctx, t)
	if err == nil {
		if limit := r.p.Limits().MaxPayloadBytes; limit > 0 && len(out) > limit {
			err = checkPayload(fmt.Sprintf("result of activity %q", t.Name), out, limit)
		}
	}
	endSpan(span, err)
	ev := &Event{Seq: -1, TaskID: t.TaskID, Time: r.clock.Now()}
	if err != nil {
		ev.Kind, ev.Failure = EventActivityFailed, userFailure(err)
		if r.baseCtx.Err() == nil { // an attempt cut short by the shutdown is not reported; it runs again
			r.stats.activityFailed(ev.Failure)
		}
	} else {
		ev.Kind, ev.Data = EventActivityCompleted, out
	}
	return &Message{ID: deterministicID(t.InstanceID, t.ExecutionID, "result", strconv.FormatInt(t.TaskID, 10)),
		InstanceID: t.InstanceID, ExecutionID: t.ExecutionID, Event: ev}
}

func (r *Runtime) call(ctx context.Context, t *ActivityTask) (out []byte, err error) {
	fn, _, err := r.opts.Registry.activity(t.Name, t.Version)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: fmt.Sprint(p), Stack: string(debug.Stack())}
		}
	}()
	return fn(&activityContext{Context: ctx, task: t, codec: r.opts.Codec, logger: r.log}, t.Input)
}

// pollActivities serves the shared work-item queue.
func (r *Runtime) pollActivities() {
	defer r.bg.Done()
	o := &r.opts
	interval := o.PollMinInterval
	for !r.stopping.Load() {
		select {
		case r.activitySlots <- struct{}{}:
		case <-r.baseCtx.Done():
			return
		}
		items, err := r.fetchWorkItems()
		if err != nil && r.baseCtx.Err() == nil {
			r.log.Warn().Err(err).Msg("fetch activity work item")
		}
		if len(items) == 0 {
			interval = nextWorkItemPoll(interval, o)
			if !r.sleepOrWake(interval) {
				return
			}
			continue
		}
		interval = o.PollMinInterval
		for _, item := range items {
			r.stats.activitiesRemote.Add(1)
			r.inSlot(func() { r.runWorkItem(item) })
		}
	}
}

// fetchWorkItems fetches work items for the slot the caller holds and, from
// a provider that fetches several at once, for the other free slots, which
// it takes; it gives back the slots it has no item for.
func (r *Runtime) fetchWorkItems() ([]*ActivityWorkItem, error) {
	lock := r.opts.ActivityLockDuration
	bf, ok := r.p.(ActivityBatchFetcher)
	if !ok {
		item, err := r.p.FetchActivity(r.baseCtx, lock)
		if item == nil {
			r.releaseActivitySlot()
			return nil, err
		}
		return []*ActivityWorkItem{item}, err
	}
	slots := 1
	for slots < maxFetchActivities && r.tryActivitySlot() {
		slots++
	}
	items, err := bf.FetchActivities(r.baseCtx, slots, lock)
	if len(items) > slots { // a provider's mistake: run none of the extra
		items = items[:slots]
	}
	for range slots - len(items) {
		r.releaseActivitySlot()
	}
	return items, err
}

// workItemIdleFactor: the shared work-item queue's idle polling interval
// grows to this many PollMaxIntervals (30s by default). This host's own
// offloads wake its poller in memory (wakeActivities), so the longer
// interval only delays work items that other hosts offload, or that
// reappear after a lock ran out, while this host's poller is idle; a poll
// that finds one goes back to PollMinInterval.
const workItemIdleFactor = 30

// nextWorkItemPoll is the work-item poller's interval after an empty poll:
// double the last one, from PollMinInterval up to workItemIdleFactor
// PollMaxIntervals.
func nextWorkItemPoll(last time.Duration, o *Options) time.Duration {
	return min(max(last*2, o.PollMinInterval), workItemIdleFactor*o.PollMaxInterval)
}

// sleepOrWake waits d on the runtime's clock, or until this host enqueues
// work items; false when the runtime stops.
func (r *Runtime) sleepOrWake(d time.Duration) bool {
	ch := make(chan struct{})
	stop := r.clock.AfterFunc(d, func() { close(ch) })
	defer stop()
	select {
	case <-ch:
		return true
	case <-r.activityWake:
		return true
	case <-r.runCtx.Done():
		return false
	}
}

func (r *Runtime) runWorkItem(item *ActivityWorkItem) {
	t := item.Task
	ctx := r.baseCtx
	log := r.log.With().Str("instance", t.InstanceID).Str("activity", t.Name).Int64("task", t.TaskID).Logger()
	if item.DequeueCount > r.opts.MaxDequeueCount {
		reason := fmt.Sprintf("poison: work item delivered %d times", item.DequeueCount)
		failure := &Failure{Kind: KindConfiguration, Type: FailureTypePoison,
			Message: fmt.Sprintf("activity %q (task %d) was dead-lettered: %s", t.Name, t.TaskID, reason)}
		msg := &Message{ID: deterministicID(t.InstanceID, t.ExecutionID, "result", strconv.FormatInt(t.TaskID, 10)),
			InstanceID: t.InstanceID, ExecutionID: t.ExecutionID,
			Event: &Event{Seq: -1, Kind: EventActivityFailed, TaskID: t.TaskID, Time: r.clock.Now(), Failure: failure}}
		if err := r.p.SendMessages(ctx, []*Message{msg}); err != nil {
			log.Warn().Err(err).Msg("report poison work item")
			return
		}
		r.stats.activityFailed(failure) // its failure was reported
		if err := r.p.DeadLetterActivity(ctx, item, reason); err != nil {
			log.Warn().Err(err).Msg("dead-letter work item")
			return
		}
		r.stats.deadLettered.Add(1)
		return
	}
	if !r.opts.Registry.HasActivity(t.Name, t.Version) {
		// Another host, or this one after a deploy, may know the activity:
		// waiting for it must never make the item poison. Before the
		// deliveries add up, put a fresh copy on the queue (its count
		// starts again) and delete this one. A copy left by a failed
		// delete runs too, and its result is dropped as a duplicate.
		if d, ok := r.p.(ActivityDeleter); ok && item.DequeueCount > 1 && item.DequeueCount >= r.opts.MaxDequeueCount-1 {
			if err := r.p.EnqueueActivities(ctx, []*ActivityTask{t}); err == nil {
				if err := d.DeleteActivities(ctx, []*ActivityWorkItem{item}); err != nil && ctx.Err() == nil {
					log.Warn().Err(err).Msg("delete re-queued unregistered work item")
				}
				return
			}
		}
		if err := r.p.AbandonActivity(ctx, item, unregisteredRetry); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("abandon unregistered work item")
		}
		return
	}
	actx, cancel := r.activityContext(t)
	defer cancel()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		every := r.opts.ActivityLockDuration / 3
		for r.sleep(actx, every) {
			if err := r.p.RenewActivity(actx, item, r.opts.ActivityLockDuration); err != nil {
				if errors.Is(err, ErrLockLost) {
					log.Warn().Err(err).Msg("activity lock lost; cancelling")
					cancel()
					return
				}
				log.Warn().Err(err).Msg("renew activity lock")
			}
		}
	}()
	var msg *Message
	labels := pprof.Labels("partition", strconv.Itoa(t.Partition), "kind", "activity", "activity", t.Name)
	pprof.Do(actx, labels, func(ctx context.Context) { msg = r.execute(ctx, t) })
	cancel()
	<-renewed
	if r.baseCtx.Err() != nil {
		abandonCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		_ = r.p.AbandonActivity(abandonCtx, item, 0)
		return
	}
	p := r.p.PartitionOf(t.InstanceID)
	if _, ok := r.p.(ActivityDeleter); ok && !r.opts.NoInMemoryDelivery {
		if w := r.worker(p); w != nil && w.deliverResult(msg, item) {
			r.stats.deliveredInMemory.Add(1)
			return
		}
	}
	if err := r.p.CompleteActivity(ctx, item, msg); err != nil {
		log.Warn().Err(err).Msg("complete work item; it will run again")
		return
	}
	r.wake(p)
}
