package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// unregisteredRetry is how long messages for an orchestration this host does
// not know wait before they are tried again (a rolling deploy may bring it).
const unregisteredRetry = 2 * time.Second

// job is one instance's share of a batch.
type job struct {
	id      string
	msgs    []*Message
	ci      *cachedInstance // the executor and what the commit starts from
	out     *episodeOut
	ep      *Episode
	hit     bool
	guessed bool      // taken to be a new instance without reading it (firstDelivery)
	failed  error     // set when the episode had to be replaced by a failure
	began   time.Time // when preparing the episode started; its duration runs from here
	// What to do with the messages when there is no episode.
	abandon    []*Message
	abandonFor time.Duration
	deadLetter []*Message
	reason     string
	resend     []*Message // re-sent with a delay (unregistered), then deleted
	requeue    []*Message // local messages to retry in memory
	consumed   []*Message // done with, nothing to commit
}

func groupByInstance(msgs []*Message) []*job {
	index := map[string]*job{}
	var jobs []*job
	seen := map[string]bool{}
	for _, m := range msgs {
		j := index[m.InstanceID]
		if j == nil {
			j = &job{id: m.InstanceID}
			index[m.InstanceID] = j
			jobs = append(jobs, j)
		}
		if seen[m.ID] && m.Receipt == nil && m.Origin == nil {
			continue // the same in-memory message twice: a timer re-armed during a race
		}
		seen[m.ID] = true
		j.msgs = append(j.msgs, m)
	}
	return jobs
}

// process runs and commits one batch of messages.
func (w *partitionWorker) process(ctx context.Context, msgs []*Message) {
	jobs := groupByInstance(msgs)
	sem := make(chan struct{}, w.r.opts.OrchestrationConcurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.prepare(ctx, j)
		}()
	}
	wg.Wait()

	var batch CommitBatch
	var committing []*job
	for _, j := range jobs {
		if j.ep != nil {
			batch.Episodes = append(batch.Episodes, j.ep)
			committing = append(committing, j)
		}
	}
	if len(committing) > 0 {
		batch.OutboxDelivered = w.takeDelivered()
		results, err := w.r.p.Commit(ctx, w.p, &batch)
		if err == nil && len(results) != len(committing) {
			err = fmt.Errorf("%w: provider returned %d results for %d episodes", errBatchFailed, len(results), len(committing))
		}
		if err != nil {
			w.restoreDelivered(batch.OutboxDelivered)
			if ctx.Err() == nil {
				w.r.log.Warn().Err(err).Int("partition", w.p).Int("episodes", len(committing)).Msg("commit failed; checking what was stored")
			}
		}
		// The batch's follow-up sends wait for all its outcomes: the
		// activities offloaded go in one call, then the outbox units are
		// sent side by side, so that the provider can pack the messages of
		// several units for one partition.
		w.mu.Lock()
		w.collecting = true
		w.mu.Unlock()
		w.outcomes(ctx, committing, results, err)
		w.mu.Lock()
		offload, units, publish := w.batchOffload, w.batchUnits, w.batchPublish
		w.collecting, w.batchOffload, w.batchUnits, w.batchPublish = false, nil, nil, nil
		w.mu.Unlock()
		if len(offload) > 0 {
			w.offload(ctx, offload)
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, u := range units {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				w.sendUnit(ctx, u.ref, u.msgs)
			})
		}
		wg.Wait()
		// Waiting clients hear of the batch's changes once its sends are out.
		for _, st := range publish {
			w.r.hub.publish(st.InstanceID, st)
		}
	}
	// The consumed messages and work items of every job are deleted
	// together: one call each, whose requests run in parallel (and whose
	// packs are deleted once).
	var consumed []*Message
	var items []*ActivityWorkItem
	for _, j := range jobs {
		msgs, its := w.settle(ctx, j)
		consumed, items = append(consumed, msgs...), append(items, its...)
	}
	w.r.deleteWorkItems(ctx, items)
	if len(consumed) > 0 {
		if err := w.r.p.DeleteMessages(ctx, w.p, consumed); err != nil && ctx.Err() == nil {
			// They come back and are dropped as duplicates.
			w.r.log.Warn().Err(err).Int("partition", w.p).Int("messages", len(consumed)).Msg("delete consumed messages")
		}
	}
}

// undo forgets an episode that was not committed: the executor is dropped
// (its memory ran ahead of storage) and the messages come back.
func (w *partitionWorker) undo(j *job, delay time.Duration) {
	if j.ci != nil && j.ci.exec != nil {
		j.ci.exec.close()
	}
	j.ci, j.ep = nil, nil
	for _, m := range j.msgs {
		if m.Receipt != nil {
			j.abandon = append(j.abandon, m)
		} else {
			j.requeue = append(j.requeue, m)
		}
	}
	j.abandonFor = delay
}

// outcomes acts on the results of a commit: it does what each stored
// episode asks for, and settles the others. batchErr, when set, is the
// failure of the whole batch (results are then ignored).
//
// A commit can fail although it was applied: its response was lost, or a
// fault struck after the request left. If such an episode were treated as
// not stored, its messages would come back as duplicates and be dropped,
// and what it dispatched (activities, timers, outbox messages) would wait
// for the partition to be opened again. So every episode whose commit
// failed other than by a conflict is read back: when storage holds it, it
// committed, and its follow-up work is done now.
func (w *partitionWorker) outcomes(ctx context.Context, jobs []*job, results []CommitResult, batchErr error) {
	var unsure []*job
	var errs []error
	for i, j := range jobs {
		err := batchErr
		if err == nil {
			err = results[i].Err
		}
		switch {
		case err == nil:
			w.committed(ctx, j, results[i].Token)
		case errors.Is(err, ErrConflict):
			if !j.guessed {
				w.r.stats.conflicts.Add(1)
			}
			w.undo(j, 0)
		case ctx.Err() != nil:
			// The partition is being released: the next owner recovers what
			// was stored from the pending rows.
			w.undo(j, time.Second)
		default:
			unsure = append(unsure, j)
			errs = append(errs, err)
		}
	}
	snaps := make([]*InstanceSnapshot, len(unsure))
	lerrs := make([]error, len(unsure))
	sem := make(chan struct{}, w.r.opts.OrchestrationConcurrency)
	var wg sync.WaitGroup
	for i, j := range unsure {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			snaps[i], lerrs[i] = w.readBack(ctx, j.id)
		}()
	}
	wg.Wait()
	for i, j := range unsure {
		switch snap, lerr := snaps[i], lerrs[i]; {
		case lerr == nil && episodeStored(j.ep, snap):
			w.r.log.Warn().Err(errs[i]).Str("instance", j.id).Int("partition", w.p).
				Msg("commit reported an error but was applied; doing its follow-up work")
			current := int64(len(snap.History)) == lastSeq(j.ep)+1
			w.committed(ctx, j, snap.Token)
			if !current {
				// Storage has moved on since: the executor is behind it.
				w.r.cache.drop(j.id)
			}
		case lerr != nil && !errors.Is(lerr, ErrInstanceNotFound), batchErr != nil:
			// Not stored, or still unknown because storage cannot be read
			// (then the next owner of the partition recovers what was stored).
			w.undo(j, time.Second)
		default:
			w.commitFailed(ctx, j, errs[i])
		}
	}
}

// readBack loads an instance after a commit failed, retrying while storage
// fails transiently, until ctx ends or the partition stops.
func (w *partitionWorker) readBack(ctx context.Context, id string) (*InstanceSnapshot, error) {
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		snap, err := w.r.p.LoadInstance(ctx, w.p, id)
		if err == nil || !IsRetryable(err) {
			return snap, err
		}
		t := time.NewTimer(delay) // real time: a retry pause, not a durable wait
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-w.stopCh:
			t.Stop()
			return nil, err
		}
	}
}

// episodeStored reports whether the snapshot holds the episode's events
// at their positions, that is whether the episode's commit was applied.
func episodeStored(ep *Episode, snap *InstanceSnapshot) bool {
	if len(ep.History) == 0 || snap == nil || snap.State == nil || snap.State.ExecutionID != ep.State.ExecutionID {
		return false
	}
	first := ep.History[0].Seq
	if first < 0 || lastSeq(ep) >= int64(len(snap.History)) {
		return false
	}
	for i, ev := range ep.History {
		want, err := json.Marshal(ev)
		if err != nil {
			return false
		}
		got, err := json.Marshal(snap.History[first+int64(i)])
		if err != nil || !bytes.Equal(got, want) {
			return false
		}
	}
	return true
}

func lastSeq(ep *Episode) int64 { return ep.History[len(ep.History)-1].Seq }

// commitFailed handles an episode that was not stored. A permanent error
// (too large, invalid) fails the instance instead, once.
func (w *partitionWorker) commitFailed(ctx context.Context, j *job, err error) {
	w.undo(j, time.Second)
	if j.failed != nil || IsRetryable(err) {
		return
	}
	w.r.log.Error().Err(err).Str("instance", j.id).Int("partition", w.p).Msg("episode rejected by the provider; failing the instance")
	retry := &job{id: j.id, msgs: j.msgs, failed: err, began: j.began}
	w.prepareFailure(ctx, retry, err)
	if retry.ep == nil {
		if len(retry.abandon)+len(retry.requeue) == 0 {
			// Nothing to fail (gone, or ended): the messages are done with.
			j.abandon, j.requeue, j.consumed = nil, nil, append(j.consumed, retry.consumed...)
		}
		return
	}
	res, cerr := w.r.p.Commit(ctx, w.p, &CommitBatch{Episodes: []*Episode{retry.ep}})
	if cerr == nil && len(res) != 1 {
		cerr = fmt.Errorf("%w: provider returned %d results for 1 episode", errBatchFailed, len(res))
	}
	w.outcomes(ctx, []*job{retry}, res, cerr)
	if len(retry.abandon)+len(retry.requeue) == 0 {
		// The failure is stored: the messages are consumed.
		j.abandon, j.requeue = nil, nil
		j.consumed = append(j.consumed, retry.consumed...)
	}
}

// prepare runs the instance's episode, or decides what to do with its messages.
func (w *partitionWorker) prepare(ctx context.Context, j *job) {
	r := w.r
	j.began = time.Now()
	now := r.clock.Now()
	ci := r.cache.take(j.id)
	var history []*Event // of an ended instance, read here
	switch {
	case ci != nil:
		j.hit = true
	case firstDelivery(j.msgs):
		// A start delivered for the first time is almost always for a new
		// instance: skip the read and let the commit's empty token check it.
		// If the instance exists after all, the commit conflicts, the
		// messages come back with a higher delivery count, and the instance
		// is read then.
		ci, j.guessed = &cachedInstance{}, true
	default:
		snap, err := r.p.LoadInstance(ctx, w.p, j.id)
		switch {
		case errors.Is(err, ErrInstanceNotFound):
			ci = &cachedInstance{}
		case err != nil:
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Str("instance", j.id).Int("partition", w.p).Msg("load instance")
			}
			w.undo(j, time.Second)
			return
		default:
			ci = &cachedInstance{token: snap.Token, state: snap.State}
			if !snap.State.Status.IsTerminal() {
				ci.exec = newExecutor(r.engine, j.id, w.p)
				ci.exec.replay(snap.History)
			} else {
				history = snap.History
			}
		}
	}
	j.ci = ci

	var poison []*Message
	for _, m := range j.msgs {
		if m.Receipt != nil && m.DequeueCount > r.opts.MaxDequeueCount {
			poison = append(poison, m)
		}
	}

	st := ci.state
	switch {
	case st == nil || st.Status.IsTerminal():
		start := startMessage(j.msgs, st)
		if start == nil || st != nil && startConsumed(start, history) {
			w.noInstance(j, st)
			return
		}
		if _, _, err := r.opts.Registry.orchestration(start.Event.Name, start.Event.Version); err != nil {
			w.unregistered(j)
			return
		}
		if ci.exec != nil {
			ci.exec.close()
		}
		ci.exec = newExecutor(r.engine, j.id, w.p)
		first := start
		if st != nil {
			// The new execution remembers what the ended one consumed, so
			// that a message of the ended one delivered again (its start
			// included) cannot start the instance over later.
			first = withSeen(start, consumedIDs(history))
		}
		msgs := append([]*Message{first}, without(j.msgs, start)...)
		j.out = ci.exec.episode(now, msgs)
		j.out.newExecution = st != nil
	default:
		if _, _, err := r.opts.Registry.orchestration(ci.exec.name, ci.exec.version); err != nil && ci.exec.started {
			w.unregistered(j)
			return
		}
		w.answerDuplicateStarts(j, st)
		j.out = ci.exec.episode(now, j.msgs)
	}
	if len(poison) > 0 {
		w.poison(ctx, j, poison)
		return
	}
	if len(j.out.history) == 0 {
		// Only duplicates: nothing changed, nothing to commit.
		j.consumed = append(j.consumed, j.msgs...)
		if ci.exec != nil && ci.state != nil {
			r.cache.put(j.id, ci)
		}
		j.ci = nil
		return
	}
	j.ep = w.episode(j, now)
	if err := w.checkLimits(j.ep); err != nil {
		w.prepareFailure(ctx, j, err)
	}
	if j.hit {
		r.stats.cacheHits.Add(1)
	} else {
		r.stats.cacheMisses.Add(1)
	}
}

// firstDelivery reports whether the messages hold a start fetched from the
// control queue for the first time.
func firstDelivery(msgs []*Message) bool {
	for _, m := range msgs {
		if m.Event.Kind == EventExecutionStarted && m.Receipt != nil && m.DequeueCount == 1 {
			return true
		}
	}
	return false
}

// startMessage picks a start that begins a new execution: for a missing
// instance, or one that has ended and is started again with a new execution id.
func startMessage(msgs []*Message, st *InstanceState) *Message {
	for _, m := range msgs {
		if m.Event.Kind == EventExecutionStarted && (st == nil || m.Event.ExecutionID != st.ExecutionID) {
			return m
		}
	}
	return nil
}

// startConsumed reports whether the start is one the ended execution (or an
// execution it continued as new from) has consumed already: delivered again
// (a crash before its delete, an outbox sent again), it must not start the
// instance over.
func startConsumed(start *Message, history []*Event) bool {
	for _, ev := range history {
		if ev.Kind == EventExecutionStarted {
			return ev.MessageID == start.ID || slices.Contains(ev.Seen, start.ID)
		}
	}
	return false
}

// consumedIDs are the ids of the messages an execution consumed, as its
// history records them: its start, the ids it inherited, and its events.
func consumedIDs(history []*Event) []string {
	seen := map[string]struct{}{}
	for _, ev := range history {
		consumedBy(ev, func(id string) { seen[id] = struct{}{} })
	}
	return slices.Sorted(maps.Keys(seen))
}

// withSeen is a copy of the start that also carries the ids in seen.
func withSeen(start *Message, seen []string) *Message {
	if len(seen) == 0 {
		return start
	}
	c, ev := *start, *start.Event
	ev.Seen = slices.Concat(ev.Seen, seen)
	c.Event = &ev
	return &c
}

func without(msgs []*Message, skip *Message) []*Message {
	out := make([]*Message, 0, len(msgs))
	for _, m := range msgs {
		if m != skip {
			out = append(out, m)
		}
	}
	return out
}

// noInstance handles messages for an instance that does not exist or has
// ended. Messages to a missing instance wait, in case its start is still on
// the way, and are dead-lettered when they have waited too often.
func (w *partitionWorker) noInstance(j *job, st *InstanceState) {
	if st != nil {
		j.consumed = append(j.consumed, j.msgs...)
		return
	}
	for _, m := range j.msgs {
		switch {
		case m.Receipt == nil:
			// Delivered in memory, perhaps ahead of the start: send it
			// through the provider with a delay, so it waits and counts its
			// deliveries like any other message.
			c := *m
			c.Receipt, c.Origin, c.DequeueCount, c.VisibleAt = nil, nil, 0, w.r.clock.Now().Add(time.Second)
			j.resend = append(j.resend, &c)
			j.consumed = append(j.consumed, m)
		case m.DequeueCount >= w.r.opts.MaxDequeueCount:
			j.deadLetter = append(j.deadLetter, m)
			j.reason = fmt.Sprintf("instance %q does not exist (message %s, %s, delivered %d times)", j.id, m.ID, m.Event.Kind, m.DequeueCount)
		default:
			j.abandon = append(j.abandon, m)
			j.abandonFor = time.Duration(m.DequeueCount) * time.Second
		}
	}
	if j.ci.exec != nil {
		j.ci.exec.close()
	}
	j.ci = nil
}

// unregistered puts the messages back for later: another host, or this one
// after a deploy, may know the orchestration. Fetched messages are sent
// again with a delay (which also restarts their delivery count) rather than
// abandoned, so that waiting for a deploy never makes them poison.
func (w *partitionWorker) unregistered(j *job) {
	at := w.r.clock.Now().Add(unregisteredRetry)
	for _, m := range j.msgs {
		c := *m
		c.Receipt, c.Origin, c.DequeueCount, c.VisibleAt = nil, nil, 0, at
		j.resend = append(j.resend, &c)
		j.consumed = append(j.consumed, m)
	}
	if j.ci != nil && j.ci.exec != nil {
		if j.hit {
			w.r.cache.put(j.id, j.ci)
		} else {
			j.ci.exec.close()
		}
	}
	j.ci = nil
}

// answerDuplicateStarts handles a start for an instance that is running with
// another execution: a parent is told that the id is taken; a client start is dropped.
func (w *partitionWorker) answerDuplicateStarts(j *job, st *InstanceState) {
	for _, m := range j.msgs {
		ev := m.Event
		if ev.Kind != EventExecutionStarted || ev.ExecutionID == st.ExecutionID || ev.Parent == nil {
			continue
		}
		reply := &Message{ID: deterministicID(m.ID, "exists"), InstanceID: ev.Parent.InstanceID, ExecutionID: ev.Parent.ExecutionID,
			Event: &Event{Seq: -1, Kind: EventSubOrchestrationFailed, TaskID: ev.Parent.TaskID, Time: w.r.clock.Now(),
				Failure: &Failure{Kind: KindApplication, Type: FailureTypeInstanceExists,
					Message: fmt.Sprintf("instance %q already exists and is %s", j.id, st.Status)}}}
		j.resend = append(j.resend, reply)
	}
}

// poison dead-letters messages that were delivered too often and fails the instance.
func (w *partitionWorker) poison(ctx context.Context, j *job, poison []*Message) {
	j.deadLetter = poison
	j.reason = fmt.Sprintf("poison: delivered more than %d times without a successful episode", w.r.opts.MaxDequeueCount)
	rest := make([]*Message, 0, len(j.msgs))
	for _, m := range j.msgs {
		if m.Receipt == nil || m.DequeueCount <= w.r.opts.MaxDequeueCount {
			rest = append(rest, m)
		}
	}
	j.msgs = rest
	w.r.stats.deadLettered.Add(int64(len(poison)))
	w.prepareFailure(ctx, j, fmt.Errorf("%w: instance %q: %d message(s) dead-lettered after more than %d deliveries",
		ErrPoison, j.id, len(poison), w.r.opts.MaxDequeueCount))
}

// prepareFailure replaces the job's episode by one that fails the instance
// with err, starting again from storage.
func (w *partitionWorker) prepareFailure(ctx context.Context, j *job, err error) {
	if j.ci != nil && j.ci.exec != nil {
		j.ci.exec.close()
	}
	j.ci, j.ep, j.failed = nil, nil, err
	snap, lerr := w.r.p.LoadInstance(ctx, w.p, j.id)
	if lerr != nil || snap.State.Status.IsTerminal() {
		// Nothing to fail (gone, or already ended): the messages are done with.
		if errors.Is(lerr, ErrInstanceNotFound) || lerr == nil {
			j.consumed = append(j.consumed, j.msgs...)
			return
		}
		w.undo(j, time.Second)
		return
	}
	exec := newExecutor(w.r.engine, j.id, w.p)
	exec.replay(snap.History)
	j.ci = &cachedInstance{exec: exec, token: snap.Token, state: snap.State}
	now := w.r.clock.Now()
	exec.out = &episodeOut{}
	exec.record(&Event{Kind: EventEpisodeStarted, Time: now})
	exec.now = now
	exec.fail(err)
	j.out = exec.takeOut()
	j.ep = w.episode(j, now)
}

// episode builds the commit of a job's episode.
func (w *partitionWorker) episode(j *job, now time.Time) *Episode {
	e, out, prev := j.ci.exec, j.out, j.ci.state
	st := &InstanceState{InstanceID: j.id, ExecutionID: e.executionID, Name: e.name, Version: e.version, Status: e.status,
		CreatedAt: now, UpdatedAt: now, CustomStatus: e.customStatus, Input: e.input, Output: e.output, Failure: e.failure,
		Parent: e.parent, HistoryEvents: int(e.seq), HistoryBytes: e.historyBytes}
	if prev != nil && !out.newExecution {
		st.CreatedAt = prev.CreatedAt
	}
	if prev != nil && out.newExecution && !prev.Status.IsTerminal() {
		st.CreatedAt = prev.CreatedAt // continue-as-new keeps the instance's creation time
	}
	if st.Status.IsTerminal() {
		st.CompletedAt = now
	}
	ep := &Episode{InstanceID: j.id, Token: j.ci.token, State: st, NewExecution: out.newExecution, History: out.history,
		TimersAdded: out.timersAdded, TimersRemoved: out.timersRemoved,
		ActivitiesAdded: out.activitiesAdded, ActivitiesRemoved: out.activitiesRemoved,
		PendingTimers: e.pendingTimers(), PendingActivities: e.pendingActivities(),
		Outbox: out.outbox, Consumed: j.msgs}
	if prev == nil {
		ep.Token = ""
	}
	if len(out.outbox) > 0 {
		ep.OutboxID = deterministicID(j.id, e.executionID, "outbox", fmt.Sprint(out.history[0].Seq))
	}
	return ep
}

// checkLimits rejects an episode whose payloads the provider cannot store.
func (w *partitionWorker) checkLimits(ep *Episode) error {
	limit := w.r.p.Limits().MaxPayloadBytes
	if limit <= 0 {
		return nil
	}
	// The names are formatted only for an error: this runs on every episode.
	st := ep.State
	for _, c := range []struct {
		what string
		b    []byte
	}{{"output", st.Output}, {"custom status", st.CustomStatus}, {"input", st.Input}} {
		if len(c.b) > limit {
			return checkPayload(fmt.Sprintf("instance %q %s", ep.InstanceID, c.what), c.b, limit)
		}
	}
	for _, ev := range ep.History {
		if len(ev.Data) > limit {
			return checkPayload(fmt.Sprintf("instance %q %s payload", ep.InstanceID, ev.Kind), ev.Data, limit)
		}
	}
	return nil
}

// committed does what a successful commit asks for.
func (w *partitionWorker) committed(ctx context.Context, j *job, token CommitToken) {
	r := w.r
	r.stats.episodeCommitted(j.began, j.ep.State)
	out, exec, ep := j.out, j.ci.exec, j.ep
	prevStatus := StatusPending
	if j.ci.state != nil {
		prevStatus = j.ci.state.Status
	}
	if r.tracing != nil && len(out.spans) > 0 {
		r.tracing.emit(w.p, out.spans)
	}
	for _, t := range out.cancelled {
		r.cancelRunning(t)
	}
	for _, t := range out.timersRemoved {
		w.disarm(t)
	}
	for _, t := range out.timersAdded {
		w.arm(t)
	}
	w.dispatch(ctx, out.activitiesAdded)
	if len(out.outbox) > 0 {
		w.sendUnit(ctx, OutboxRef{Partition: w.p, InstanceID: j.id, ID: ep.OutboxID}, out.outbox)
	}
	j.consumed = append(j.consumed, j.msgs...)
	if ep.State.Status.IsTerminal() || exec.done {
		exec.close()
	} else {
		r.cache.put(j.id, &cachedInstance{exec: exec, token: token, state: ep.State})
	}
	j.ci = nil
	// Waiting clients care about a start, a change of status and the end:
	// an episode that only moves a running instance on tells them nothing.
	if ep.State.Status != StatusRunning || prevStatus != StatusRunning ||
		slices.ContainsFunc(ep.History, func(ev *Event) bool { return ev.Kind == EventExecutionStarted }) {
		w.mu.Lock()
		deferred := w.collecting
		if deferred {
			w.batchPublish = append(w.batchPublish, ep.State)
		}
		w.mu.Unlock()
		if !deferred {
			r.hub.publish(j.id, ep.State)
		}
	}
}

// settle disposes of the job's messages: it confirms in-memory deliveries,
// abandons, dead-letters, re-sends or re-queues the others, and returns the
// consumed fetched messages and work items, for the caller to delete.
func (w *partitionWorker) settle(ctx context.Context, j *job) ([]*Message, []*ActivityWorkItem) {
	r := w.r
	if len(j.resend) > 0 {
		if err := r.p.SendMessages(ctx, j.resend); err != nil {
			// Keep the originals: fetched ones come back when their lock
			// expires, the ones delivered in memory are queued again.
			for _, m := range j.consumed {
				if m.Receipt == nil {
					j.requeue = append(j.requeue, m)
				}
			}
			j.consumed = nil
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Str("instance", j.id).Msg("re-send messages")
			}
		} else {
			r.wake(r.p.PartitionOf(j.resend[0].InstanceID))
		}
	}
	if len(j.deadLetter) > 0 {
		if err := r.p.DeadLetterMessages(ctx, w.p, j.deadLetter, j.reason); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Str("instance", j.id).Msg("dead-letter messages")
		} else {
			r.log.Warn().Str("instance", j.id).Int("partition", w.p).Str("reason", j.reason).Msg("messages dead-lettered")
		}
	}
	var fetched []*Message
	var items []*ActivityWorkItem
	for _, m := range j.consumed {
		switch {
		case m.Receipt != nil:
			fetched = append(fetched, m)
		case m.Origin != nil:
			if o := r.worker(m.Origin.Partition); o != nil {
				o.confirm(m.Origin.ID, 1)
			}
		default:
			items = append(items, w.takeWorkItems(m.ID)...)
		}
	}
	if len(j.abandon) > 0 {
		if err := r.p.AbandonMessages(ctx, w.p, j.abandon, j.abandonFor); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Str("instance", j.id).Msg("abandon messages")
		}
	}
	if len(j.requeue) > 0 {
		msgs := j.requeue
		r.busy.Add(1)
		// Real time, not the runtime's clock: this is a retry pause, not a durable wait.
		time.AfterFunc(r.opts.PollMinInterval, func() {
			defer r.busy.Add(-1)
			for _, m := range msgs {
				if !w.deliver(m) && m.Origin != nil {
					if o := r.worker(m.Origin.Partition); o != nil {
						c := *m
						c.Origin = nil
						o.resendLater(m.Origin.ID, &c)
					}
				}
			}
		})
	}
	if j.ci != nil && j.ci.exec != nil {
		j.ci.exec.close()
	}
	return fetched, items
}
