package core

import (
	"context"
	"errors"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

// partitionWorker is the dispatcher of one owned partition: it gathers
// messages (fetched from the control queue and delivered in memory), runs
// one episode per instance, commits them as one batch, and then does what
// the commit asks: run activities, arm timers, send the outbox, delete the
// consumed messages.
type partitionWorker struct {
	r      *Runtime
	p      int
	ctx    context.Context
	cancel context.CancelFunc
	stopCh chan struct{}
	done   chan struct{}
	wakeCh chan struct{}

	mu        sync.Mutex
	inbox     []*Message
	pollSoon  bool
	stopped   bool
	timers    map[timerKey]func() bool
	units     map[string]*pendingUnit
	delivered []OutboxRef
	retryActs []*ActivityTask
	// While a batch's outcomes run, offloaded activities gather here and
	// are enqueued in one call after them.
	collecting   bool
	batchOffload []*ActivityTask
	batchUnits   []outboxUnit
	batchPublish []*InstanceState // states for the waiters, published after the sends
	// workItems are work items whose results were delivered here in memory,
	// by result message id; they are deleted once a commit consumed the result.
	workItems map[string][]*ActivityWorkItem
}

type timerKey struct {
	instance, execution string
	task                int64
}

// pendingUnit is an outbox unit whose messages are not all durable at their
// destinations yet.
type pendingUnit struct {
	ref       OutboxRef
	remaining int
	resend    []*Message // messages to send (again) through the provider
}

func newPartitionWorker(r *Runtime, p int) *partitionWorker {
	ctx, cancel := context.WithCancel(r.baseCtx)
	return &partitionWorker{r: r, p: p, ctx: ctx, cancel: cancel, stopCh: make(chan struct{}), done: make(chan struct{}),
		wakeCh: make(chan struct{}, 1), timers: map[timerKey]func() bool{}, units: map[string]*pendingUnit{},
		workItems: map[string][]*ActivityWorkItem{}}
}

func (w *partitionWorker) signal() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

// deliver puts a message into the partition's in-memory inbox; false when
// the partition is no longer processed here.
func (w *partitionWorker) deliver(m *Message) bool {
	return w.deliverResult(m, nil)
}

// deliverResult delivers a message in memory; with item, the message is the
// result of that work item, which is kept until a commit consumes the result.
func (w *partitionWorker) deliverResult(m *Message, item *ActivityWorkItem) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	if item != nil {
		w.workItems[m.ID] = append(w.workItems[m.ID], item)
	}
	w.inbox = append(w.inbox, m)
	w.signal()
	return true
}

// takeWorkItems removes and returns the work items whose result is the message.
func (w *partitionWorker) takeWorkItems(msgID string) []*ActivityWorkItem {
	w.mu.Lock()
	defer w.mu.Unlock()
	items := w.workItems[msgID]
	delete(w.workItems, msgID)
	return items
}

func (w *partitionWorker) pollNow() {
	w.mu.Lock()
	w.pollSoon = true
	w.mu.Unlock()
	w.signal()
}

func (w *partitionWorker) takeInbox() (msgs []*Message, poll bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs, w.inbox = w.inbox, nil
	poll, w.pollSoon = w.pollSoon, false
	if len(msgs) > 0 {
		w.r.busy.Add(1) // released by the loop once the batch is done
	}
	return msgs, poll
}

// recover re-creates the partition's in-memory work from its pending rows.
func (w *partitionWorker) recover(st *PartitionState) {
	for _, t := range st.Timers {
		w.arm(t)
	}
	w.dispatch(w.ctx, st.Activities)
	for _, u := range st.Outbox {
		w.sendUnit(w.ctx, u.Ref, u.Messages)
	}
}

func (w *partitionWorker) run() {
	defer close(w.done)
	labels := pprof.Labels("partition", strconv.Itoa(w.p), "kind", "orchestration")
	pprof.Do(w.ctx, labels, func(ctx context.Context) { w.loop(ctx) })
}

func (w *partitionWorker) loop(ctx context.Context) {
	o := &w.r.opts
	interval := o.PollMinInterval
	nextPoll := time.Time{}
	for {
		select {
		case <-w.stopCh:
			return
		case <-ctx.Done():
			return
		default:
		}
		w.retryPending(ctx)
		local, pollNow := w.takeInbox()
		var fetched []*Message
		now := w.r.clock.Now()
		if pollNow || !now.Before(nextPoll) {
			var err error
			fetched, err = w.r.p.FetchMessages(ctx, w.p, o.MaxBatch, o.LockDuration)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					w.r.log.Warn().Err(err).Int("partition", w.p).Msg("fetch control messages")
				}
				interval = min(max(interval*2, o.PollMinInterval), o.PollMaxInterval)
			case len(fetched) == 0:
				interval = min(max(interval*2, o.PollMinInterval), o.PollMaxInterval)
			case !pollNow:
				// Found by polling: senders elsewhere are active, more may follow.
				interval = o.PollMinInterval
			default:
				// Found on a wake from a sender in this process, which wakes
				// the partition again for its next message: the polling
				// schedule, there for senders elsewhere, is kept (on Azurite
				// an empty dequeue costs as much as six table inserts).
			}
			nextPoll = now.Add(interval)
			if len(fetched) >= o.MaxBatch {
				nextPoll = now
			}
		}
		if len(local)+len(fetched) == 0 {
			w.flushDelivered(ctx)
			// Measured from the clock now, so that the time the fetch and
			// the flush took is part of the interval, not added to it.
			w.wait(ctx, nextPoll.Sub(w.r.clock.Now()))
			continue
		}
		w.process(ctx, append(local, fetched...))
		if len(local) > 0 {
			w.r.busy.Add(-1)
		}
	}
}

func (w *partitionWorker) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	fire := make(chan struct{})
	stop := w.r.clock.AfterFunc(d, func() { close(fire) })
	defer stop()
	select {
	case <-fire:
	case <-w.wakeCh:
	case <-w.stopCh:
	case <-ctx.Done():
	}
}

// stopping reports whether stop was called.
func (w *partitionWorker) stopping() bool {
	select {
	case <-w.stopCh:
		return true
	default:
		return false
	}
}

// stop stops fetching, forgets the partition's activities that wait for a
// slot (their rows stay: the next owner runs them), lets the current batch
// finish until ctx is done, then cancels what is still running.
func (w *partitionWorker) stop(ctx context.Context) {
	close(w.stopCh)
	w.r.dropQueued(w.p)
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
	}
	w.cancel()
}

// handOff runs after the loop ended: in-memory messages that other partitions
// sent here go back to their senders to be sent through the provider, and
// timers are disarmed. Activity results and fired timers are dropped: their
// rows stay, and the next owner runs them again (so the work items of
// results delivered here are deleted rather than run once more).
func (w *partitionWorker) handOff(ctx context.Context) {
	w.mu.Lock()
	w.stopped = true
	inbox := w.inbox
	w.inbox = nil
	for k, stop := range w.timers {
		stop()
		delete(w.timers, k)
	}
	var items []*ActivityWorkItem
	for id, its := range w.workItems {
		items = append(items, its...)
		delete(w.workItems, id)
	}
	w.mu.Unlock()
	w.r.deleteWorkItems(ctx, items)
	for _, m := range inbox {
		if m.Origin == nil {
			continue
		}
		if o := w.r.worker(m.Origin.Partition); o != nil {
			c := *m
			c.Origin = nil
			o.resendLater(m.Origin.ID, &c)
		}
	}
}

func (w *partitionWorker) resendLater(unitID string, m *Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if u := w.units[unitID]; u != nil {
		u.resend = append(u.resend, m)
		w.signal()
	}
}

// confirm records that n messages of an outbox unit are durable at their destination.
func (w *partitionWorker) confirm(unitID string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	u := w.units[unitID]
	if u == nil {
		return
	}
	u.remaining -= n
	if u.remaining <= 0 {
		delete(w.units, unitID)
		w.delivered = append(w.delivered, u.ref)
	}
}

func (w *partitionWorker) takeDelivered() []OutboxRef {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.delivered
	w.delivered = nil
	return d
}

func (w *partitionWorker) restoreDelivered(refs []OutboxRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.delivered = append(w.delivered, refs...)
}

// flushDelivered deletes confirmed outbox units when the partition is idle,
// so that they do not wait for the next episode.
func (w *partitionWorker) flushDelivered(ctx context.Context) {
	refs := w.takeDelivered()
	if len(refs) == 0 {
		return
	}
	if _, err := w.r.p.Commit(ctx, w.p, &CommitBatch{OutboxDelivered: refs}); err != nil {
		w.restoreDelivered(refs)
	}
}

// retryPending sends what failed to send before: activities whose offload
// failed (dispatched again: the backlog may have room for them now) and
// outbox messages.
func (w *partitionWorker) retryPending(ctx context.Context) {
	w.mu.Lock()
	acts := w.retryActs
	w.retryActs = nil
	var units []*pendingUnit
	for _, u := range w.units {
		if len(u.resend) > 0 {
			units = append(units, u)
		}
	}
	w.mu.Unlock()
	if len(acts) > 0 {
		w.dispatch(ctx, acts)
	}
	for _, u := range units {
		w.mu.Lock()
		msgs := u.resend
		u.resend = nil
		w.mu.Unlock()
		if err := w.r.p.SendMessages(ctx, msgs); err != nil {
			w.mu.Lock()
			u.resend = append(u.resend, msgs...)
			w.mu.Unlock()
			continue
		}
		w.confirm(u.ref.ID, len(msgs))
	}
}

// sendUnit sends an outbox unit: in memory to local partitions, through the
// provider to the others.
// outboxUnit is an outbox unit a batch sends after its outcomes.
type outboxUnit struct {
	ref  OutboxRef
	msgs []*Message
}

func (w *partitionWorker) sendUnit(ctx context.Context, ref OutboxRef, msgs []*Message) {
	w.mu.Lock()
	if w.collecting {
		w.batchUnits = append(w.batchUnits, outboxUnit{ref, msgs})
		w.mu.Unlock()
		return
	}
	u := &pendingUnit{ref: ref, remaining: len(msgs)}
	w.units[ref.ID] = u
	w.mu.Unlock()
	sent, err := w.r.route(ctx, msgs, &ref)
	if err != nil {
		w.mu.Lock()
		u.resend = append(u.resend, sent...)
		w.mu.Unlock()
		return
	}
	if len(sent) > 0 {
		w.confirm(ref.ID, len(sent))
	}
}

func (w *partitionWorker) arm(t TimerRow) {
	k := timerKey{t.InstanceID, t.ExecutionID, t.TaskID}
	msg := &Message{ID: deterministicID(t.InstanceID, t.ExecutionID, "timer", strconv.FormatInt(t.TaskID, 10)),
		InstanceID: t.InstanceID, ExecutionID: t.ExecutionID,
		Event: &Event{Seq: -1, Kind: EventTimerFired, TaskID: t.TaskID, FireAt: t.FireAt, Time: t.FireAt}}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.timers[k] != nil {
		return
	}
	w.timers[k] = w.r.clock.AfterFunc(t.FireAt.Sub(w.r.clock.Now()), func() {
		w.mu.Lock()
		delete(w.timers, k)
		w.mu.Unlock()
		w.deliver(msg)
	})
}

func (w *partitionWorker) disarm(t TimerRow) {
	k := timerKey{t.InstanceID, t.ExecutionID, t.TaskID}
	w.mu.Lock()
	defer w.mu.Unlock()
	if stop := w.timers[k]; stop != nil {
		stop()
		delete(w.timers, k)
	}
}

// dispatch runs activities on this host, at once or from the backlog when
// a slot frees, and offloads the rest: those this host has not registered,
// those beyond the backlog's bound, or all with OffloadActivities.
func (w *partitionWorker) dispatch(ctx context.Context, tasks []*ActivityTask) {
	var offload []*ActivityTask
	for _, t := range tasks {
		if !w.r.opts.OffloadActivities && w.r.opts.Registry.HasActivity(t.Name, t.Version) && w.r.startOrQueue(w, t) {
			continue
		}
		offload = append(offload, t)
	}
	if len(offload) > 0 {
		w.mu.Lock()
		if w.collecting {
			w.batchOffload = append(w.batchOffload, offload...)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.offload(ctx, offload)
	}
}

func (w *partitionWorker) offload(ctx context.Context, tasks []*ActivityTask) {
	err := w.r.p.EnqueueActivities(ctx, tasks)
	if err != nil && len(tasks) > 1 && !IsRetryable(err) && ctx.Err() == nil {
		// One bad task must not hold back the batch's others: each alone.
		for _, t := range tasks {
			w.offload(ctx, []*ActivityTask{t})
		}
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			w.r.log.Warn().Err(err).Int("partition", w.p).Int("activities", len(tasks)).Msg("offload activities; will retry")
		}
		w.mu.Lock()
		w.retryActs = append(w.retryActs, tasks...)
		w.mu.Unlock()
		return
	}
	w.r.stats.activitiesOffloaded.Add(int64(len(tasks)))
	w.r.wakeActivities()
}

var errBatchFailed = errors.New("batch commit failed")
