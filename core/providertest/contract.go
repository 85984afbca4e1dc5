package providertest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// RunContract runs the contract tests: each calls the provider's methods
// directly, on a fresh task hub from f, and checks what core.Provider
// promises. They run in parallel. Waits poll with a deadline of ten times
// opts.MinLock, and locks and delays are multiples of MinLock, so that the
// suite also runs against stores whose clocks have a one-second granularity.
func RunContract(t *testing.T, f Factory, opts Options) {
	opts = opts.withDefaults()
	for _, ct := range contractTests {
		t.Run(ct.name, func(t *testing.T) {
			t.Parallel()
			ct.run(&contract{t: t, p: f(t), opts: opts})
		})
	}
}

// contractTest is one contract test; it gets a provider of its own.
type contractTest struct {
	name string
	run  func(c *contract)
}

var contractTests = []contractTest{
	// Control queues.
	{"SendFetchRoundTrip", contractSendFetchRoundTrip},
	{"Routing", contractRouting},
	{"BatchArrivesExactlyOnce", contractBatchArrivesExactlyOnce},
	{"DelayedSend", contractDelayedSend},
	{"MessageLockExpiry", contractMessageLockExpiry},
	{"DeleteMessages", contractDeleteMessages},
	{"AbandonMessages", contractAbandonMessages},
	{"IsolationFromCallerMemory", contractIsolation},
	// Commits.
	{"CommitNewInstance", contractCommitNewInstance},
	{"CommitTokens", contractCommitTokens},
	{"CommitRace", contractCommitRace},
	{"GroupCommit", contractGroupCommit},
	{"NewExecution", contractNewExecution},
	{"PendingRows", contractPendingRows},
	{"OutboxDelivered", contractOutboxDelivered},
	// Work items.
	{"ActivityEnqueueFetch", contractActivityEnqueueFetch},
	{"ActivityLockExpiry", contractActivityLockExpiry},
	{"ActivityRenew", contractActivityRenew},
	{"ActivityComplete", contractActivityComplete},
	{"ActivityAbandon", contractActivityAbandon},
	{"ActivityLockLost", contractActivityLockLost},
	// Dead letters.
	{"DeadLetterMessages", contractDeadLetterMessages},
	{"DeadLetterActivity", contractDeadLetterActivity},
	{"DeadLetterPaging", contractDeadLetterPaging},
	{"DeadLetterStaleReceipts", contractDeadLetterStaleReceipts},
	{"DeadLetterGone", contractDeadLetterGone},
	// Queries and purges.
	{"QueryInstances", contractQueryInstances},
	{"PurgeInstance", contractPurgeInstance},
	{"PurgeInstances", contractPurgeInstances},
	// Input at the edges.
	{"BadInput", contractBadInput},
	{"EscapedInstanceIDs", contractEscapedInstanceIDs},
	{"LargePayloads", contractLargePayloads},
	// Hosts and the task hub.
	{"Hosts", contractHosts},
	{"TaskHubAdmin", contractTaskHubAdmin},
}

// contractSendFetchRoundTrip: every field of a message survives the queue,
// payloads that are JSON and payloads that are not, times to the millisecond.
func contractSendFetchRoundTrip(c *contract) {
	cest := time.FixedZone("CEST", 2*60*60)
	failure := &core.Failure{Kind: core.KindApplication, Type: "OutOfStock", Message: "no more widgets",
		Stack: "main.go:42", NonRetriable: true, Cause: &core.Failure{Kind: core.KindInfrastructure, Message: "root cause"}}
	msgs := []*core.Message{
		{ID: "json", InstanceID: "order-1", ExecutionID: "e1", Event: &core.Event{Seq: -1, Kind: core.EventEventRaised,
			Time: baseTime.Add(456 * time.Microsecond), Name: "approved", Data: []byte(`{"ok":true,"items":[1,2,3]}`), MessageID: "json"}},
		{ID: "binary", InstanceID: "order-1", Event: &core.Event{Seq: -1, Kind: core.EventActivityCompleted,
			Time: baseTime.In(cest).Add(time.Millisecond), TaskID: 7, Data: []byte{0x00, 0xff, '{', '"', 0x80, '\n'}}},
		{ID: "text", InstanceID: "order-1", Event: &core.Event{Seq: -1, Kind: core.EventSubOrchestrationCompleted,
			Time: baseTime, TaskID: 8, Data: []byte("plain text, not JSON")}},
		{ID: "failure", InstanceID: "order-2", ExecutionID: "e2", Event: &core.Event{Seq: -1, Kind: core.EventActivityFailed,
			Time: baseTime, TaskID: 9, Failure: failure}},
		{ID: "timer", InstanceID: "order-2", Event: &core.Event{Seq: -1, Kind: core.EventTimerFired, Time: baseTime,
			TaskID: 3, FireAt: baseTime.Add(90 * time.Second)}},
		{ID: "start", InstanceID: "order-3", Event: &core.Event{Seq: -1, Kind: core.EventExecutionStarted, Time: baseTime,
			Name: "Checkout", Version: "2.1", ExecutionID: "e3", Data: []byte(`"input"`), ScheduledStart: baseTime.Add(time.Hour),
			Parent: &core.ParentRef{InstanceID: "parent", ExecutionID: "pe", TaskID: 4, Name: "Parent"}}},
		{ID: "terminate", InstanceID: "order-3", Event: &core.Event{Seq: -1, Kind: core.EventExecutionTerminated,
			Time: baseTime, Data: []byte(`"by operator"`), Recursive: true, Reason: "operator"}},
	}
	c.send(msgs...)
	for p, want := range c.byPartition(msgs) {
		got := c.fetchIDs(p, c.longLock(), messageIDs(want)...)
		for _, w := range want {
			c.checkMessage(w, got[w.ID], 1)
		}
	}
}

// contractRouting: PartitionOf is FNV-1a 32 mod P, and a message lands in its
// instance's partition and no other.
func contractRouting(c *contract) {
	n := c.p.Partitions()
	if n < 1 {
		c.t.Fatalf("Partitions() = %d", n)
	}
	for i := range 200 {
		id := fmt.Sprintf("route-%d", i)
		if got, want := c.p.PartitionOf(id), core.PartitionFor(id, n); got != want {
			c.t.Fatalf("PartitionOf(%q) = %d, want %d (FNV-1a 32 mod %d, the routing every host and client shares)", id, got, want, n)
		}
	}
	if n == 1 {
		c.t.Log("one partition: routing between partitions is not exercised")
	}
	var msgs []*core.Message
	for p := range n {
		for _, id := range c.idsIn(p, "route-", 2) {
			msgs = append(msgs, newMessage("to-"+id, id, raised("ping", nil)))
		}
	}
	c.send(msgs...)
	for p, want := range c.byPartition(msgs) {
		c.fetchIDs(p, c.longLock(), messageIDs(want)...)
	}
}

// contractBatchArrivesExactlyOnce: every message of a batch arrives once,
// fetches honour max (times Options.MaxPacked), and locked messages are not
// handed out again. Order is not checked: Azure queues do not keep it.
func contractBatchArrivesExactlyOnce(c *contract) {
	p := c.p.PartitionOf("batch-0")
	ids := c.idsIn(p, "batch-", 3)
	var msgs []*core.Message
	for i := range 20 {
		msgs = append(msgs, newMessage(fmt.Sprintf("m%02d", i), ids[i%3], raised("n", []byte(strconv.Itoa(i)))))
	}
	c.send(msgs[:12]...)
	c.send(msgs[12:]...)
	var first []*core.Message
	for w := c.until(c.timeout()); len(first) == 0 && w.next(); {
		var err error
		first, err = c.p.FetchMessages(c.ctx(), p, 5, c.longLock())
		c.noErr(err, "FetchMessages(max 5)")
	}
	if len(first) == 0 || len(first) > 5*c.opts.MaxPacked {
		c.t.Fatalf("FetchMessages(max 5) returned %d messages (the provider packs at most %d in one queue message)", len(first), c.opts.MaxPacked)
	}
	byID := map[string]*core.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	for _, m := range first {
		if byID[m.ID] == nil {
			c.t.Fatalf("fetched an unexpected or repeated message %q", m.ID)
		}
		c.checkMessage(byID[m.ID], m, 1)
		delete(byID, m.ID)
	}
	var rest []string
	for _, m := range msgs {
		if byID[m.ID] != nil {
			rest = append(rest, m.ID)
		}
	}
	for id, m := range c.fetchIDs(p, c.longLock(), rest...) {
		c.checkMessage(byID[id], m, 1)
	}
	if more := c.fetch(p, c.longLock()); len(more) > 0 {
		c.t.Fatalf("after all 20 messages, FetchMessages returned %s again while they were locked", describeMessages(more))
	}
}

// contractDelayedSend: a message with VisibleAt in the future stays hidden
// until then; one with VisibleAt in the past is visible at once.
func contractDelayedSend(c *contract) {
	p := c.p.PartitionOf("delayed")
	delay := 2 * c.opts.MinLock
	sent := time.Now()
	later := newMessage("later", "delayed", raised("later", nil))
	later.VisibleAt = sent.Add(delay)
	past := newMessage("past", "delayed", raised("past", nil))
	past.VisibleAt = sent.Add(-time.Hour)
	c.send(later, past, newMessage("now", "delayed", raised("now", nil)))
	c.fetchIDs(p, c.longLock(), "past", "now")
	c.fetchIDs(p, c.longLock(), "later")
	c.atLeast("message sent with VisibleAt", time.Since(sent), delay)
}

// contractMessageLockExpiry: a fetched message is invisible until its lock
// expires, then delivered again with DequeueCount+1.
func contractMessageLockExpiry(c *contract) {
	lock := c.opts.MinLock
	m := newMessage("locked", "lock-1", raised("e", []byte(`"data"`)))
	p := c.p.PartitionOf(m.InstanceID)
	c.send(m)
	locked := time.Now()
	c.checkMessage(m, c.fetchID(p, lock, m.ID), 1)
	if got := c.fetch(p, lock); len(got) > 0 {
		c.t.Fatalf("FetchMessages returned %s while it was locked", describeMessages(got))
	}
	c.checkMessage(m, c.fetchID(p, lock, m.ID), 2)
	c.atLeast("locked message", time.Since(locked), lock)
}

// contractDeleteMessages: deleted messages never come back; deleting twice
// is not an error; messages without a receipt are ignored.
func contractDeleteMessages(c *contract) {
	lock := c.opts.MinLock
	a, b := newMessage("a", "delete-1", raised("a", nil)), newMessage("b", "delete-1", raised("b", nil))
	p := c.p.PartitionOf("delete-1")
	c.send(a, b)
	got := c.fetchIDs(p, lock, "a", "b")
	noReceipt := *got["b"]
	noReceipt.Receipt = nil
	c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{&noReceipt}), "DeleteMessages without a receipt")
	c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{got["a"]}), "DeleteMessages")
	c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{got["a"]}), "DeleteMessages of a deleted message")
	// b comes back when its lock expires (the delete without receipt was
	// ignored); a, locked just as long, must not.
	b2 := c.fetchID(p, lock, "b")
	c.checkMessage(b, b2, 2)
	c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{b2}), "DeleteMessages")
	c.expectNoMessages(p, 2*lock)
}

// contractAbandonMessages: abandoning with delay 0 makes a message visible
// at once, with a delay after about that long.
func contractAbandonMessages(c *contract) {
	m := newMessage("abandoned", "abandon-1", raised("e", nil))
	p := c.p.PartitionOf(m.InstanceID)
	c.send(m)
	got := c.fetchID(p, c.longLock(), m.ID)
	noReceipt := *got
	noReceipt.Receipt = nil
	c.noErr(c.p.AbandonMessages(c.ctx(), p, []*core.Message{&noReceipt}, 0), "AbandonMessages without a receipt")
	if again := c.fetch(p, c.longLock()); len(again) > 0 {
		c.t.Fatalf("an abandon without a receipt unlocked %s", describeMessages(again))
	}

	c.noErr(c.p.AbandonMessages(c.ctx(), p, []*core.Message{got}, 0), "AbandonMessages(delay 0)")
	// Within half the original lock: abandon unlocked it, the lock did not expire.
	got = c.fetchIDsWithin(p, c.longLock(), c.longLock()/2, m.ID)[m.ID]
	c.checkMessage(m, got, 2)

	delay := 2 * c.opts.MinLock
	c.noErr(c.p.AbandonMessages(c.ctx(), p, []*core.Message{got}, delay), "AbandonMessages(delay %v)", delay)
	abandoned := time.Now()
	if again := c.fetch(p, c.longLock()); len(again) > 0 {
		c.t.Fatalf("a message abandoned with delay %v was fetched at once", delay)
	}
	c.checkMessage(m, c.fetchID(p, c.longLock(), m.ID), 3)
	c.atLeast("message abandoned with a delay", time.Since(abandoned), delay)
}

// contractIsolation: the provider keeps copies. Changing what was sent,
// committed, fetched or loaded afterwards changes nothing stored.
func contractIsolation(c *contract) {
	sent := newMessage("iso", "iso-1", raised("original", []byte(`"original"`)))
	want := newMessage("iso", "iso-1", raised("original", []byte(`"original"`)))
	p := c.p.PartitionOf(sent.InstanceID)
	c.send(sent)
	sent.Event.Name, sent.Event.Data[1] = "changed", 'X'
	got := c.fetchID(p, c.longLock(), "iso")
	c.checkMessage(want, got, 1)
	got.Event.Seq, got.Event.Name, got.Event.Data[1] = 7, "changed", 'Y'
	c.noErr(c.p.AbandonMessages(c.ctx(), p, []*core.Message{got}, 0), "AbandonMessages")
	c.checkMessage(want, c.fetchID(p, c.longLock(), "iso"), 2)

	ep := newInstanceEpisode("iso-2")
	c.addActivity(ep, 1, []byte(`"in"`))
	token := c.commitOK(ep)
	m := &instModel{}
	wantEp := newInstanceEpisode("iso-2")
	c.addActivity(wantEp, 1, []byte(`"in"`))
	m.apply(wantEp, token)
	ep.State.Name, ep.State.Input[1] = "Changed", 'X'
	ep.History[1].Data[1], ep.History[0].Seq = 'X', 9
	ep.PendingActivities[0].Input[1] = 'X'
	c.checkStored(m)
	c.checkPending(c.p.PartitionOf("iso-2"), m)

	snap, err := c.p.LoadInstance(c.ctx(), c.p.PartitionOf("iso-2"), "iso-2")
	c.noErr(err, "LoadInstance")
	snap.State.Name, snap.State.Input[1] = "Changed", 'Y'
	snap.History[1].Data[1], snap.History[0].Seq = 'Y', 9
	c.checkStored(m)
}

// contractCommitNewInstance: a new instance commits with an empty token and
// reads back everywhere; a second create conflicts and writes nothing.
func contractCommitNewInstance(c *contract) {
	m := c.create(newInstanceEpisode("new-1", func(s *core.InstanceState) {
		s.Version, s.CustomStatus = "v3", []byte(`"starting"`)
		s.Parent = &core.ParentRef{InstanceID: "parent-1", ExecutionID: "pe", TaskID: 2, Name: "Parent"}
	}))
	c.checkStored(m)
	c.conflict(newInstanceEpisode("new-1", setName("Impostor")))
	c.checkStored(m)

	_, err := c.p.LoadInstance(c.ctx(), c.p.PartitionOf("missing"), "missing")
	c.wantErr(err, core.ErrInstanceNotFound, "LoadInstance of a missing instance")
	_, err = c.p.GetInstance(c.ctx(), "missing", true)
	c.wantErr(err, core.ErrInstanceNotFound, "GetInstance of a missing instance")
	if h, err := c.p.GetHistory(c.ctx(), "missing"); err != nil && !errors.Is(err, core.ErrInstanceNotFound) || len(h) > 0 {
		c.t.Fatalf("GetHistory of a missing instance = %d events, %v; want ErrInstanceNotFound or nothing", len(h), err)
	}
}

// contractCommitTokens: the token a commit returns and the token a load
// returns both let the next commit through; stale tokens conflict and
// nothing of their episode is written.
func contractCommitTokens(c *contract) {
	m := c.create(newInstanceEpisode("tokens"))
	created := m.token
	c.advance(m, m.next(nil, &core.Event{Kind: core.EventActivityScheduled, TaskID: 1, Name: "Charge"}))
	m.token = c.checkStored(m)
	loaded := m.token
	c.advance(m, m.next(nil, &core.Event{Kind: core.EventActivityCompleted, TaskID: 1, Data: []byte(`"ok"`)}))
	for _, stale := range []core.CommitToken{created, loaded} {
		ep := m.next(setStatus(core.StatusCompleted), &core.Event{Kind: core.EventExecutionCompleted, Status: core.StatusCompleted})
		ep.Token = stale
		addTimer(ep, 5, baseTime.Add(time.Hour))
		c.addActivity(ep, 6, nil)
		setOutbox(ep, "stale-out", newMessage("stale-msg", "elsewhere", raised("x", nil)))
		c.conflict(ep)
	}
	c.checkStored(m)
	c.checkPending(c.p.PartitionOf(m.id()), m)
}

// contractCommitRace: two writers commit with the same token at the same
// time; exactly one wins and only its episode is visible.
func contractCommitRace(c *contract) {
	m := c.create(newInstanceEpisode("race"))
	p := c.p.PartitionOf(m.id())
	for round := range 5 {
		var eps [2]*core.Episode
		for i := range eps {
			eps[i] = m.next(func(s *core.InstanceState) {
				s.CustomStatus = fmt.Appendf(nil, `"writer %d, round %d"`, i, round)
			}, raised(fmt.Sprintf("writer-%d", i), nil))
		}
		var (
			results [2][]core.CommitResult
			errs    [2]error
			wg      sync.WaitGroup
			start   = make(chan struct{})
		)
		for i, ep := range eps {
			wg.Go(func() {
				<-start
				results[i], errs[i] = c.p.Commit(c.ctx(), p, &core.CommitBatch{Episodes: []*core.Episode{ep}})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range eps {
			c.noErr(errs[i], "round %d: Commit of writer %d", round, i)
			if len(results[i]) != 1 {
				c.t.Fatalf("round %d: Commit returned %d results for 1 episode", round, len(results[i]))
			}
			switch r := results[i][0]; {
			case r.Err == nil && winner >= 0:
				c.t.Fatalf("round %d: both writers committed with token %q", round, m.token)
			case r.Err == nil:
				winner = i
			case !errors.Is(r.Err, core.ErrConflict):
				c.t.Fatalf("round %d: the losing writer got %v, want ErrConflict", round, r.Err)
			}
		}
		if winner < 0 {
			c.t.Fatalf("round %d: neither writer committed", round)
		}
		m.apply(eps[winner], results[winner][0].Token)
		c.checkStored(m)
	}
}

// contractGroupCommit: episodes of one batch commit independently: a stale
// one conflicts and writes nothing, the others (a new instance among them)
// are written.
func contractGroupCommit(c *contract) {
	p := c.p.PartitionOf("group-0")
	ids := c.idsIn(p, "group-", 4)
	a, b, stale := c.create(newInstanceEpisode(ids[0])), c.create(newInstanceEpisode(ids[1])), c.create(newInstanceEpisode(ids[2]))
	staleToken := stale.token
	c.advance(stale, stale.next(nil, raised("moved on", nil)))

	epA := a.next(setStatus(core.StatusCompleted), &core.Event{Kind: core.EventExecutionCompleted, Status: core.StatusCompleted})
	epNew := newInstanceEpisode(ids[3])
	addTimer(epNew, 1, baseTime.Add(time.Hour))
	epStale := stale.next(setStatus(core.StatusFailed), &core.Event{Kind: core.EventExecutionCompleted, Status: core.StatusFailed})
	epStale.Token = staleToken
	addTimer(epStale, 2, baseTime.Add(time.Hour))
	c.addActivity(epStale, 3, nil)
	setOutbox(epStale, "stale-out", newMessage("stale-msg", "elsewhere", raised("x", nil)))
	epB := b.next(nil, &core.Event{Kind: core.EventActivityScheduled, TaskID: 1, Name: "Charge"})
	c.addActivity(epB, 1, []byte(`"b"`))
	setOutbox(epB, "b-out", newMessage("b-msg", "elsewhere", raised("y", nil)))

	res := c.commit(&core.CommitBatch{Episodes: []*core.Episode{epA, epNew, epStale, epB}})
	c.wantErr(res[2].Err, core.ErrConflict, "stale episode of a group commit")
	for i, ep := range []*core.Episode{epA, epNew, nil, epB} {
		if ep != nil && (res[i].Err != nil || res[i].Token == "") {
			c.t.Fatalf("episode %d (instance %q) of a group commit: token %q, error %v", i, ep.InstanceID, res[i].Token, res[i].Err)
		}
	}
	a.apply(epA, res[0].Token)
	n := &instModel{}
	n.apply(epNew, res[1].Token)
	b.apply(epB, res[3].Token)
	for _, m := range []*instModel{a, n, stale, b} {
		c.checkStored(m)
	}
	c.checkPending(p, a, n, stale, b)
}

// contractNewExecution: a new execution drops the old one's history and
// starts again at Seq 0, after continue-as-new and after a restart.
func contractNewExecution(c *contract) {
	m := c.create(newInstanceEpisode("continue"))
	ep := m.next(nil, &core.Event{Kind: core.EventTimerCreated, TaskID: 1, FireAt: baseTime.Add(time.Hour)},
		&core.Event{Kind: core.EventActivityScheduled, TaskID: 2, Name: "Charge"})
	addTimer(ep, 1, baseTime.Add(time.Hour))
	c.addActivity(ep, 2, nil)
	c.advance(m, ep)
	c.checkStored(m)

	c.advance(m, m.newExecution("e2"))
	c.checkStored(m)
	c.checkPending(c.p.PartitionOf(m.id()), m)
	c.advance(m, m.next(nil, raised("after", []byte(`1`))))
	c.checkStored(m)

	c.advance(m, m.next(setStatus(core.StatusCompleted), &core.Event{Kind: core.EventExecutionCompleted, Status: core.StatusCompleted}))
	c.advance(m, m.newExecution("e3"))
	c.checkStored(m)
	if len(m.history) != 2 || m.history[0].Seq != 0 {
		c.t.Fatalf("test bug: the model's new execution has %d events", len(m.history))
	}
}

// contractPendingRows: timer, activity and outbox rows added by commits are
// what OpenPartition returns, for their partition only, until a later
// commit removes them.
func contractPendingRows(c *contract) {
	p := c.p.PartitionOf("pending-0")
	ids := c.idsIn(p, "pending-", 2)
	ep := newInstanceEpisode(ids[0])
	addTimer(ep, 1, baseTime.Add(time.Hour))
	addTimer(ep, 2, baseTime.Add(2*time.Hour))
	c.addActivity(ep, 3, []byte(`{"amount":12}`))
	setOutbox(ep, "x-out-1", newMessage("x-m1", "other-1", raised("a", []byte(`1`))),
		newMessage("x-m2", "other-2", &core.Event{Seq: -1, Kind: core.EventSubOrchestrationCompleted, TaskID: 4, Data: []byte{1, 2}}))
	x := c.create(ep)
	ep = newInstanceEpisode(ids[1])
	addTimer(ep, 1, baseTime.Add(30*time.Minute))
	y := c.create(ep)
	c.checkPending(p, x, y)
	for q := range c.p.Partitions() {
		if q != p {
			c.checkPending(q)
		}
	}

	ep = x.next(nil)
	removeTimer(ep, 1)
	removeActivity(ep, 3)
	addTimer(ep, 4, baseTime.Add(4*time.Hour))
	c.addActivity(ep, 5, nil)
	c.advance(x, ep)
	c.checkPending(p, x, y)

	ep = x.next(setStatus(core.StatusCompleted))
	removeTimer(ep, 2)
	removeTimer(ep, 4)
	removeActivity(ep, 5)
	c.advance(x, ep)
	c.checkPending(p, x, y)
	c.checkStored(x)
}

// contractOutboxDelivered: CommitBatch.OutboxDelivered deletes outbox units,
// alone or along with episodes; units already gone are not an error.
func contractOutboxDelivered(c *contract) {
	p := c.p.PartitionOf("outbox-0")
	ids := c.idsIn(p, "outbox-", 2)
	ep := newInstanceEpisode(ids[0])
	setOutbox(ep, "x-1", newMessage("x-1-a", "dest-1", raised("a", nil)), newMessage("x-1-b", "dest-2", raised("b", nil)))
	x := c.create(ep)
	ep = newInstanceEpisode(ids[1])
	setOutbox(ep, "y-1", newMessage("y-1-a", "dest-3", raised("c", nil)))
	y := c.create(ep)
	c.checkPending(p, x, y)

	delivered := core.OutboxRef{Partition: p, InstanceID: x.id(), ID: "x-1"}
	c.commit(&core.CommitBatch{OutboxDelivered: []core.OutboxRef{delivered}})
	delete(x.outbox, "x-1")
	c.checkPending(p, x, y)
	c.commit(&core.CommitBatch{OutboxDelivered: []core.OutboxRef{delivered}})
	c.commit(&core.CommitBatch{OutboxDelivered: []core.OutboxRef{{Partition: p, InstanceID: x.id(), ID: "never-written"}}})
	c.checkPending(p, x, y)

	ep = x.next(nil)
	setOutbox(ep, "x-2", newMessage("x-2-a", "dest-1", raised("d", nil)))
	res := c.commit(&core.CommitBatch{Episodes: []*core.Episode{ep},
		OutboxDelivered: []core.OutboxRef{{Partition: p, InstanceID: y.id(), ID: "y-1"}}})
	if res[0].Err != nil {
		c.t.Fatalf("commit with OutboxDelivered: %v", res[0].Err)
	}
	x.apply(ep, res[0].Token)
	delete(y.outbox, "y-1")
	c.checkPending(p, x, y)
	c.checkStored(x)
}

// contractActivityEnqueueFetch: the work-item queue is empty at first, then
// hands out each enqueued task once with its fields.
func contractActivityEnqueueFetch(c *contract) {
	it, err := c.p.FetchActivity(c.ctx(), c.opts.MinLock)
	c.noErr(err, "FetchActivity on an empty queue")
	if it != nil {
		c.t.Fatalf("FetchActivity on an empty queue returned a work item")
	}
	tasks := map[int64]*core.ActivityTask{}
	for i := range int64(3) {
		t := c.task(fmt.Sprintf("worker-%d", i), "e1", i+1, fmt.Appendf(nil, `{"n":%d}`, i))
		tasks[t.TaskID] = t
		c.enqueue(t)
	}
	for range len(tasks) {
		it := c.fetchActivity(c.longLock())
		want := tasks[it.Task.TaskID]
		if want == nil {
			c.t.Fatalf("FetchActivity returned task %d twice or one never enqueued", it.Task.TaskID)
		}
		c.checkWorkItem(want, it, 1)
		delete(tasks, it.Task.TaskID)
	}
	c.expectNoActivity(c.opts.MinLock)
}

// contractActivityLockExpiry: a fetched work item is invisible until its
// lock expires, then delivered again with DequeueCount+1; the stale item can
// no longer be renewed or completed.
func contractActivityLockExpiry(c *contract) {
	lock := c.opts.MinLock
	task := c.task("expiry-1", "e1", 1, []byte(`"in"`))
	c.enqueue(task)
	locked := time.Now()
	first := c.fetchActivity(lock)
	c.checkWorkItem(task, first, 1)
	if it, err := c.p.FetchActivity(c.ctx(), lock); err != nil || it != nil {
		c.t.Fatalf("FetchActivity while the only item is locked = %v, %v; want nil", it, err)
	}
	second := c.fetchActivity(c.longLock())
	c.atLeast("locked work item", time.Since(locked), lock)
	c.checkWorkItem(task, second, 2)

	c.wantErr(c.p.RenewActivity(c.ctx(), first, lock), core.ErrLockLost, "RenewActivity of a stale work item")
	result := newMessage("expiry-result", task.InstanceID, &core.Event{Seq: -1, Kind: core.EventActivityCompleted, TaskID: 1})
	c.wantErr(c.p.CompleteActivity(c.ctx(), first, result), core.ErrLockLost, "CompleteActivity of a stale work item")
	c.noErr(c.p.CompleteActivity(c.ctx(), second, result), "CompleteActivity of the current work item")
}

// contractActivityRenew: a renewed work item stays hidden past its first lock
// and can still be completed.
func contractActivityRenew(c *contract) {
	lock := c.opts.MinLock
	task := c.task("renew-1", "e1", 1, nil)
	c.enqueue(task)
	it := c.fetchActivity(lock)
	c.noErr(c.p.RenewActivity(c.ctx(), it, 4*lock), "RenewActivity")
	c.expectNoActivity(2 * lock)
	result := newMessage("renew-result", task.InstanceID, &core.Event{Seq: -1, Kind: core.EventActivityCompleted, TaskID: 1})
	c.noErr(c.p.CompleteActivity(c.ctx(), it, result), "CompleteActivity after a renewal")
}

// contractActivityComplete: completing a work item delivers the result to
// the control queue of the instance's partition and removes the item.
func contractActivityComplete(c *contract) {
	lock := c.opts.MinLock
	task := c.task("complete-1", "e7", 3, []byte(`{"amount":12}`))
	c.enqueue(task)
	it := c.fetchActivity(lock)
	result := &core.Message{ID: "result-1", InstanceID: task.InstanceID, ExecutionID: task.ExecutionID,
		Event: &core.Event{Seq: -1, Kind: core.EventActivityCompleted, Time: baseTime, TaskID: 3, Data: []byte(`{"receipt":"r-1"}`)}}
	c.noErr(c.p.CompleteActivity(c.ctx(), it, result), "CompleteActivity")
	c.checkMessage(result, c.fetchID(task.Partition, c.longLock(), result.ID), 1)
	for q := range c.p.Partitions() {
		if q != task.Partition {
			c.expectNoMessages(q, 0)
		}
	}
	c.expectNoActivity(2 * lock)
}

// contractActivityAbandon: an abandoned work item comes back at once with
// delay 0, after about the delay otherwise.
func contractActivityAbandon(c *contract) {
	task := c.task("abandon-1", "e1", 1, nil)
	c.enqueue(task)
	it := c.fetchActivity(c.longLock())
	c.noErr(c.p.AbandonActivity(c.ctx(), it, 0), "AbandonActivity(delay 0)")
	it = c.fetchActivityWithin(c.longLock(), c.longLock()/2)
	c.checkWorkItem(task, it, 2)

	delay := 2 * c.opts.MinLock
	c.noErr(c.p.AbandonActivity(c.ctx(), it, delay), "AbandonActivity(delay %v)", delay)
	abandoned := time.Now()
	if it, err := c.p.FetchActivity(c.ctx(), c.longLock()); err != nil || it != nil {
		c.t.Fatalf("FetchActivity right after an abandon with delay %v = %v, %v; want nil", delay, it, err)
	}
	it = c.fetchActivity(c.longLock())
	c.atLeast("work item abandoned with a delay", time.Since(abandoned), delay)
	c.checkWorkItem(task, it, 3)
}

// contractActivityLockLost: once a work item's lock is lost (it expired and
// another fetch took the item, or the item is gone), AbandonActivity and
// DeadLetterActivity fail with ErrLockLost and change nothing: the current
// holder keeps its lock, and no dead letter is written.
func contractActivityLockLost(c *contract) {
	lock := c.opts.MinLock
	task := c.task("lost-1", "e1", 1, []byte(`"in"`))
	c.enqueue(task)
	stale := c.fetchActivity(lock)
	current := c.fetchActivity(c.longLock()) // once the first lock has expired
	c.checkWorkItem(task, current, 2)
	c.wantErr(c.p.AbandonActivity(c.ctx(), stale, 0), core.ErrLockLost, "AbandonActivity of a work item fetched again")
	c.wantErr(c.p.DeadLetterActivity(c.ctx(), stale, "late"), core.ErrLockLost, "DeadLetterActivity of a work item fetched again")
	if dls := c.deadLetters(10); len(dls) > 0 {
		c.t.Fatalf("DeadLetterActivity with a lost lock wrote a dead letter: %q", dls[0].Reason)
	}
	c.expectNoActivity(2 * lock) // the stale abandon did not unlock it

	result := newMessage("lost-result", task.InstanceID, &core.Event{Seq: -1, Kind: core.EventActivityCompleted, TaskID: 1})
	c.noErr(c.p.CompleteActivity(c.ctx(), current, result), "CompleteActivity of the current work item")
	c.wantErr(c.p.AbandonActivity(c.ctx(), current, 0), core.ErrLockLost, "AbandonActivity of a completed work item")
	c.wantErr(c.p.DeadLetterActivity(c.ctx(), current, "late"), core.ErrLockLost, "DeadLetterActivity of a completed work item")
	if dls := c.deadLetters(10); len(dls) > 0 {
		c.t.Fatalf("DeadLetterActivity of a completed work item wrote a dead letter: %q", dls[0].Reason)
	}
	c.expectNoActivity(lock)
}

// contractDeadLetterMessages: dead-lettered messages leave the queue, are
// listed with their reason, come back when replayed, and are gone for good
// when discarded.
func contractDeadLetterMessages(c *contract) {
	lock := c.opts.MinLock
	bad := newMessage("bad", "poisoned-1", raised("boom", []byte(`"payload"`)))
	good := newMessage("good", "poisoned-1", raised("fine", nil))
	p := c.p.PartitionOf(bad.InstanceID)
	c.send(bad, good)
	got := c.fetchIDs(p, lock, "bad", "good")
	before := time.Now()
	c.noErr(c.p.DeadLetterMessages(c.ctx(), p, []*core.Message{got["bad"]}, "poison: delivered 6 times"), "DeadLetterMessages")
	c.noErr(c.p.AbandonMessages(c.ctx(), p, []*core.Message{got["good"]}, 0), "AbandonMessages")
	c.fetchID(p, c.longLock(), "good")
	c.expectNoMessages(p, 2*lock) // past the dead letter's lock

	d := c.oneDeadLetter()
	c.checkDeadLetter(d, p, bad.InstanceID, "poison: delivered 6 times", before)
	if d.Message == nil || d.Activity != nil {
		c.t.Fatalf("dead letter of a message: Message = %v, Activity = %v", d.Message, d.Activity)
	}
	c.same("dead-lettered message", bad, d.Message)

	c.noErr(c.p.ReplayDeadLetter(c.ctx(), d.ID), "ReplayDeadLetter")
	if dls := c.deadLetters(10); len(dls) > 0 {
		c.t.Fatalf("a replayed dead letter is still listed")
	}
	replayed := c.fetchID(p, lock, "bad")
	c.same("replayed message", bad, replayed)

	c.noErr(c.p.DeadLetterMessages(c.ctx(), p, []*core.Message{replayed}, "again"), "DeadLetterMessages")
	d = c.oneDeadLetter()
	c.noErr(c.p.DiscardDeadLetter(c.ctx(), d.ID), "DiscardDeadLetter")
	if dls := c.deadLetters(10); len(dls) > 0 {
		c.t.Fatalf("a discarded dead letter is still listed")
	}
	c.expectNoMessages(p, 2*lock)
}

// contractDeadLetterActivity: the same for work items.
func contractDeadLetterActivity(c *contract) {
	lock := c.opts.MinLock
	task := c.task("poisoned-2", "e1", 4, []byte(`"input"`))
	c.enqueue(task)
	it := c.fetchActivity(lock)
	before := time.Now()
	c.noErr(c.p.DeadLetterActivity(c.ctx(), it, "poison: work item delivered 6 times"), "DeadLetterActivity")
	c.expectNoActivity(2 * lock)

	d := c.oneDeadLetter()
	c.checkDeadLetter(d, -1, task.InstanceID, "poison: work item delivered 6 times", before)
	if d.Activity == nil || d.Message != nil {
		c.t.Fatalf("dead letter of a work item: Activity = %v, Message = %v", d.Activity, d.Message)
	}
	c.same("dead-lettered activity", task, d.Activity)

	c.noErr(c.p.ReplayDeadLetter(c.ctx(), d.ID), "ReplayDeadLetter")
	if dls := c.deadLetters(10); len(dls) > 0 {
		c.t.Fatalf("a replayed dead letter is still listed")
	}
	it = c.fetchActivity(lock)
	c.same("replayed activity", task, it.Task)

	c.noErr(c.p.DeadLetterActivity(c.ctx(), it, "again"), "DeadLetterActivity")
	c.noErr(c.p.DiscardDeadLetter(c.ctx(), c.oneDeadLetter().ID), "DiscardDeadLetter")
	if dls := c.deadLetters(10); len(dls) > 0 {
		c.t.Fatalf("a discarded dead letter is still listed")
	}
	c.expectNoActivity(2 * lock)
}

// contractDeadLetterPaging: small pages list every dead letter exactly once.
func contractDeadLetterPaging(c *contract) {
	var msgs []*core.Message
	for i := range 11 {
		msgs = append(msgs, newMessage(fmt.Sprintf("dl-%02d", i), fmt.Sprintf("dead-%d", i), raised("x", nil)))
	}
	c.send(msgs...)
	want := map[string]bool{}
	for p, ms := range c.byPartition(msgs) {
		got := c.fetchIDs(p, c.longLock(), messageIDs(ms)...)
		for _, m := range got {
			c.noErr(c.p.DeadLetterMessages(c.ctx(), p, []*core.Message{m}, "reason "+m.ID), "DeadLetterMessages")
			want["message "+m.ID] = true
		}
	}
	for i := range int64(2) {
		c.enqueue(c.task(fmt.Sprintf("dead-task-%d", i), "e1", i, nil))
		it := c.fetchActivity(c.longLock())
		c.noErr(c.p.DeadLetterActivity(c.ctx(), it, "reason"), "DeadLetterActivity")
		want[fmt.Sprintf("task %d", it.Task.TaskID)] = true
	}
	got := map[string]bool{}
	for _, d := range c.deadLetters(3) {
		switch {
		case d.Message != nil:
			got["message "+d.Message.ID] = true
		case d.Activity != nil:
			got[fmt.Sprintf("task %d", d.Activity.TaskID)] = true
		}
	}
	c.same("dead letters listed 3 at a time", want, got)
}

// contractDeadLetterStaleReceipts: DeadLetterMessages moves only messages
// whose receipts are current. A stale receipt (the message was fetched
// again, or deleted) is skipped without error and writes no dead letter; a
// message without a receipt is ErrInvalidInput, and then nothing of the
// call is moved.
func contractDeadLetterStaleReceipts(c *contract) {
	lock := c.opts.MinLock
	late, other := newMessage("late", "late-dl-1", raised("late", nil)), newMessage("other", "late-dl-1", raised("other", nil))
	p := c.p.PartitionOf(late.InstanceID)
	c.send(late, other)
	stale := c.fetchIDs(p, lock, "late", "other")
	current := c.fetchIDs(p, c.longLock(), "late", "other") // once the first locks have expired
	noDeadLetters := func(what string) {
		c.t.Helper()
		if dls := c.deadLetters(10); len(dls) > 0 {
			c.t.Fatalf("%s wrote a dead letter: %q", what, dls[0].Reason)
		}
	}

	c.noErr(c.p.DeadLetterMessages(c.ctx(), p, []*core.Message{stale["late"]}, "stale"), "DeadLetterMessages with a stale receipt")
	noDeadLetters("DeadLetterMessages with a stale receipt")
	c.expectNoMessages(p, 2*lock) // still locked by the current receipts

	noReceipt := *current["late"]
	noReceipt.Receipt = nil
	c.wantErr(c.p.DeadLetterMessages(c.ctx(), p, []*core.Message{current["other"], &noReceipt}, "mixed"), core.ErrInvalidInput,
		"DeadLetterMessages of a fetched message and one without a receipt")
	noDeadLetters("DeadLetterMessages with a message without a receipt")

	c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{current["late"]}), "DeleteMessages")
	c.noErr(c.p.DeadLetterMessages(c.ctx(), p, []*core.Message{current["late"]}, "deleted"), "DeadLetterMessages of a deleted message")
	noDeadLetters("DeadLetterMessages of a deleted message")

	c.noErr(c.p.DeadLetterMessages(c.ctx(), p, []*core.Message{current["other"]}, "poison"),
		"DeadLetterMessages with a current receipt (after a call that failed on bad input)")
	d := c.oneDeadLetter()
	if d.Message == nil || d.Message.ID != other.ID || !strings.Contains(d.Reason, "poison") {
		c.t.Fatalf("dead letter %q: message %v, reason %q; want message %q, reason %q", d.ID, d.Message, d.Reason, other.ID, "poison")
	}
}

// contractDeadLetterGone: a dead letter that is gone (replayed or
// discarded) can be neither replayed nor discarded again: both fail with
// ErrInvalidInput, so that an operator who discards twice is told.
func contractDeadLetterGone(c *contract) {
	task := c.task("gone-1", "e1", 1, nil)
	c.enqueue(task)
	c.noErr(c.p.DeadLetterActivity(c.ctx(), c.fetchActivity(c.longLock()), "first"), "DeadLetterActivity")
	replayed := c.oneDeadLetter()
	c.noErr(c.p.ReplayDeadLetter(c.ctx(), replayed.ID), "ReplayDeadLetter")
	c.wantErr(c.p.ReplayDeadLetter(c.ctx(), replayed.ID), core.ErrInvalidInput, "ReplayDeadLetter of a replayed dead letter")
	c.wantErr(c.p.DiscardDeadLetter(c.ctx(), replayed.ID), core.ErrInvalidInput, "DiscardDeadLetter of a replayed dead letter")

	c.noErr(c.p.DeadLetterActivity(c.ctx(), c.fetchActivity(c.longLock()), "second"), "DeadLetterActivity")
	discarded := c.oneDeadLetter()
	c.noErr(c.p.DiscardDeadLetter(c.ctx(), discarded.ID), "DiscardDeadLetter")
	c.wantErr(c.p.DiscardDeadLetter(c.ctx(), discarded.ID), core.ErrInvalidInput, "DiscardDeadLetter of a discarded dead letter")
	c.wantErr(c.p.ReplayDeadLetter(c.ctx(), discarded.ID), core.ErrInvalidInput, "ReplayDeadLetter of a discarded dead letter")
	if dls := c.deadLetters(10); len(dls) > 0 {
		c.t.Fatalf("%d dead letters left after a discard", len(dls))
	}
	c.expectNoActivity(c.opts.MinLock)
}

// contractQueryInstances: every filter and their combinations list exactly
// the matching instances, across partitions, seven at a time.
func contractQueryInstances(c *contract) {
	names := []string{"OrderFlow", "Billing"}
	prefixes := []string{"alpha-", "beta-", "gamma-"}
	var models []*instModel
	for i := range 25 {
		id := fmt.Sprintf("%s%d", prefixes[i%3], i)
		models = append(models, c.create(newInstanceEpisode(id,
			setName(names[i%2]),
			setCreated(baseTime.Add(time.Duration(i)*time.Minute)),
			setPayloads(fmt.Appendf(nil, `{"in":%d}`, i), nil, fmt.Appendf(nil, `"custom %d"`, i)),
			setStatus(core.AllStatuses[i%len(core.AllStatuses)]))))
	}
	at := func(i int) time.Time { return baseTime.Add(time.Duration(i) * time.Minute) }
	cases := []struct {
		name string
		q    core.InstanceQuery
	}{
		{"All", core.InstanceQuery{}},
		{"Ended", core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted, core.StatusFailed, core.StatusTerminated}}},
		{"Name", core.InstanceQuery{Name: "Billing"}},
		{"Prefix", core.InstanceQuery{InstanceIDPrefix: "beta-"}},
		{"NarrowPrefix", core.InstanceQuery{InstanceIDPrefix: "beta-1"}},
		{"CreatedWindow", core.InstanceQuery{CreatedFrom: at(5), CreatedTo: at(15)}},
		{"CreatedFrom", core.InstanceQuery{CreatedFrom: at(20)}},
		{"CreatedTo", core.InstanceQuery{CreatedTo: at(3)}},
		{"NameAndStatuses", core.InstanceQuery{Name: "OrderFlow", Statuses: []core.Status{core.StatusRunning, core.StatusPending}}},
		{"Everything", core.InstanceQuery{Statuses: []core.Status{core.StatusRunning, core.StatusCompleted}, Name: "Billing",
			InstanceIDPrefix: "alpha-", CreatedFrom: at(2), CreatedTo: at(24)}},
	}
	for _, s := range core.AllStatuses {
		cases = append(cases, struct {
			name string
			q    core.InstanceQuery
		}{"Status" + s.String(), core.InstanceQuery{Statuses: []core.Status{s}}})
	}
	for _, tc := range cases {
		if !slices.ContainsFunc(models, func(m *instModel) bool { return matchesQuery(m.state, tc.q) }) {
			c.t.Fatalf("test bug: query %s matches nothing", tc.name)
		}
		for _, withPayloads := range []bool{false, true} {
			c.run(fmt.Sprintf("%s/payloads=%v", tc.name, withPayloads), func(c *contract) {
				q := tc.q
				q.PageSize, q.WithPayloads = 7, withPayloads
				c.checkQuery(q, models)
			})
		}
	}
	c.run("NoMatch", func(c *contract) { c.checkQuery(core.InstanceQuery{Name: "NoSuchOrchestration"}, models) })
	c.run("DefaultPageSize", func(c *contract) { c.checkQuery(core.InstanceQuery{WithPayloads: true}, models) })
	c.run("BadContinuation", func(c *contract) {
		_, err := c.p.QueryInstances(c.ctx(), core.InstanceQuery{Continuation: "not a continuation token %%%"})
		c.wantErr(err, core.ErrInvalidInput, "QueryInstances with a bad continuation")
	})
}

// contractPurgeInstance: only terminal instances are purged; a purged
// instance is gone with its history and pending rows, stale commits cannot
// bring it back, and its id can be used again.
func contractPurgeInstance(c *contract) {
	for _, s := range []core.Status{core.StatusPending, core.StatusRunning, core.StatusSuspended, core.StatusContinuedAsNew} {
		m := c.create(newInstanceEpisode("alive-"+s.String(), setStatus(s)))
		c.wantErr(c.p.PurgeInstance(c.ctx(), m.id()), core.ErrNotTerminal, "PurgeInstance of a %s instance", s)
		c.checkStored(m)
	}

	m := c.create(newInstanceEpisode("purged"))
	c.advance(m, m.next(nil, &core.Event{Kind: core.EventActivityScheduled, TaskID: 1, Name: "Charge"}))
	ep := m.next(setStatus(core.StatusCompleted), &core.Event{Kind: core.EventExecutionCompleted, Status: core.StatusCompleted})
	setOutbox(ep, "to-parent", newMessage("to-parent-msg", "parent", raised("done", nil)))
	c.advance(m, ep)
	other := c.create(newInstanceEpisode("purged-not"))
	c.noErr(c.p.PurgeInstance(c.ctx(), m.id()), "PurgeInstance of a completed instance")
	c.checkGone(m.id())
	c.checkQuery(core.InstanceQuery{InstanceIDPrefix: "purged"}, []*instModel{other})
	c.checkStored(other)

	c.conflict(m.next(nil, raised("late", nil)))
	c.checkGone(m.id())
	if err := c.p.PurgeInstance(c.ctx(), "never-existed"); err != nil && !errors.Is(err, core.ErrInstanceNotFound) {
		c.t.Fatalf("PurgeInstance of a missing instance: %v; want nil or ErrInstanceNotFound", err)
	}

	again := c.create(newInstanceEpisode(m.id(), setName("Reborn")))
	c.checkStored(again)
	c.checkPending(c.p.PartitionOf(m.id()), again)
}

// contractPurgeInstances: a filtered purge purges the terminal matches only
// and counts them.
func contractPurgeInstances(c *contract) {
	statuses := []core.Status{core.StatusCompleted, core.StatusCompleted, core.StatusCompleted, core.StatusFailed,
		core.StatusTerminated, core.StatusRunning, core.StatusPending, core.StatusContinuedAsNew, core.StatusSuspended}
	var ended, alive []*instModel
	for i, s := range statuses {
		m := c.create(newInstanceEpisode(fmt.Sprintf("batch-%d", i), setStatus(s)))
		if s.IsTerminal() {
			ended = append(ended, m)
		} else {
			alive = append(alive, m)
		}
	}
	keepDone := c.create(newInstanceEpisode("keep-done", setStatus(core.StatusCompleted)))
	keepRunning := c.create(newInstanceEpisode("keep-running"))
	purge := func(q core.InstanceQuery, want int) {
		c.t.Helper()
		n, err := c.p.PurgeInstances(c.ctx(), q)
		c.noErr(err, "PurgeInstances(%+v)", q)
		if n != want {
			c.t.Fatalf("PurgeInstances(%+v) = %d, want %d", q, n, want)
		}
	}
	purge(core.InstanceQuery{InstanceIDPrefix: "batch-"}, len(ended))
	for _, m := range ended {
		c.checkGone(m.id())
	}
	for _, m := range append(alive, keepDone, keepRunning) {
		c.checkStored(m)
	}
	purge(core.InstanceQuery{InstanceIDPrefix: "batch-"}, 0)
	purge(core.InstanceQuery{Statuses: []core.Status{core.StatusRunning, core.StatusPending, core.StatusSuspended, core.StatusContinuedAsNew}}, 0)
	for _, m := range append(alive, keepRunning) {
		c.checkStored(m)
	}
	purge(core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted}}, 1)
	c.checkGone(keepDone.id())
}

// contractBadInput: invalid instance ids, oversized payloads and a nil
// commit batch are refused with ErrInvalidInput and ErrPayloadTooLarge, and
// nothing is written.
func contractBadInput(c *contract) {
	c.run("NilCommitBatch", func(c *contract) {
		res, err := c.p.Commit(c.ctx(), 0, nil)
		c.wantErr(err, core.ErrInvalidInput, "Commit of a nil batch")
		if len(res) > 0 {
			c.t.Fatalf("Commit of a nil batch returned %d results", len(res))
		}
	})
	c.run("InvalidInstanceID", func(c *contract) {
		valid := newMessage("valid", "valid-instance", raised("e", nil))
		ids := map[string]string{"empty": "", "NUL": "a\x00b", "tab": "a\tb", "newline": "a\nb", "DEL": "a\x7fb",
			"C1 control": "a\u0085b", "invalid UTF-8": "a\xffb", "too long": strings.Repeat("x", c.idLimit()+1)}
		for what, id := range ids {
			bad := newMessage("bad-"+what, id, raised("e", nil))
			c.wantErr(c.p.SendMessages(c.ctx(), []*core.Message{bad}), core.ErrInvalidInput, "SendMessages to a %s instance id", what)
			c.wantErr(c.p.SendMessages(c.ctx(), []*core.Message{valid, bad}), core.ErrInvalidInput,
				"SendMessages of a valid message and one to a %s instance id", what)
		}
		c.expectNoMessages(c.p.PartitionOf(valid.InstanceID), c.opts.MinLock)
	})
	c.run("PayloadTooLarge", func(c *contract) {
		limit := c.p.Limits().MaxPayloadBytes
		if limit <= 0 || limit > 64<<20 {
			c.t.Logf("not checked: Limits().MaxPayloadBytes is %d (no limit, or over the 64 MiB this suite writes)", limit)
			return
		}
		over := payload("binary", limit+1, 1)
		tooLarge := func(err error, res []core.CommitResult, what string) {
			c.t.Helper()
			if !errors.Is(err, core.ErrPayloadTooLarge) && (len(res) != 1 || !errors.Is(res[0].Err, core.ErrPayloadTooLarge)) {
				c.t.Fatalf("%s of %d bytes (limit %d): error %v, results %+v; want ErrPayloadTooLarge", what, len(over), limit, err, res)
			}
		}
		valid := newMessage("valid", "big-1", raised("e", nil))
		err := c.p.SendMessages(c.ctx(), []*core.Message{valid, newMessage("big", "big-1", raised("e", over))})
		c.wantErr(err, core.ErrPayloadTooLarge, "SendMessages with event data of %d bytes (limit %d)", len(over), limit)
		c.expectNoMessages(c.p.PartitionOf(valid.InstanceID), c.opts.MinLock)

		p := c.p.PartitionOf("big-2")
		res, err := c.p.Commit(c.ctx(), p, &core.CommitBatch{Episodes: []*core.Episode{
			newInstanceEpisode("big-2", setPayloads(over, nil, nil))}})
		tooLarge(err, res, "commit of a new instance with an input")
		c.checkGone("big-2")

		m := c.create(newInstanceEpisode("big-3"))
		res, err = c.p.Commit(c.ctx(), c.p.PartitionOf(m.id()), &core.CommitBatch{Episodes: []*core.Episode{
			m.next(nil, raised("big", over))}})
		tooLarge(err, res, "commit of history event data")
		c.checkStored(m)
	})
}

// contractEscapedInstanceIDs: ids with characters that storage keys forbid,
// non-ASCII ids, ids that look like key separators and ids of the maximum
// length work everywhere: queues, commits, loads, pending rows, queries
// and purges.
func contractEscapedInstanceIDs(c *contract) {
	limit := c.idLimit()
	cases := []struct {
		id    string
		purge bool
	}{
		{`a/b\c#d?e|f~g`, true}, {"注文-😀", false}, {"with space", true}, {" padded ", false},
		{"100%", true}, {"%2F%00", false}, {`quote'"`, true}, {"x:y;z,&=+$@!*()[]{}<>^`", false},
		{"dup", true}, {"dup|e1", false}, {"H|dup|e1|0", true}, {"I|dup", false},
		{repeatTo("a", limit), false}, {repeatTo("é", limit), true}, {repeatTo("/", limit), false}, {repeatTo("😀", limit), true},
	}
	models := map[string]*instModel{}
	for i, tc := range cases {
		c.run(fmt.Sprintf("%.24q", tc.id), func(c *contract) {
			p := c.p.PartitionOf(tc.id)
			msg := newMessage(fmt.Sprintf("msg-%d", i), tc.id, raised("hello", nil))
			c.send(msg)
			got := c.fetchID(p, c.longLock(), msg.ID)
			c.checkMessage(msg, got, 1)
			c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{got}), "DeleteMessages")

			ep := newInstanceEpisode(tc.id)
			addTimer(ep, 1, baseTime.Add(time.Hour))
			c.addActivity(ep, 2, nil)
			setOutbox(ep, "out", newMessage(fmt.Sprintf("out-%d", i), "elsewhere", raised("x", nil)))
			m := c.create(ep)
			c.advance(m, m.next(nil, raised("later", nil)))
			c.checkStored(m)
			models[tc.id] = m
		})
	}
	if c.t.Failed() {
		return
	}
	checkPartitions := func() {
		c.t.Helper()
		byPartition := map[int][]*instModel{}
		for _, m := range models {
			p := c.p.PartitionOf(m.id())
			byPartition[p] = append(byPartition[p], m)
		}
		for p := range c.p.Partitions() {
			c.checkPending(p, byPartition[p]...)
		}
	}
	all := func() []*instModel {
		var ms []*instModel
		for _, m := range models {
			ms = append(ms, m)
		}
		return ms
	}
	checkPartitions()
	for _, tc := range cases {
		c.checkQuery(core.InstanceQuery{InstanceIDPrefix: tc.id, PageSize: 7, WithPayloads: true}, all())
	}
	for _, tc := range cases {
		if !tc.purge {
			continue
		}
		m := models[tc.id]
		ep := m.next(setStatus(core.StatusCompleted))
		removeTimer(ep, 1)
		removeActivity(ep, 2)
		c.advance(m, ep)
		c.noErr(c.p.PurgeInstance(c.ctx(), tc.id), "PurgeInstance(%q)", tc.id)
		c.checkGone(tc.id)
		delete(models, tc.id)
	}
	for _, m := range models {
		c.checkStored(m)
	}
	checkPartitions()
	c.checkQuery(core.InstanceQuery{PageSize: 7, WithPayloads: true}, all())
}

// contractLargePayloads: payloads around the 64 KiB queue and property limit
// and of 1 MiB round-trip byte-exact in instance state, history, pending
// rows, messages and work items.
func contractLargePayloads(c *contract) {
	limit := c.p.Limits().MaxPayloadBytes
	for _, n := range []int{64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20} {
		for _, kind := range []string{"binary", "json"} {
			c.run(fmt.Sprintf("%s/%d", kind, n), func(c *contract) {
				if limit > 0 && n > limit {
					c.t.Logf("not checked: %d bytes are over Limits().MaxPayloadBytes (%d)", n, limit)
					return
				}
				big := payload(kind, n, uint64(n))
				id := fmt.Sprintf("large-%s-%d", kind, n)
				p := c.p.PartitionOf(id)

				m := c.create(newInstanceEpisode(id, setPayloads(big, nil, big)))
				ep := m.next(nil, raised("big", big), &core.Event{Kind: core.EventActivityScheduled, TaskID: 1, Name: "Charge", Data: big})
				c.addActivity(ep, 1, big)
				setOutbox(ep, "big-out", newMessage(id+"-out", "elsewhere", raised("big", big)))
				c.advance(m, ep)
				c.checkStored(m)
				c.checkPending(p, m)

				msg := newMessage(id+"-msg", id, raised("big", big))
				c.send(msg)
				got := c.fetchID(p, c.longLock(), msg.ID)
				c.checkMessage(msg, got, 1)
				c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{got}), "DeleteMessages")

				task := c.task(id, "e1", 2, big)
				c.enqueue(task)
				it := c.fetchActivity(c.longLock())
				c.checkWorkItem(task, it, 1)
				result := newMessage(id+"-result", id, &core.Event{Seq: -1, Kind: core.EventActivityCompleted, TaskID: 2, Data: big})
				c.noErr(c.p.CompleteActivity(c.ctx(), it, result), "CompleteActivity")
				got = c.fetchID(p, c.longLock(), result.ID)
				c.checkMessage(result, got, 1)
				c.noErr(c.p.DeleteMessages(c.ctx(), p, []*core.Message{got}), "DeleteMessages")

				ep = m.next(func(s *core.InstanceState) {
					setStatus(core.StatusCompleted)(s)
					s.Output = big
				}, &core.Event{Kind: core.EventExecutionCompleted, Status: core.StatusCompleted, Data: big})
				removeActivity(ep, 1)
				c.advance(m, ep)
				c.commit(&core.CommitBatch{OutboxDelivered: []core.OutboxRef{{Partition: p, InstanceID: id, ID: "big-out"}}})
				delete(m.outbox, "big-out")
				c.checkStored(m)
				c.checkPending(p, m)
			})
		}
	}
}

// contractHosts: published hosts are listed with their registrations, once
// each, until they have not been refreshed for maxAge.
func contractHosts(c *contract) {
	host := func(id string, partitions ...int) core.HostInfo {
		return core.HostInfo{ID: id, StartedAt: baseTime, LastSeen: time.Now(), Partitions: partitions,
			Orchestrations: []core.NameVersion{{Name: "Checkout", Version: "v1"}, {Name: "Checkout", Version: "v2"}},
			Activities:     []core.NameVersion{{Name: "Charge"}}}
	}
	publish := func(h core.HostInfo) {
		c.t.Helper()
		c.noErr(c.p.PublishHost(c.ctx(), h), "PublishHost(%q)", h.ID)
	}
	list := func(maxAge time.Duration) map[string]core.HostInfo {
		c.t.Helper()
		hosts, err := c.p.ListHosts(c.ctx(), maxAge)
		c.noErr(err, "ListHosts(%v)", maxAge)
		out := map[string]core.HostInfo{}
		for _, h := range hosts {
			if _, dup := out[h.ID]; dup {
				c.t.Fatalf("ListHosts listed host %q twice", h.ID)
			}
			if h.LastSeen.IsZero() {
				c.t.Fatalf("ListHosts: host %q has no LastSeen", h.ID)
			}
			out[h.ID] = h
		}
		return out
	}
	h1, h2 := host("host-1", 0, 2), host("host-2", 1)
	publish(h1)
	publish(h2)
	c.same("ListHosts", map[string]core.HostInfo{"host-1": h1, "host-2": h2}, list(time.Hour))

	h1 = host("host-1", 1, 3)
	h1.Activities = append(h1.Activities, core.NameVersion{Name: "Refund", Version: "v9"})
	publish(h1)
	c.same("ListHosts after host-1 published again", map[string]core.HostInfo{"host-1": h1, "host-2": h2}, list(time.Hour))

	// "Right after" holds only when the publish and the listing took less
	// than maxAge: on a loaded machine they may not, and then the listing may
	// rightly leave the host out, so the check is made again.
	maxAge := 2 * c.opts.MinLock
	for w := c.until(c.timeout()); ; {
		before := time.Now()
		h1.LastSeen = before
		publish(h1)
		hosts := list(maxAge)
		_, listed1 := hosts["host-1"]
		_, listed2 := hosts["host-2"]
		if !listed1 && time.Since(before) < maxAge {
			c.t.Fatalf("ListHosts(%v) right after host-1 published does not list it", maxAge)
		}
		if listed1 && !listed2 {
			break
		}
		if !w.next() {
			c.t.Fatalf("ListHosts(%v) still lists host-2 %v after it last published", maxAge, c.timeout())
		}
	}
	for w := c.until(c.timeout()); ; {
		before := time.Now()
		h2.LastSeen = before
		publish(h2)
		_, listed := list(maxAge)["host-2"]
		if listed {
			break
		}
		if time.Since(before) < maxAge || !w.next() {
			c.t.Fatalf("ListHosts(%v) does not list host-2 right after it published again", maxAge)
		}
	}
}

// contractTaskHubAdmin: creating the task hub again is not an error and
// keeps what it holds.
func contractTaskHubAdmin(c *contract) {
	admin, ok := c.p.(core.TaskHubAdmin)
	if !ok {
		c.t.Skip("the provider does not implement core.TaskHubAdmin")
	}
	m := c.create(newInstanceEpisode("admin-1"))
	c.noErr(admin.CreateTaskHub(c.ctx()), "CreateTaskHub on an existing task hub")
	c.checkStored(m)
}
