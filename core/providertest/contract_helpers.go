package providertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// baseTime is the time the contract tests give their events and instances:
// fixed, with a millisecond part, so that round trips are checked to the
// millisecond.
var baseTime = time.Date(2024, time.May, 17, 9, 30, 15, 123_000_000, time.UTC)

const (
	// pollInterval is how often a contract test polls for an expected change.
	pollInterval = 50 * time.Millisecond
	// fetchMax is the batch size of the contract tests' fetches (the Azure queue maximum).
	fetchMax = 32
)

// contract is one contract test's world: a fresh provider and the suite's options.
type contract struct {
	t    *testing.T
	p    core.Provider
	opts Options
}

func (c *contract) ctx() context.Context { return c.t.Context() }

// timeout bounds every wait for something that must happen: ten shortest locks.
func (c *contract) timeout() time.Duration { return 10 * c.opts.MinLock }

// longLock is a lock that outlasts every wait of a test: what it locks stays
// locked until the test deletes, abandons or dead-letters it.
func (c *contract) longLock() time.Duration { return 3 * c.timeout() }

// run runs f as a sequential subtest on the same provider.
func (c *contract) run(name string, f func(c *contract)) {
	c.t.Run(name, func(t *testing.T) { f(&contract{t: t, p: c.p, opts: c.opts}) })
}

func (c *contract) noErr(err error, format string, args ...any) {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func (c *contract) wantErr(err, target error, format string, args ...any) {
	c.t.Helper()
	if !errors.Is(err, target) {
		c.t.Fatalf("%s: got error %v, want one wrapping %q", fmt.Sprintf(format, args...), err, target)
	}
}

// same fails the test when got differs from want (see diffOf).
func (c *contract) same(what string, want, got any) {
	c.t.Helper()
	if d := diffOf(want, got); len(d) > 0 {
		c.t.Fatalf("%s differs from what was written:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

// atLeast checks that something stayed hidden long enough. Providers may
// round locks and delays to their clock's granularity, so half is enough.
func (c *contract) atLeast(what string, elapsed, d time.Duration) {
	c.t.Helper()
	if elapsed < d/2 {
		c.t.Fatalf("%s: hidden for at most %v, want about %v", what, elapsed, d)
	}
}

func (c *contract) sleep(d time.Duration) {
	select {
	case <-time.After(d):
	case <-c.ctx().Done():
		c.t.Fatalf("test context ended: %v", c.ctx().Err())
	}
}

// poller paces a polling loop and tells when its deadline has passed.
type poller struct {
	c   *contract
	end time.Time
}

func (c *contract) until(timeout time.Duration) *poller {
	return &poller{c: c, end: time.Now().Add(timeout)}
}

// next waits one poll interval and reports whether the deadline is still ahead.
func (w *poller) next() bool {
	if !time.Now().Before(w.end) {
		return false
	}
	w.c.sleep(pollInterval)
	return true
}

// idsIn returns n instance ids that start with prefix and route to the partition.
func (c *contract) idsIn(partition int, prefix string, n int) []string {
	c.t.Helper()
	var ids []string
	for i := 0; len(ids) < n; i++ {
		if i > 100_000 {
			c.t.Fatalf("PartitionOf never routes ids %q... to partition %d", prefix, partition)
		}
		if id := fmt.Sprintf("%s%d", prefix, i); c.p.PartitionOf(id) == partition {
			ids = append(ids, id)
		}
	}
	return ids
}

// idLimit is the longest instance id the provider takes.
func (c *contract) idLimit() int {
	if l := c.p.Limits().MaxInstanceIDLength; l > 0 && l < core.MaxInstanceIDLength {
		return l
	}
	return core.MaxInstanceIDLength
}

// --- control queues ---

func newMessage(id, instanceID string, ev *core.Event) *core.Message {
	return &core.Message{ID: id, InstanceID: instanceID, Event: ev}
}

// raised is an external event as a message carries it (Seq -1).
func raised(name string, data []byte) *core.Event {
	return &core.Event{Seq: -1, Kind: core.EventEventRaised, Time: baseTime, Name: name, Data: data}
}

func messageIDs(msgs []*core.Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

func describeMessages(msgs []*core.Message) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = fmt.Sprintf("%q (instance %q)", m.ID, m.InstanceID)
	}
	return strings.Join(parts, ", ")
}

// byPartition groups messages by the partition of their instance.
func (c *contract) byPartition(msgs []*core.Message) map[int][]*core.Message {
	out := map[int][]*core.Message{}
	for _, m := range msgs {
		p := c.p.PartitionOf(m.InstanceID)
		out[p] = append(out[p], m)
	}
	return out
}

func (c *contract) send(msgs ...*core.Message) {
	c.t.Helper()
	c.noErr(c.p.SendMessages(c.ctx(), msgs), "SendMessages(%s)", describeMessages(msgs))
}

// fetch fetches once from the partition's control queue.
func (c *contract) fetch(p int, lock time.Duration) []*core.Message {
	c.t.Helper()
	msgs, err := c.p.FetchMessages(c.ctx(), p, fetchMax, lock)
	c.noErr(err, "FetchMessages(partition %d)", p)
	for _, m := range msgs {
		if m == nil || m.Event == nil {
			c.t.Fatalf("FetchMessages(partition %d) returned a nil message or event", p)
		}
	}
	return msgs
}

// fetchIDsWithin polls the partition until exactly the messages with the
// given ids have been fetched (each locked for lock) and returns them by id.
// It fails on a message it does not expect, on one fetched twice, and when
// timeout passes first.
func (c *contract) fetchIDsWithin(p int, lock, timeout time.Duration, ids ...string) map[string]*core.Message {
	c.t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[string]*core.Message{}
	for w := c.until(timeout); ; {
		for _, m := range c.fetch(p, lock) {
			switch {
			case !want[m.ID]:
				c.t.Fatalf("partition %d returned message %q (instance %q); want only %q", p, m.ID, m.InstanceID, ids)
			case got[m.ID] != nil:
				c.t.Fatalf("partition %d returned message %q twice while it was locked", p, m.ID)
			}
			got[m.ID] = m
		}
		if len(got) == len(want) {
			return got
		}
		if !w.next() {
			var missing []string
			for _, id := range ids {
				if got[id] == nil {
					missing = append(missing, id)
				}
			}
			c.t.Fatalf("partition %d: messages %q did not arrive within %v", p, missing, timeout)
		}
	}
}

func (c *contract) fetchIDs(p int, lock time.Duration, ids ...string) map[string]*core.Message {
	c.t.Helper()
	return c.fetchIDsWithin(p, lock, c.timeout(), ids...)
}

func (c *contract) fetchID(p int, lock time.Duration, id string) *core.Message {
	c.t.Helper()
	return c.fetchIDs(p, lock, id)[id]
}

// expectNoMessages polls the partition for window and fails on any message.
func (c *contract) expectNoMessages(p int, window time.Duration) {
	c.t.Helper()
	for w := c.until(window); ; {
		if msgs := c.fetch(p, c.longLock()); len(msgs) > 0 {
			c.t.Fatalf("partition %d returned %s; want none", p, describeMessages(msgs))
		}
		if !w.next() {
			return
		}
	}
}

// checkMessage checks a fetched message against the one sent and its delivery count.
func (c *contract) checkMessage(want, got *core.Message, dequeueCount int) {
	c.t.Helper()
	c.same(fmt.Sprintf("fetched message %q", want.ID), want, got)
	if got.DequeueCount != dequeueCount {
		c.t.Fatalf("message %q: DequeueCount = %d, want %d", want.ID, got.DequeueCount, dequeueCount)
	}
	if got.Receipt == nil {
		c.t.Fatalf("message %q was fetched without a Receipt", want.ID)
	}
}

// --- work items ---

// task is an activity task of the instance's execution. Odd task ids carry
// a trace context, which providers keep with the task like every other field.
func (c *contract) task(instanceID, executionID string, taskID int64, input []byte) *core.ActivityTask {
	t := &core.ActivityTask{Partition: c.p.PartitionOf(instanceID), InstanceID: instanceID, ExecutionID: executionID,
		TaskID: taskID, Name: "Charge", Version: "v2", Input: input, ScheduledAt: baseTime}
	if taskID%2 == 1 {
		t.Trace = &core.TraceContext{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
			ParentSpanID: "53995c3f42cd8ad8", Sampled: true}
	}
	return t
}

func (c *contract) enqueue(tasks ...*core.ActivityTask) {
	c.t.Helper()
	c.noErr(c.p.EnqueueActivities(c.ctx(), tasks), "EnqueueActivities")
}

// fetchActivityWithin polls the work-item queue until it returns an item.
func (c *contract) fetchActivityWithin(lock, timeout time.Duration) *core.ActivityWorkItem {
	c.t.Helper()
	for w := c.until(timeout); ; {
		it, err := c.p.FetchActivity(c.ctx(), lock)
		c.noErr(err, "FetchActivity")
		if it != nil {
			if it.Task == nil || it.Receipt == nil {
				c.t.Fatalf("FetchActivity returned a work item without a task or a receipt: %+v", it)
			}
			return it
		}
		if !w.next() {
			c.t.Fatalf("no activity work item arrived within %v", timeout)
		}
	}
}

func (c *contract) fetchActivity(lock time.Duration) *core.ActivityWorkItem {
	c.t.Helper()
	return c.fetchActivityWithin(lock, c.timeout())
}

// expectNoActivity polls the work-item queue for window and fails on any item.
func (c *contract) expectNoActivity(window time.Duration) {
	c.t.Helper()
	for w := c.until(window); ; {
		it, err := c.p.FetchActivity(c.ctx(), c.longLock())
		c.noErr(err, "FetchActivity")
		if it != nil {
			c.t.Fatalf("FetchActivity returned a work item (instance %q, task %d, dequeue count %d); want none",
				it.Task.InstanceID, it.Task.TaskID, it.DequeueCount)
		}
		if !w.next() {
			return
		}
	}
}

func (c *contract) checkWorkItem(want *core.ActivityTask, got *core.ActivityWorkItem, dequeueCount int) {
	c.t.Helper()
	c.same("fetched activity task", want, got.Task)
	if got.DequeueCount != dequeueCount {
		c.t.Fatalf("work item of task %d: DequeueCount = %d, want %d", want.TaskID, got.DequeueCount, dequeueCount)
	}
}

// --- instances and episodes ---

// instModel is the suite's model of a committed instance: what the provider
// must return for it, and the token its next episode commits with.
type instModel struct {
	state      *core.InstanceState
	history    []*core.Event
	token      core.CommitToken
	timers     []core.TimerRow
	activities []*core.ActivityTask
	outbox     map[string][]*core.Message // outbox units not yet delivered, by id
}

func (m *instModel) id() string { return m.state.InstanceID }

// apply records that ep committed with the token.
func (m *instModel) apply(ep *core.Episode, token core.CommitToken) {
	if m.outbox == nil {
		m.outbox = map[string][]*core.Message{}
	}
	if ep.NewExecution {
		m.history = nil
	}
	m.state, m.token = ep.State, token
	m.history = append(slices.Clone(m.history), ep.History...)
	m.timers, m.activities = ep.PendingTimers, ep.PendingActivities
	if ep.OutboxID != "" {
		m.outbox[ep.OutboxID] = ep.Outbox
	}
}

// stateEdit changes the instance row an episode writes.
type stateEdit func(*core.InstanceState)

func setName(name string) stateEdit { return func(s *core.InstanceState) { s.Name = name } }

func setCreated(t time.Time) stateEdit {
	return func(s *core.InstanceState) { s.CreatedAt, s.UpdatedAt = t, t }
}

// setStatus sets the status and, for an ending status, what ends with it.
func setStatus(status core.Status) stateEdit {
	return func(s *core.InstanceState) {
		s.Status = status
		if !status.IsTerminal() {
			return
		}
		s.CompletedAt = s.UpdatedAt
		s.Output = []byte(`{"result":"` + status.String() + `"}`)
		if status == core.StatusFailed {
			s.Failure = &core.Failure{Kind: core.KindApplication, Type: "Declined", Message: "card declined"}
		}
	}
}

func setPayloads(input, output, customStatus []byte) stateEdit {
	return func(s *core.InstanceState) { s.Input, s.Output, s.CustomStatus = input, output, customStatus }
}

// startEvents opens an execution: EpisodeStarted and ExecutionStarted, Seq 0 and 1.
func startEvents(s *core.InstanceState, at time.Time) []*core.Event {
	return []*core.Event{
		{Seq: 0, Kind: core.EventEpisodeStarted, Time: at},
		{Seq: 1, Kind: core.EventExecutionStarted, Time: at, Name: s.Name, Version: s.Version,
			ExecutionID: s.ExecutionID, Data: s.Input, Parent: s.Parent},
	}
}

// newInstanceEpisode is the first episode of a new instance (empty token):
// a Running instance of execution "e1" created at baseTime, with the edits applied.
func newInstanceEpisode(id string, edits ...stateEdit) *core.Episode {
	s := &core.InstanceState{InstanceID: id, ExecutionID: "e1", Name: "Checkout", Version: "v1",
		Status: core.StatusRunning, CreatedAt: baseTime, UpdatedAt: baseTime, Input: []byte(`{"order":1}`)}
	for _, e := range edits {
		e(s)
	}
	h := startEvents(s, s.CreatedAt)
	s.HistoryEvents = len(h)
	return &core.Episode{InstanceID: id, State: s, History: h}
}

// next is the model's next episode: it appends EpisodeStarted and the events
// (their Seq numbered after the history, their Time defaulted) and keeps the
// pending sets, one second after the last update.
func (m *instModel) next(edit stateEdit, events ...*core.Event) *core.Episode {
	s := *m.state
	s.UpdatedAt = s.UpdatedAt.Add(time.Second)
	if edit != nil {
		edit(&s)
	}
	h := append([]*core.Event{{Kind: core.EventEpisodeStarted}}, events...)
	for i, ev := range h {
		ev.Seq = int64(len(m.history) + i)
		if ev.Time.IsZero() {
			ev.Time = s.UpdatedAt
		}
	}
	s.HistoryEvents = len(m.history) + len(h)
	return &core.Episode{InstanceID: m.id(), Token: m.token, State: &s, History: h,
		PendingTimers: slices.Clone(m.timers), PendingActivities: slices.Clone(m.activities)}
}

// newExecution is a continue-as-new (or a restart) of the model: a new
// execution whose history starts again at Seq 0; the old execution's pending
// timers and activities are removed.
func (m *instModel) newExecution(executionID string) *core.Episode {
	s := *m.state
	s.ExecutionID, s.Status = executionID, core.StatusRunning
	s.UpdatedAt = s.UpdatedAt.Add(time.Second)
	s.CompletedAt, s.Output, s.Failure = time.Time{}, nil, nil
	h := startEvents(&s, s.UpdatedAt)
	s.HistoryEvents = len(h)
	return &core.Episode{InstanceID: m.id(), Token: m.token, State: &s, NewExecution: true, History: h,
		TimersRemoved: slices.Clone(m.timers), ActivitiesRemoved: slices.Clone(m.activities)}
}

// addTimer adds a timer row to the episode's delta and its complete set.
func addTimer(ep *core.Episode, taskID int64, fireAt time.Time) {
	t := core.TimerRow{InstanceID: ep.InstanceID, ExecutionID: ep.State.ExecutionID, TaskID: taskID, FireAt: fireAt}
	ep.TimersAdded = append(ep.TimersAdded, t)
	ep.PendingTimers = append(ep.PendingTimers, t)
}

func removeTimer(ep *core.Episode, taskID int64) {
	i := slices.IndexFunc(ep.PendingTimers, func(t core.TimerRow) bool { return t.TaskID == taskID })
	ep.TimersRemoved = append(ep.TimersRemoved, ep.PendingTimers[i])
	ep.PendingTimers = slices.Delete(slices.Clone(ep.PendingTimers), i, i+1)
}

// addActivity adds an activity row to the episode's delta and its complete set.
func (c *contract) addActivity(ep *core.Episode, taskID int64, input []byte) {
	a := c.task(ep.InstanceID, ep.State.ExecutionID, taskID, input)
	ep.ActivitiesAdded = append(ep.ActivitiesAdded, a)
	ep.PendingActivities = append(ep.PendingActivities, a)
}

func removeActivity(ep *core.Episode, taskID int64) {
	i := slices.IndexFunc(ep.PendingActivities, func(a *core.ActivityTask) bool { return a.TaskID == taskID })
	ep.ActivitiesRemoved = append(ep.ActivitiesRemoved, ep.PendingActivities[i])
	ep.PendingActivities = slices.Delete(slices.Clone(ep.PendingActivities), i, i+1)
}

func setOutbox(ep *core.Episode, id string, msgs ...*core.Message) {
	ep.OutboxID, ep.Outbox = id, msgs
}

// commit commits the batch to the partition of its episodes and returns one
// result per episode; a batch-wide error fails the test.
func (c *contract) commit(batch *core.CommitBatch) []core.CommitResult {
	c.t.Helper()
	p := -1
	for _, ep := range batch.Episodes {
		p = c.p.PartitionOf(ep.InstanceID)
	}
	for _, r := range batch.OutboxDelivered {
		p = r.Partition
	}
	res, err := c.p.Commit(c.ctx(), p, batch)
	c.noErr(err, "Commit(partition %d)", p)
	if len(res) != len(batch.Episodes) {
		c.t.Fatalf("Commit of %d episodes returned %d results", len(batch.Episodes), len(res))
	}
	return res
}

// commitOK commits the episode alone and returns its new token.
func (c *contract) commitOK(ep *core.Episode) core.CommitToken {
	c.t.Helper()
	r := c.commit(&core.CommitBatch{Episodes: []*core.Episode{ep}})[0]
	switch {
	case r.Err != nil:
		c.t.Fatalf("commit of instance %q with token %q: %v", ep.InstanceID, ep.Token, r.Err)
	case r.Token == "":
		c.t.Fatalf("commit of instance %q returned an empty token", ep.InstanceID)
	}
	return r.Token
}

// conflict commits the episode alone and requires ErrConflict.
func (c *contract) conflict(ep *core.Episode) {
	c.t.Helper()
	r := c.commit(&core.CommitBatch{Episodes: []*core.Episode{ep}})[0]
	c.wantErr(r.Err, core.ErrConflict, "commit of instance %q with stale token %q", ep.InstanceID, ep.Token)
}

// create commits a new instance and returns its model.
func (c *contract) create(ep *core.Episode) *instModel {
	c.t.Helper()
	m := &instModel{}
	m.apply(ep, c.commitOK(ep))
	return m
}

// advance commits an episode of the model and applies it.
func (c *contract) advance(m *instModel, ep *core.Episode) {
	c.t.Helper()
	m.apply(ep, c.commitOK(ep))
}

func withoutPayloads(s *core.InstanceState) *core.InstanceState {
	c := *s
	c.Input, c.Output, c.CustomStatus = nil, nil, nil
	return &c
}

// checkStored checks that LoadInstance, GetInstance (with and without
// payloads) and GetHistory agree with the model, and returns LoadInstance's token.
func (c *contract) checkStored(m *instModel) core.CommitToken {
	c.t.Helper()
	id := m.id()
	snap, err := c.p.LoadInstance(c.ctx(), c.p.PartitionOf(id), id)
	c.noErr(err, "LoadInstance(%q)", id)
	if snap == nil || snap.State == nil || snap.Token == "" {
		c.t.Fatalf("LoadInstance(%q) returned no state or an empty token: %+v", id, snap)
	}
	c.same(fmt.Sprintf("LoadInstance(%q).State", id), m.state, snap.State)
	c.same(fmt.Sprintf("LoadInstance(%q).History", id), m.history, snap.History)
	st, err := c.p.GetInstance(c.ctx(), id, true)
	c.noErr(err, "GetInstance(%q, true)", id)
	c.same(fmt.Sprintf("GetInstance(%q, true)", id), m.state, st)
	st, err = c.p.GetInstance(c.ctx(), id, false)
	c.noErr(err, "GetInstance(%q, false)", id)
	c.same(fmt.Sprintf("GetInstance(%q, false)", id), withoutPayloads(m.state), st)
	h, err := c.p.GetHistory(c.ctx(), id)
	c.noErr(err, "GetHistory(%q)", id)
	c.same(fmt.Sprintf("GetHistory(%q)", id), m.history, h)
	return snap.Token
}

// checkGone checks that the instance, its history and its pending rows are gone.
func (c *contract) checkGone(id string) {
	c.t.Helper()
	_, err := c.p.GetInstance(c.ctx(), id, true)
	c.wantErr(err, core.ErrInstanceNotFound, "GetInstance(%q)", id)
	_, err = c.p.LoadInstance(c.ctx(), c.p.PartitionOf(id), id)
	c.wantErr(err, core.ErrInstanceNotFound, "LoadInstance(%q)", id)
	h, err := c.p.GetHistory(c.ctx(), id)
	if err != nil && !errors.Is(err, core.ErrInstanceNotFound) || err == nil && len(h) > 0 {
		c.t.Fatalf("GetHistory(%q) = %d events, %v; want ErrInstanceNotFound or nothing", id, len(h), err)
	}
	st := c.pending(c.p.PartitionOf(id))
	for _, t := range st.Timers {
		if t.InstanceID == id {
			c.t.Fatalf("instance %q is gone but its timer row %d is not", id, t.TaskID)
		}
	}
	for _, a := range st.Activities {
		if a.InstanceID == id {
			c.t.Fatalf("instance %q is gone but its activity row %d is not", id, a.TaskID)
		}
	}
	for _, u := range st.Outbox {
		if u.Ref.InstanceID == id {
			c.t.Fatalf("instance %q is gone but its outbox unit %q is not", id, u.Ref.ID)
		}
	}
}

// pending opens the partition, returns its pending work and closes it again.
func (c *contract) pending(p int) *core.PartitionState {
	c.t.Helper()
	st, err := c.p.OpenPartition(c.ctx(), p)
	c.noErr(err, "OpenPartition(%d)", p)
	c.p.ClosePartition(p)
	if st == nil {
		c.t.Fatalf("OpenPartition(%d) returned nil", p)
	}
	return st
}

func rowKey(instanceID, executionID string, taskID int64) string {
	return fmt.Sprintf("%q %q %d", instanceID, executionID, taskID)
}

// sortedPartitionState copies the state in a canonical order for comparison.
func sortedPartitionState(st *core.PartitionState) *core.PartitionState {
	out := &core.PartitionState{Timers: slices.Clone(st.Timers), Activities: slices.Clone(st.Activities)}
	slices.SortFunc(out.Timers, func(a, b core.TimerRow) int {
		return strings.Compare(rowKey(a.InstanceID, a.ExecutionID, a.TaskID), rowKey(b.InstanceID, b.ExecutionID, b.TaskID))
	})
	slices.SortFunc(out.Activities, func(a, b *core.ActivityTask) int {
		return strings.Compare(rowKey(a.InstanceID, a.ExecutionID, a.TaskID), rowKey(b.InstanceID, b.ExecutionID, b.TaskID))
	})
	for _, u := range st.Outbox {
		msgs := slices.Clone(u.Messages)
		slices.SortFunc(msgs, func(a, b *core.Message) int { return strings.Compare(a.ID, b.ID) })
		out.Outbox = append(out.Outbox, &core.OutboxUnit{Ref: u.Ref, Messages: msgs})
	}
	slices.SortFunc(out.Outbox, func(a, b *core.OutboxUnit) int {
		return strings.Compare(rowKey(a.Ref.InstanceID, a.Ref.ID, 0), rowKey(b.Ref.InstanceID, b.Ref.ID, 0))
	})
	return out
}

// checkPending checks that the partition's pending work is exactly the
// pending rows of the models.
func (c *contract) checkPending(p int, models ...*instModel) {
	c.t.Helper()
	want := &core.PartitionState{}
	for _, m := range models {
		want.Timers = append(want.Timers, m.timers...)
		want.Activities = append(want.Activities, m.activities...)
		for id, msgs := range m.outbox {
			want.Outbox = append(want.Outbox, &core.OutboxUnit{
				Ref: core.OutboxRef{Partition: p, InstanceID: m.id(), ID: id}, Messages: msgs})
		}
	}
	c.same(fmt.Sprintf("OpenPartition(%d)", p), sortedPartitionState(want), sortedPartitionState(c.pending(p)))
}

// --- queries and dead letters ---

// queryAll reads every page of the query, checking page sizes and that no
// instance is listed twice.
func (c *contract) queryAll(q core.InstanceQuery) []*core.InstanceState {
	c.t.Helper()
	var all []*core.InstanceState
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page > 1000 {
			c.t.Fatalf("QueryInstances(%+v) did not end after %d pages", q, page)
		}
		pg, err := c.p.QueryInstances(c.ctx(), q)
		c.noErr(err, "QueryInstances(%+v)", q)
		if q.PageSize > 0 && len(pg.Instances) > q.PageSize {
			c.t.Fatalf("QueryInstances returned a page of %d instances; the page size is %d", len(pg.Instances), q.PageSize)
		}
		for _, st := range pg.Instances {
			if seen[st.InstanceID] {
				c.t.Fatalf("QueryInstances(%+v) listed instance %q twice", q, st.InstanceID)
			}
			seen[st.InstanceID] = true
			all = append(all, st)
		}
		if pg.Continuation == "" {
			return all
		}
		q.Continuation = pg.Continuation
	}
}

func matchesQuery(s *core.InstanceState, q core.InstanceQuery) bool {
	return (len(q.Statuses) == 0 || slices.Contains(q.Statuses, s.Status)) &&
		(q.Name == "" || s.Name == q.Name) &&
		(q.CreatedFrom.IsZero() || !s.CreatedAt.Before(q.CreatedFrom)) &&
		(q.CreatedTo.IsZero() || s.CreatedAt.Before(q.CreatedTo)) &&
		strings.HasPrefix(s.InstanceID, q.InstanceIDPrefix)
}

// checkQuery runs the query over every page and checks that it lists
// exactly the models that match, each as committed.
func (c *contract) checkQuery(q core.InstanceQuery, models []*instModel) {
	c.t.Helper()
	want := map[string]*core.InstanceState{}
	for _, m := range models {
		if matchesQuery(m.state, q) {
			want[m.id()] = m.state
		}
	}
	got := c.queryAll(q)
	var missing, extra []string
	found := map[string]bool{}
	for _, st := range got {
		found[st.InstanceID] = true
		if want[st.InstanceID] == nil {
			extra = append(extra, st.InstanceID)
		}
	}
	for id := range want {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing)+len(extra) > 0 {
		slices.Sort(missing)
		c.t.Fatalf("QueryInstances(%+v): missing %q, unexpected %q", q, missing, extra)
	}
	for _, st := range got {
		w := want[st.InstanceID]
		if !q.WithPayloads {
			w = withoutPayloads(w)
		}
		c.same(fmt.Sprintf("QueryInstances(WithPayloads: %v) instance %q", q.WithPayloads, st.InstanceID), w, st)
	}
}

// deadLetters lists every dead letter, pageSize at a time, checking page
// sizes and that no dead letter is listed twice.
func (c *contract) deadLetters(pageSize int) []*core.DeadLetter {
	c.t.Helper()
	var all []*core.DeadLetter
	seen := map[string]bool{}
	cont := ""
	for page := 0; ; page++ {
		if page > 1000 {
			c.t.Fatalf("ListDeadLetters did not end after %d pages", page)
		}
		pg, err := c.p.ListDeadLetters(c.ctx(), pageSize, cont)
		c.noErr(err, "ListDeadLetters(%d, %q)", pageSize, cont)
		if len(pg.DeadLetters) > pageSize {
			c.t.Fatalf("ListDeadLetters returned a page of %d; the page size is %d", len(pg.DeadLetters), pageSize)
		}
		for _, d := range pg.DeadLetters {
			if d.ID == "" || seen[d.ID] {
				c.t.Fatalf("ListDeadLetters listed a dead letter with an empty or repeated id %q", d.ID)
			}
			seen[d.ID] = true
			all = append(all, d)
		}
		if pg.Continuation == "" {
			return all
		}
		cont = pg.Continuation
	}
}

// oneDeadLetter lists the dead letters and requires exactly one.
func (c *contract) oneDeadLetter() *core.DeadLetter {
	c.t.Helper()
	dls := c.deadLetters(10)
	if len(dls) != 1 {
		c.t.Fatalf("ListDeadLetters returned %d dead letters, want 1", len(dls))
	}
	return dls[0]
}

// checkDeadLetter checks what every dead letter says about itself.
func (c *contract) checkDeadLetter(d *core.DeadLetter, partition int, instanceID, reason string, before time.Time) {
	c.t.Helper()
	switch {
	case d.Partition != partition:
		c.t.Fatalf("dead letter %q: Partition = %d, want %d", d.ID, d.Partition, partition)
	case d.InstanceID != instanceID:
		c.t.Fatalf("dead letter %q: InstanceID = %q, want %q", d.ID, d.InstanceID, instanceID)
	case !strings.Contains(d.Reason, reason):
		c.t.Fatalf("dead letter %q: Reason = %q, want it to say %q", d.ID, d.Reason, reason)
	case d.At.Before(before.Add(-time.Minute)) || d.At.After(time.Now().Add(time.Minute)):
		c.t.Fatalf("dead letter %q: At = %v, want about %v", d.ID, d.At, before)
	case d.DequeueCount < 1:
		c.t.Fatalf("dead letter %q: DequeueCount = %d, want at least 1", d.ID, d.DequeueCount)
	}
}

// --- payloads ---

// payload returns n bytes (n ≥ 2) that differ with the seed: "binary" is
// random bytes that are not JSON, "json" is one JSON string of random letters.
func payload(kind string, n int, seed uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b) // ChaCha8.Read never fails
	if kind == "binary" {
		b[0] = 0xff // never valid JSON
		return b
	}
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	b[0], b[n-1] = '"', '"'
	return b
}

// repeatTo repeats s up to n bytes, padding with 'a' where s does not fit.
func repeatTo(s string, n int) string {
	r := strings.Repeat(s, n/len(s))
	return r + strings.Repeat("a", n-len(r))
}

// --- comparison ---

var timeType = reflect.TypeFor[time.Time]()

// ignoredFields are not compared: set by the provider on delivery
// (DequeueCount, Receipt, LastSeen), not stored (VisibleAt, Origin,
// Consumed), or measured by each provider its own way (HistoryBytes).
var ignoredFields = map[string]bool{"DequeueCount": true, "Receipt": true, "LastSeen": true, "VisibleAt": true,
	"Origin": true, "Consumed": true, "HistoryBytes": true}

// diffOf lists how got differs from want, field by field. Times compare as
// instants to the millisecond, byte slices by content (nil equals empty),
// other slices element by element, maps key by key.
func diffOf(want, got any) []string {
	var out []string
	diffValue("value", reflect.ValueOf(want), reflect.ValueOf(got), &out)
	return out
}

func diffValue(path string, w, g reflect.Value, out *[]string) {
	if w.Type() != g.Type() {
		*out = append(*out, fmt.Sprintf("%s: got a %s, want a %s", path, g.Type(), w.Type()))
		return
	}
	if w.Type() == timeType {
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		if !wt.Truncate(time.Millisecond).Equal(gt.Truncate(time.Millisecond)) {
			*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, gt, wt))
		}
		return
	}
	switch w.Kind() {
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, describeValue(g), describeValue(w)))
			}
			return
		}
		diffValue(path, w.Elem(), g.Elem(), out)
	case reflect.Struct:
		for i := range w.NumField() {
			if f := w.Type().Field(i); f.IsExported() && !ignoredFields[f.Name] {
				diffValue(path+"."+f.Name, w.Field(i), g.Field(i), out)
			}
		}
	case reflect.Slice:
		if w.Type().Elem().Kind() == reflect.Uint8 {
			if d := diffBytes(w.Bytes(), g.Bytes()); d != "" {
				*out = append(*out, path+": "+d)
			}
			return
		}
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: got %d elements, want %d", path, g.Len(), w.Len()))
			return
		}
		for i := range w.Len() {
			diffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i), out)
		}
	case reflect.Map:
		for _, k := range w.MapKeys() {
			if gv := g.MapIndex(k); gv.IsValid() {
				diffValue(fmt.Sprintf("%s[%v]", path, k), w.MapIndex(k), gv, out)
			} else {
				*out = append(*out, fmt.Sprintf("%s[%v]: missing", path, k))
			}
		}
		for _, k := range g.MapKeys() {
			if !w.MapIndex(k).IsValid() {
				*out = append(*out, fmt.Sprintf("%s[%v]: unexpected", path, k))
			}
		}
	case reflect.Interface:
		// Only Receipt is an interface, and it is ignored.
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, g.Interface(), w.Interface()))
		}
	}
}

func describeValue(v reflect.Value) string {
	if v.IsNil() {
		return "nil"
	}
	return fmt.Sprintf("%+v", v.Elem().Interface())
}

func diffBytes(w, g []byte) string {
	if bytes.Equal(w, g) {
		return ""
	}
	if len(w) <= 64 && len(g) <= 64 {
		return fmt.Sprintf("got %q, want %q", g, w)
	}
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes, want %d (first difference at byte %d)", len(g), len(w), i)
}
