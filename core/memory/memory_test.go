package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
)

// fakeClock is a clock that moves only when the test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newProvider(t *testing.T, opts memory.Options) (*memory.Provider, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: t0}
	opts.Clock = clock.Now
	p, err := memory.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, clock
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want one wrapping %v", err, target)
	}
}

func msg(id, inst string) *core.Message {
	return &core.Message{ID: id, InstanceID: inst,
		Event: &core.Event{Seq: -1, Kind: core.EventEventRaised, Name: "ping", Data: []byte(`"` + id + `"`), Time: t0}}
}

func ids(msgs []*core.Message) string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.ID)
	}
	return strings.Join(s, ",")
}

func fetch(t *testing.T, p *memory.Provider, partition, max int, lock time.Duration) []*core.Message {
	t.Helper()
	msgs, err := p.FetchMessages(ctx, partition, max, lock)
	must(t, err)
	return msgs
}

// --- options ---

func TestNewValidatesOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    memory.Options
		wantErr bool
		want    core.Limits
		parts   int
	}{
		{name: "defaults", want: core.Limits{MaxPayloadBytes: memory.DefaultMaxPayloadBytes, MaxInstanceIDLength: core.MaxInstanceIDLength}, parts: 4},
		{name: "unlimited payloads", opts: memory.Options{MaxPayloadBytes: -1, Partitions: 1},
			want: core.Limits{MaxInstanceIDLength: core.MaxInstanceIDLength}, parts: 1},
		{name: "custom", opts: memory.Options{Partitions: 1024, MaxPayloadBytes: 10, MaxInstanceIDLength: 20},
			want: core.Limits{MaxPayloadBytes: 10, MaxInstanceIDLength: 20}, parts: 1024},
		{name: "negative partitions", opts: memory.Options{Partitions: -1}, wantErr: true},
		{name: "too many partitions", opts: memory.Options{Partitions: 1025}, wantErr: true},
		{name: "negative id length", opts: memory.Options{MaxInstanceIDLength: -1}, wantErr: true},
		{name: "id length above core", opts: memory.Options{MaxInstanceIDLength: core.MaxInstanceIDLength + 1}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := memory.New(tc.opts)
			if tc.wantErr {
				wantErr(t, err, core.ErrInvalidInput)
				return
			}
			must(t, err)
			if p.Limits() != tc.want || p.Partitions() != tc.parts {
				t.Fatalf("limits %+v, partitions %d; want %+v, %d", p.Limits(), p.Partitions(), tc.want, tc.parts)
			}
		})
	}
}

func TestPartitionOfIsCoreRouting(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 16})
	for i := range 100 {
		id := fmt.Sprintf("order-%d", i)
		if got, want := p.PartitionOf(id), core.PartitionFor(id, 16); got != want {
			t.Fatalf("PartitionOf(%q) = %d, want %d", id, got, want)
		}
	}
}

// --- control queues ---

func TestSendRoutesToPartitionOfInstance(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 8})
	var msgs []*core.Message
	for i := range 40 {
		msgs = append(msgs, msg(fmt.Sprintf("m%d", i), fmt.Sprintf("inst-%d", i)))
	}
	must(t, p.SendMessages(ctx, msgs))
	total := 0
	for part := range 8 {
		got := fetch(t, p, part, 100, time.Minute)
		total += len(got)
		for _, m := range got {
			if p.PartitionOf(m.InstanceID) != part {
				t.Fatalf("message for %q fetched from partition %d", m.InstanceID, part)
			}
		}
	}
	if total != 40 {
		t.Fatalf("fetched %d messages, want 40", total)
	}
}

func TestFetchIsFIFOAndBoundedByMax(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	for i := range 5 {
		must(t, p.SendMessages(ctx, []*core.Message{msg(fmt.Sprintf("m%d", i), fmt.Sprintf("i%d", i%2))}))
	}
	if got := ids(fetch(t, p, 0, 2, time.Minute)); got != "m0,m1" {
		t.Fatalf("first fetch %s", got)
	}
	got := fetch(t, p, 0, 10, time.Minute)
	if ids(got) != "m2,m3,m4" {
		t.Fatalf("second fetch %s", ids(got))
	}
	for _, m := range got {
		if m.DequeueCount != 1 || m.Receipt == nil {
			t.Fatalf("message %s: count %d, receipt %v", m.ID, m.DequeueCount, m.Receipt)
		}
	}
	if empty := fetch(t, p, 0, 10, time.Minute); empty == nil || len(empty) != 0 {
		t.Fatalf("fetch of an empty queue = %#v, want an empty slice", empty)
	}
	if d := p.QueueDepth(0); d != 5 {
		t.Fatalf("depth %d, want 5 (locked messages count)", d)
	}
}

func TestMessageRoundTripsThroughCodec(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	in := &core.Message{ID: "m", InstanceID: "i", ExecutionID: "e1", Event: &core.Event{Seq: -1, Kind: core.EventActivityFailed,
		TaskID: 7, Time: t0, Data: []byte{0, 1, 2, 0xff}, Failure: &core.Failure{Kind: core.KindApplication, Message: "boom",
			Cause: &core.Failure{Kind: core.KindApplication, Message: "root"}}}}
	must(t, p.SendMessages(ctx, []*core.Message{in}))
	in.Event.Data[0] = 9 // the stored copy must not change
	out := fetch(t, p, 0, 1, time.Minute)[0]
	e := out.Event
	if out.ExecutionID != "e1" || e.TaskID != 7 || !bytes.Equal(e.Data, []byte{0, 1, 2, 0xff}) || e.Failure.Cause.Message != "root" ||
		!e.Time.Equal(t0) {
		t.Fatalf("message changed on the way: %+v / %+v", out, e)
	}
}

func TestLockExpiryRedeliversWithHigherCount(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	must(t, p.SendMessages(ctx, []*core.Message{msg("m", "i")}))
	first := fetch(t, p, 0, 10, 30*time.Second)
	clock.Advance(29 * time.Second)
	if got := fetch(t, p, 0, 10, 30*time.Second); len(got) != 0 {
		t.Fatalf("locked message fetched again before its lock expired")
	}
	clock.Advance(time.Second)
	second := fetch(t, p, 0, 10, 30*time.Second)
	if len(second) != 1 || second[0].DequeueCount != 2 || second[0].Receipt == first[0].Receipt {
		t.Fatalf("redelivery: %d messages, count %d", len(second), second[0].DequeueCount)
	}
	// The first receipt is stale: deleting with it is no error and deletes nothing.
	must(t, p.DeleteMessages(ctx, 0, first))
	if p.QueueDepth(0) != 1 {
		t.Fatal("a stale receipt deleted the redelivered message")
	}
	must(t, p.DeleteMessages(ctx, 0, second))
	if p.QueueDepth(0) != 0 {
		t.Fatal("a current receipt did not delete the message")
	}
	must(t, p.DeleteMessages(ctx, 0, second)) // already gone: not an error
}

func TestAbandonWithDelay(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	must(t, p.SendMessages(ctx, []*core.Message{msg("a", "i"), msg("b", "i")}))
	got := fetch(t, p, 0, 10, time.Minute)
	must(t, p.AbandonMessages(ctx, 0, got[:1], 10*time.Second))
	clock.Advance(9 * time.Second)
	if again := fetch(t, p, 0, 10, time.Minute); len(again) != 0 {
		t.Fatalf("abandoned message visible before its delay: %s", ids(again))
	}
	// The abandon released the lock: its old receipt no longer deletes.
	must(t, p.DeleteMessages(ctx, 0, got[:1]))
	clock.Advance(time.Second)
	again := fetch(t, p, 0, 10, time.Minute)
	if ids(again) != "a" || again[0].DequeueCount != 2 {
		t.Fatalf("after the delay: %s (count %d)", ids(again), again[0].DequeueCount)
	}
	// A stale receipt does not unlock the redelivered message.
	must(t, p.AbandonMessages(ctx, 0, got[:1], 0))
	if x := fetch(t, p, 0, 10, time.Minute); len(x) != 0 {
		t.Fatalf("a stale abandon unlocked %s", ids(x))
	}
	// Abandon with no delay makes it visible at once.
	must(t, p.AbandonMessages(ctx, 0, again, 0))
	if x := fetch(t, p, 0, 10, time.Minute); ids(x) != "a" || x[0].DequeueCount != 3 {
		t.Fatalf("after abandon without delay: %s", ids(x))
	}
}

func TestAbandonKeepsFIFOPlace(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	must(t, p.SendMessages(ctx, []*core.Message{msg("a", "i"), msg("b", "i"), msg("c", "i")}))
	got := fetch(t, p, 0, 1, time.Minute)
	must(t, p.AbandonMessages(ctx, 0, got, 0))
	if x := fetch(t, p, 0, 10, time.Minute); ids(x) != "a,b,c" {
		t.Fatalf("order after abandon: %s", ids(x))
	}
}

func TestMessagesWithoutReceipt(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	must(t, p.SendMessages(ctx, []*core.Message{msg("a", "i")}))
	inMemory := []*core.Message{msg("a", "i")}
	must(t, p.AbandonMessages(ctx, 0, inMemory, 0))
	must(t, p.DeleteMessages(ctx, 0, inMemory))
	wantErr(t, p.DeadLetterMessages(ctx, 0, inMemory, "x"), core.ErrInvalidInput)
	if p.QueueDepth(0) != 1 {
		t.Fatal("a message without a receipt changed the queue")
	}
	page, err := p.ListDeadLetters(ctx, 0, "")
	must(t, err)
	if len(page.DeadLetters) != 0 {
		t.Fatal("a message without a receipt was dead-lettered")
	}
}

func TestForeignReceiptsAreRejected(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 2})
	id := "x"
	part := p.PartitionOf(id)
	must(t, p.SendMessages(ctx, []*core.Message{msg("a", id)}))
	got := fetch(t, p, part, 1, time.Minute)
	wantErr(t, p.DeleteMessages(ctx, 1-part, got), core.ErrInvalidInput)
	forged := []*core.Message{{ID: "a", InstanceID: id, Receipt: "forged"}}
	wantErr(t, p.AbandonMessages(ctx, part, forged, 0), core.ErrInvalidInput)
	if p.QueueDepth(part) != 1 {
		t.Fatal("a rejected call changed the queue")
	}
}

func TestVisibleAtDelaysSend(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	late := msg("late", "i")
	late.VisibleAt = t0.Add(5 * time.Second)
	past := msg("past", "i")
	past.VisibleAt = t0.Add(-time.Hour)
	must(t, p.SendMessages(ctx, []*core.Message{late, past}))
	if x := fetch(t, p, 0, 10, time.Minute); ids(x) != "past" {
		t.Fatalf("fetched %s, want only past", ids(x))
	}
	if at, ok := p.NextVisibleAt(); !ok || !at.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("NextVisibleAt = %v, %v", at, ok)
	}
	clock.Advance(5 * time.Second)
	if x := fetch(t, p, 0, 10, time.Minute); ids(x) != "late" {
		t.Fatalf("fetched %s, want late", ids(x))
	}
}

func TestSendMessagesValidatesAllOrNothing(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1, MaxPayloadBytes: 16, MaxInstanceIDLength: 10})
	big := msg("big", "i")
	big.Event.Data = bytes.Repeat([]byte("x"), 17)
	for _, tc := range []struct {
		name string
		bad  *core.Message
		want error
	}{
		{"nil", nil, core.ErrInvalidInput},
		{"no id", &core.Message{InstanceID: "i", Event: &core.Event{Kind: core.EventEventRaised}}, core.ErrInvalidInput},
		{"no event", &core.Message{ID: "m", InstanceID: "i"}, core.ErrInvalidInput},
		{"empty instance", msg("m", ""), core.ErrInvalidInput},
		{"control character", msg("m", "a\nb"), core.ErrInvalidInput},
		{"instance id too long", msg("m", "01234567890"), core.ErrInvalidInput},
		{"payload too large", big, core.ErrPayloadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, p.SendMessages(ctx, []*core.Message{msg("ok", "i"), tc.bad}), tc.want)
			if p.QueueDepth(0) != 0 {
				t.Fatal("a rejected batch enqueued messages")
			}
		})
	}
}

func TestFetchValidatesArguments(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 2})
	for _, tc := range []struct {
		part, max int
		lock      time.Duration
	}{{-1, 1, time.Second}, {2, 1, time.Second}, {0, 0, time.Second}, {0, 1, 0}} {
		_, err := p.FetchMessages(ctx, tc.part, tc.max, tc.lock)
		wantErr(t, err, core.ErrInvalidInput)
	}
}

func TestUndecodableMessagesAreDeadLettered(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	p.InjectRawControlMessage(0, []byte("not json"))
	p.InjectRawControlMessage(0, []byte(`{"v":99,"id":"x","inst":"i","event":{"kind":"EventRaised"}}`))
	must(t, p.SendMessages(ctx, []*core.Message{msg("good", "i")}))
	if got := fetch(t, p, 0, 10, time.Minute); ids(got) != "good" {
		t.Fatalf("fetched %s, want only the good message", ids(got))
	}
	page, err := p.ListDeadLetters(ctx, 0, "")
	must(t, err)
	if len(page.DeadLetters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(page.DeadLetters))
	}
	for _, d := range page.DeadLetters {
		if !strings.HasPrefix(d.Reason, "undecodable:") || d.Raw == nil || d.Message != nil || d.Partition != 0 || d.DequeueCount != 1 ||
			!d.At.Equal(t0) {
			t.Fatalf("dead letter %+v", d)
		}
		wantErr(t, p.ReplayDeadLetter(ctx, d.ID), core.ErrInvalidInput)
		must(t, p.DiscardDeadLetter(ctx, d.ID))
	}
	if p.QueueDepth(0) != 1 {
		t.Fatalf("depth %d, want only the good message", p.QueueDepth(0))
	}
}

// --- dead letters ---

func TestDeadLetterReplayAndDiscard(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 4})
	id := "inst"
	part := p.PartitionOf(id)
	must(t, p.SendMessages(ctx, []*core.Message{msg("a", id), msg("b", id)}))
	fetch(t, p, part, 10, time.Second)
	clock.Advance(time.Second)
	got := fetch(t, p, part, 10, time.Second)
	clock.Advance(time.Second)
	must(t, p.DeadLetterMessages(ctx, part, got, "poison: too many deliveries"))
	if p.QueueDepth(part) != 0 {
		t.Fatal("dead-lettered messages are still queued")
	}
	page, err := p.ListDeadLetters(ctx, 0, "")
	must(t, err)
	if len(page.DeadLetters) != 2 || page.Continuation != "" {
		t.Fatalf("%d dead letters", len(page.DeadLetters))
	}
	a := page.DeadLetters[0]
	if a.Message == nil || a.Message.ID != "a" || a.InstanceID != id || a.Partition != part || a.DequeueCount != 2 ||
		a.Reason != "poison: too many deliveries" || !a.At.Equal(t0.Add(2*time.Second)) || a.ID == page.DeadLetters[1].ID {
		t.Fatalf("dead letter %+v", a)
	}
	a.Message.Event.Name = "changed" // a copy

	must(t, p.ReplayDeadLetter(ctx, a.ID))
	again := fetch(t, p, part, 10, time.Second)
	if ids(again) != "a" || again[0].DequeueCount != 1 || again[0].Event.Name != "ping" {
		t.Fatalf("replayed: %s, count %d", ids(again), again[0].DequeueCount)
	}
	wantErr(t, p.ReplayDeadLetter(ctx, a.ID), core.ErrInvalidInput)
	must(t, p.DiscardDeadLetter(ctx, page.DeadLetters[1].ID))
	wantErr(t, p.DiscardDeadLetter(ctx, page.DeadLetters[1].ID), core.ErrInvalidInput)
	page, err = p.ListDeadLetters(ctx, 0, "")
	must(t, err)
	if len(page.DeadLetters) != 0 {
		t.Fatalf("%d dead letters left", len(page.DeadLetters))
	}
}

func TestDeadLetterStaleReceiptIsIgnored(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	must(t, p.SendMessages(ctx, []*core.Message{msg("a", "i")}))
	old := fetch(t, p, 0, 1, time.Second)
	clock.Advance(time.Second)
	fetch(t, p, 0, 1, time.Second)
	must(t, p.DeadLetterMessages(ctx, 0, old, "late"))
	if p.QueueDepth(0) != 1 {
		t.Fatal("a stale receipt dead-lettered a redelivered message")
	}
}

func TestDeadLetterPaging(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	deadLetter := func(n int) {
		for i := range n {
			p.InjectRawControlMessage(0, []byte(fmt.Sprintf("bad %d", i)))
		}
		fetch(t, p, 0, 100, time.Second)
	}
	deadLetter(3) // three at t0: ordered by id
	clock.Advance(time.Second)
	deadLetter(2)
	seen := map[string]int{}
	var order []string
	cont := ""
	for pages := 0; ; pages++ {
		page, err := p.ListDeadLetters(ctx, 2, cont)
		must(t, err)
		if len(page.DeadLetters) > 2 {
			t.Fatalf("page of %d", len(page.DeadLetters))
		}
		for _, d := range page.DeadLetters {
			seen[d.ID]++
			order = append(order, d.ID)
		}
		if pages == 0 {
			clock.Advance(time.Second)
			deadLetter(1) // added while paging: comes last, nothing shifts
		}
		if cont = page.Continuation; cont == "" {
			break
		}
	}
	if len(seen) != 6 || len(order) != 6 || !slices.IsSorted(order) {
		t.Fatalf("pages listed %v", order)
	}
	_, err := p.ListDeadLetters(ctx, 2, "garbage!")
	wantErr(t, err, core.ErrInvalidInput)
	_, err = p.ListDeadLetters(ctx, 1001, "")
	wantErr(t, err, core.ErrInvalidInput)
	_, err = p.ListDeadLetters(ctx, -1, "")
	wantErr(t, err, core.ErrInvalidInput)
}

// --- commits ---

func state(id string, status core.Status) *core.InstanceState {
	return &core.InstanceState{InstanceID: id, ExecutionID: "e1", Name: "Orch", Status: status, CreatedAt: t0, UpdatedAt: t0}
}

func events(from int64, kinds ...core.EventKind) []*core.Event {
	out := make([]*core.Event, len(kinds))
	for i, k := range kinds {
		out[i] = &core.Event{Seq: from + int64(i), Kind: k, Time: t0}
	}
	return out
}

func commit(t *testing.T, p *memory.Provider, eps ...*core.Episode) []core.CommitResult {
	t.Helper()
	part := p.PartitionOf(eps[0].InstanceID)
	res, err := p.Commit(ctx, part, &core.CommitBatch{Episodes: eps})
	must(t, err)
	if len(res) != len(eps) {
		t.Fatalf("%d results for %d episodes", len(res), len(eps))
	}
	return res
}

// create commits a new running instance with a two-event history and returns its token.
func create(t *testing.T, p *memory.Provider, id string) core.CommitToken {
	t.Helper()
	res := commit(t, p, &core.Episode{InstanceID: id, State: state(id, core.StatusRunning),
		History: events(0, core.EventEpisodeStarted, core.EventExecutionStarted)})
	must(t, res[0].Err)
	return res[0].Token
}

func load(t *testing.T, p *memory.Provider, id string) *core.InstanceSnapshot {
	t.Helper()
	s, err := p.LoadInstance(ctx, p.PartitionOf(id), id)
	must(t, err)
	return s
}

func TestCommitCreatesAndLoads(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 4})
	id := "order-1"
	_, err := p.LoadInstance(ctx, p.PartitionOf(id), id)
	wantErr(t, err, core.ErrInstanceNotFound)
	if err == nil || !strings.Contains(err.Error(), id) {
		t.Fatalf("the error does not name the instance: %v", err)
	}
	tok := create(t, p, id)
	s := load(t, p, id)
	if s.Token != tok || tok == "" || s.State.Status != core.StatusRunning || len(s.History) != 2 || s.History[1].Kind != core.EventExecutionStarted {
		t.Fatalf("snapshot %+v", s)
	}
	res := commit(t, p, &core.Episode{InstanceID: id, Token: tok, State: state(id, core.StatusCompleted),
		History: events(2, core.EventEpisodeStarted, core.EventExecutionCompleted)})
	must(t, res[0].Err)
	if res[0].Token == tok {
		t.Fatal("the token did not change")
	}
	s = load(t, p, id)
	if s.Token != res[0].Token || len(s.History) != 4 || s.State.Status != core.StatusCompleted {
		t.Fatalf("after second commit: %+v", s)
	}
	_, err = p.LoadInstance(ctx, (p.PartitionOf(id)+1)%4, id)
	wantErr(t, err, core.ErrInvalidInput)
}

func TestCommitTokenConflicts(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	id := "i"
	tok := create(t, p, id)

	// Creating again: another writer got there first.
	res := commit(t, p, &core.Episode{InstanceID: id, State: state(id, core.StatusRunning), History: events(0, core.EventEpisodeStarted)})
	wantErr(t, res[0].Err, core.ErrConflict)

	// Two writers from the same token: the first wins, the second writes nothing.
	a := &core.Episode{InstanceID: id, Token: tok, State: state(id, core.StatusRunning), History: events(2, core.EventTimerCreated),
		TimersAdded: []core.TimerRow{{InstanceID: id, ExecutionID: "e1", TaskID: 1, FireAt: t0.Add(time.Hour)}}}
	b := &core.Episode{InstanceID: id, Token: tok, State: state(id, core.StatusCompleted), History: events(2, core.EventExecutionCompleted)}
	res = commit(t, p, a)
	must(t, res[0].Err)
	res2 := commit(t, p, b)
	wantErr(t, res2[0].Err, core.ErrConflict)
	if !core.IsRetryable(res2[0].Err) || !strings.Contains(res2[0].Err.Error(), id) {
		t.Fatalf("conflict error: %v", res2[0].Err)
	}
	s := load(t, p, id)
	if s.Token != res[0].Token || s.State.Status != core.StatusRunning || len(s.History) != 3 || s.History[2].Kind != core.EventTimerCreated {
		t.Fatalf("the losing writer changed the instance: %+v", s.State)
	}

	// A token of an instance that is gone.
	res = commit(t, p, &core.Episode{InstanceID: "other", Token: tok, State: state("other", core.StatusRunning)})
	wantErr(t, res[0].Err, core.ErrConflict)
}

func TestConcurrentWritersOneWins(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 2})
	id := "race"
	tok := create(t, p, id)
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			res, err := p.Commit(ctx, p.PartitionOf(id), &core.CommitBatch{Episodes: []*core.Episode{{InstanceID: id, Token: tok,
				State: state(id, core.StatusRunning), History: []*core.Event{{Seq: 2, Kind: core.EventEventRaised, Name: fmt.Sprint(w)}}}}})
			if err == nil {
				err = res[0].Err
			}
			errs[w] = err
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, core.ErrConflict):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if wins != 1 || len(load(t, p, id).History) != 3 {
		t.Fatalf("%d writers won", wins)
	}
}

func TestCommitChecksSeqContinuity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newExec bool
		history []*core.Event
		ok      bool
	}{
		{"continues", false, events(2, core.EventEpisodeStarted, core.EventEventRaised), true},
		{"gap", false, events(3, core.EventEpisodeStarted), false},
		{"overlap", false, events(1, core.EventEpisodeStarted), false},
		{"restart without new execution", false, events(0, core.EventEpisodeStarted), false},
		{"not consecutive", false, []*core.Event{{Seq: 2, Kind: core.EventEpisodeStarted}, {Seq: 4, Kind: core.EventEventRaised}}, false},
		{"nil event", false, []*core.Event{nil}, false},
		{"new execution from 0", true, events(0, core.EventEpisodeStarted, core.EventExecutionStarted), true},
		{"new execution continuing the old seq", true, events(2, core.EventEpisodeStarted), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newProvider(t, memory.Options{Partitions: 1})
			tok := create(t, p, "i")
			res := commit(t, p, &core.Episode{InstanceID: "i", Token: tok, State: state("i", core.StatusCompleted),
				NewExecution: tc.newExec, History: tc.history})
			s := load(t, p, "i")
			if tc.ok {
				must(t, res[0].Err)
				return
			}
			wantErr(t, res[0].Err, core.ErrInvalidInput)
			if s.Token != tok || len(s.History) != 2 || s.State.Status != core.StatusRunning {
				t.Fatalf("a rejected episode changed the instance")
			}
		})
	}
}

func TestNewExecutionDropsHistory(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	tok := create(t, p, "i")
	st := state("i", core.StatusRunning)
	st.ExecutionID = "e2"
	res := commit(t, p, &core.Episode{InstanceID: "i", Token: tok, State: st, NewExecution: true,
		History: events(0, core.EventEpisodeStarted, core.EventExecutionStarted, core.EventTimerCreated)})
	must(t, res[0].Err)
	s := load(t, p, "i")
	if len(s.History) != 3 || s.History[2].Kind != core.EventTimerCreated || s.State.ExecutionID != "e2" {
		t.Fatalf("history after continue-as-new: %d events, execution %q", len(s.History), s.State.ExecutionID)
	}
	h, err := p.GetHistory(ctx, "i")
	must(t, err)
	if len(h) != 3 {
		t.Fatalf("GetHistory has %d events", len(h))
	}
}

func TestCommitRowChangesAreAllOrNothing(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	id := "i"
	tok := create(t, p, id)
	timer := core.TimerRow{InstanceID: id, ExecutionID: "e1", TaskID: 1, FireAt: t0.Add(time.Hour)}
	act := &core.ActivityTask{InstanceID: id, ExecutionID: "e1", TaskID: 2, Name: "Charge", Input: []byte(`1`), ScheduledAt: t0}
	res := commit(t, p, &core.Episode{InstanceID: id, Token: tok, State: state(id, core.StatusRunning),
		History:     events(2, core.EventTimerCreated, core.EventActivityScheduled),
		TimersAdded: []core.TimerRow{timer}, ActivitiesAdded: []*core.ActivityTask{act}})
	must(t, res[0].Err)
	tok = res[0].Token
	act.Input[0] = '9' // the stored row is a copy

	otherTimer := core.TimerRow{InstanceID: id, ExecutionID: "e1", TaskID: 9}
	otherAct := &core.ActivityTask{InstanceID: id, ExecutionID: "e1", TaskID: 9, Name: "X"}
	wrongExec := core.TimerRow{InstanceID: id, ExecutionID: "e0", TaskID: 1}
	for _, tc := range []struct {
		name string
		ep   core.Episode
	}{
		{"missing timer", core.Episode{TimersRemoved: []core.TimerRow{timer, otherTimer}}},
		{"timer of another execution", core.Episode{TimersRemoved: []core.TimerRow{wrongExec}}},
		{"timer removed twice", core.Episode{TimersRemoved: []core.TimerRow{timer, timer}}},
		{"missing activity", core.Episode{ActivitiesRemoved: []*core.ActivityTask{act, otherAct}}},
		{"activity removed twice", core.Episode{ActivitiesRemoved: []*core.ActivityTask{act, act}}},
		{"nil activity", core.Episode{ActivitiesAdded: []*core.ActivityTask{nil}}},
		{"row of another instance", core.Episode{TimersAdded: []core.TimerRow{{InstanceID: "j", ExecutionID: "e1", TaskID: 3}}}},
		{"outbox without id", core.Episode{Outbox: []*core.Message{msg("o", "j")}}},
		{"invalid outbox message", core.Episode{OutboxID: "u", Outbox: []*core.Message{msg("o", "")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := tc.ep
			ep.InstanceID, ep.Token, ep.State = id, tok, state(id, core.StatusCompleted)
			ep.History = events(4, core.EventTimerFired)
			ep.TimersAdded = append(ep.TimersAdded, core.TimerRow{InstanceID: id, ExecutionID: "e1", TaskID: 5})
			if ep.OutboxID == "" && ep.Outbox == nil {
				ep.OutboxID, ep.Outbox = "unit", []*core.Message{msg("o1", "j")}
			}
			res := commit(t, p, &ep)
			wantErr(t, res[0].Err, core.ErrInvalidInput)
			s := load(t, p, id)
			st, err := p.OpenPartition(ctx, 0)
			must(t, err)
			if s.Token != tok || len(s.History) != 4 || s.State.Status != core.StatusRunning ||
				len(st.Timers) != 1 || len(st.Activities) != 1 || len(st.Outbox) != 0 {
				t.Fatalf("a rejected episode wrote something: %d events, %d timers, %d activities, %d outbox units",
					len(s.History), len(st.Timers), len(st.Activities), len(st.Outbox))
			}
		})
	}

	// Removing both rows that exist works.
	res = commit(t, p, &core.Episode{InstanceID: id, Token: tok, State: state(id, core.StatusRunning),
		History:       events(4, core.EventTimerFired, core.EventActivityCompleted),
		TimersRemoved: []core.TimerRow{timer}, ActivitiesRemoved: []*core.ActivityTask{{InstanceID: id, ExecutionID: "e1", TaskID: 2}}})
	must(t, res[0].Err)
	st, err := p.OpenPartition(ctx, 0)
	must(t, err)
	if len(st.Timers) != 0 || len(st.Activities) != 0 {
		t.Fatalf("rows left: %+v", st)
	}
}

func TestOpenPartitionReturnsPendingWork(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	id := "i"
	tok := create(t, p, id)
	res := commit(t, p, &core.Episode{InstanceID: id, Token: tok, State: state(id, core.StatusRunning),
		History: events(2, core.EventTimerCreated, core.EventTimerCreated, core.EventActivityScheduled, core.EventEventSent),
		TimersAdded: []core.TimerRow{
			{InstanceID: id, ExecutionID: "e1", TaskID: 1, FireAt: t0.Add(2 * time.Hour)},
			{InstanceID: id, ExecutionID: "e1", TaskID: 2, FireAt: t0.Add(time.Hour)},
		},
		ActivitiesAdded: []*core.ActivityTask{{InstanceID: id, ExecutionID: "e1", TaskID: 3, Name: "A", Input: []byte(`"in"`)}},
		OutboxID:        "unit-1",
		Outbox:          []*core.Message{msg("out-1", "peer"), msg("out-2", "peer2")},
	})
	must(t, res[0].Err)
	st, err := p.OpenPartition(ctx, 0)
	must(t, err)
	if len(st.Timers) != 2 || st.Timers[0].TaskID != 2 || st.Timers[1].TaskID != 1 {
		t.Fatalf("timers %+v (want by fire time)", st.Timers)
	}
	if len(st.Activities) != 1 || string(st.Activities[0].Input) != `"in"` {
		t.Fatalf("activities %+v", st.Activities)
	}
	if len(st.Outbox) != 1 || st.Outbox[0].Ref != (core.OutboxRef{Partition: 0, InstanceID: id, ID: "unit-1"}) ||
		ids(st.Outbox[0].Messages) != "out-1,out-2" || st.Outbox[0].Messages[1].InstanceID != "peer2" {
		t.Fatalf("outbox %+v", st.Outbox)
	}
	// Copies: changing them changes nothing stored.
	st.Activities[0].Input[0] = 'X'
	st.Outbox[0].Messages[0].Event.Data[0] = 'X'
	again, err := p.OpenPartition(ctx, 0)
	must(t, err)
	if string(again.Activities[0].Input) != `"in"` || again.Outbox[0].Messages[0].Event.Data[0] != '"' {
		t.Fatal("OpenPartition returned stored data, not copies")
	}
	p.ClosePartition(0)
	if s := p.Stats(); s.OpenPartition != 2 || s.ClosePartition != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOutboxDeliveredIsDeletedWithTheBatch(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	id := "i"
	res := commit(t, p, &core.Episode{InstanceID: id, State: state(id, core.StatusRunning), History: events(0, core.EventEpisodeStarted),
		OutboxID: "u1", Outbox: []*core.Message{msg("o", "peer")}})
	must(t, res[0].Err)
	ref := core.OutboxRef{Partition: 0, InstanceID: id, ID: "u1"}

	_, err := p.Commit(ctx, 0, &core.CommitBatch{OutboxDelivered: []core.OutboxRef{{Partition: 1, InstanceID: id, ID: "u1"}}})
	wantErr(t, err, core.ErrInvalidInput)

	// A conflicting episode does not keep the delivered units.
	res2, err := p.Commit(ctx, 0, &core.CommitBatch{
		Episodes:        []*core.Episode{{InstanceID: id, Token: "stale", State: state(id, core.StatusRunning)}},
		OutboxDelivered: []core.OutboxRef{ref, {Partition: 0, InstanceID: "gone", ID: "x"}}})
	must(t, err)
	wantErr(t, res2[0].Err, core.ErrConflict)
	st, err := p.OpenPartition(ctx, 0)
	must(t, err)
	if len(st.Outbox) != 0 {
		t.Fatalf("delivered unit still stored: %+v", st.Outbox)
	}
	_, err = p.Commit(ctx, 0, &core.CommitBatch{OutboxDelivered: []core.OutboxRef{ref}})
	must(t, err) // already gone: fine
}

func TestCommitEpisodesAreIndependent(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	tok := create(t, p, "b")
	res := commit(t, p,
		&core.Episode{InstanceID: "a", State: state("a", core.StatusRunning), History: events(0, core.EventEpisodeStarted)},
		&core.Episode{InstanceID: "b", Token: "v999", State: state("b", core.StatusCompleted)},
		&core.Episode{InstanceID: "c", State: state("c", core.StatusRunning), History: events(5, core.EventEpisodeStarted)},
		&core.Episode{InstanceID: "b", Token: tok, State: state("b", core.StatusCompleted), History: events(2, core.EventExecutionCompleted)},
		nil,
	)
	must(t, res[0].Err)
	wantErr(t, res[1].Err, core.ErrConflict)
	wantErr(t, res[2].Err, core.ErrInvalidInput)
	must(t, res[3].Err)
	wantErr(t, res[4].Err, core.ErrInvalidInput)
	if load(t, p, "b").State.Status != core.StatusCompleted {
		t.Fatal("the good episode of b was not written")
	}
	if _, err := p.GetInstance(ctx, "c", false); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("the invalid episode created c: %v", err)
	}
}

func TestCommitRejectsEpisodesOfAnotherPartition(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 4})
	id := "x"
	other := (p.PartitionOf(id) + 1) % 4
	res, err := p.Commit(ctx, other, &core.CommitBatch{Episodes: []*core.Episode{{InstanceID: id, State: state(id, core.StatusRunning)}}})
	must(t, err)
	wantErr(t, res[0].Err, core.ErrInvalidInput)
	_, err = p.Commit(ctx, 4, &core.CommitBatch{})
	wantErr(t, err, core.ErrInvalidInput)
	_, err = p.Commit(ctx, 0, nil)
	wantErr(t, err, core.ErrInvalidInput)
	res = commit(t, p, &core.Episode{InstanceID: id, State: state("y", core.StatusRunning)})
	wantErr(t, res[0].Err, core.ErrInvalidInput)
}

func TestCommitPayloadLimit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 33)
	for _, tc := range []struct {
		name string
		edit func(ep *core.Episode)
	}{
		{"input", func(ep *core.Episode) { ep.State.Input = big }},
		{"output", func(ep *core.Episode) { ep.State.Output = big }},
		{"custom status", func(ep *core.Episode) { ep.State.CustomStatus = big }},
		{"event data", func(ep *core.Episode) { ep.History[0].Data = big }},
		{"outbox event data", func(ep *core.Episode) {
			m := msg("o", "peer")
			m.Event.Data = big
			ep.OutboxID, ep.Outbox = "u", []*core.Message{m}
		}},
		{"activity input", func(ep *core.Episode) {
			ep.ActivitiesAdded = []*core.ActivityTask{{InstanceID: ep.InstanceID, ExecutionID: "e1", TaskID: 1, Name: "A", Input: big}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newProvider(t, memory.Options{Partitions: 1, MaxPayloadBytes: 32})
			id := "payload-instance"
			ep := &core.Episode{InstanceID: id, State: state(id, core.StatusRunning), History: events(0, core.EventExecutionStarted)}
			tc.edit(ep)
			res := commit(t, p, ep)
			wantErr(t, res[0].Err, core.ErrPayloadTooLarge)
			if !strings.Contains(res[0].Err.Error(), id) {
				t.Fatalf("the error does not name the instance: %v", res[0].Err)
			}
			if _, err := p.LoadInstance(ctx, 0, id); !errors.Is(err, core.ErrInstanceNotFound) {
				t.Fatalf("an oversized episode was written: %v", err)
			}
		})
	}
}

func TestStoredDataIsNotAliased(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	st := state("i", core.StatusRunning)
	st.Input, st.Failure = []byte(`"in"`), &core.Failure{Message: "f"}
	h := events(0, core.EventExecutionStarted)
	h[0].Data = []byte(`"in"`)
	res := commit(t, p, &core.Episode{InstanceID: "i", State: st, History: h})
	must(t, res[0].Err)
	st.Input[0], st.Failure.Message, h[0].Data[0], h[0].Kind = 'X', "X", 'X', core.EventTimerFired

	s := load(t, p, "i")
	if string(s.State.Input) != `"in"` || s.State.Failure.Message != "f" || string(s.History[0].Data) != `"in"` ||
		s.History[0].Kind != core.EventExecutionStarted {
		t.Fatal("the commit stored the caller's data")
	}
	s.State.Input[0], s.History[0].Data[0] = 'Y', 'Y'
	s2 := load(t, p, "i")
	if string(s2.State.Input) != `"in"` || string(s2.History[0].Data) != `"in"` {
		t.Fatal("LoadInstance returned stored data")
	}
}

// --- work items ---

func task(id string, n int64) *core.ActivityTask {
	return &core.ActivityTask{InstanceID: id, ExecutionID: "e1", TaskID: n, Name: "Charge", Input: []byte(fmt.Sprint(n)), ScheduledAt: t0}
}

func fetchItem(t *testing.T, p *memory.Provider, lock time.Duration) *core.ActivityWorkItem {
	t.Helper()
	item, err := p.FetchActivity(ctx, lock)
	must(t, err)
	return item
}

func TestWorkItemLifecycle(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 4})
	must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task("i", 1), task("i", 2)}))
	if p.WorkItemDepth() != 2 {
		t.Fatalf("depth %d", p.WorkItemDepth())
	}
	a := fetchItem(t, p, 10*time.Second)
	b := fetchItem(t, p, 10*time.Second)
	if a.Task.TaskID != 1 || b.Task.TaskID != 2 || a.DequeueCount != 1 || string(a.Task.Input) != "1" {
		t.Fatalf("fetched %+v, %+v", a.Task, b.Task)
	}
	if fetchItem(t, p, time.Second) != nil {
		t.Fatal("a locked work item was handed out")
	}

	// Renewing keeps the item locked past its first lock.
	clock.Advance(8 * time.Second)
	must(t, p.RenewActivity(ctx, a, 10*time.Second))
	clock.Advance(8 * time.Second)
	if x := fetchItem(t, p, time.Second); x == nil || x.Task.TaskID != 2 || x.DequeueCount != 2 {
		t.Fatalf("after renewal the expired item 2 should come back, got %+v", x)
	}

	result := msg("result-1", "i")
	must(t, p.CompleteActivity(ctx, a, result))
	if p.WorkItemDepth() != 1 {
		t.Fatalf("depth %d after complete", p.WorkItemDepth())
	}
	got := fetch(t, p, p.PartitionOf("i"), 10, time.Second)
	if ids(got) != "result-1" {
		t.Fatalf("result not delivered: %s", ids(got))
	}
	wantErr(t, p.CompleteActivity(ctx, a, result), core.ErrLockLost)
}

func TestWorkItemLockLost(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task("i", 1)}))
	old := fetchItem(t, p, 10*time.Second)
	clock.Advance(10 * time.Second)
	// Expired but not handed out again: it can still be renewed.
	must(t, p.RenewActivity(ctx, old, 10*time.Second))
	clock.Advance(10 * time.Second)
	current := fetchItem(t, p, 10*time.Second)
	if current == nil || current.DequeueCount != 2 {
		t.Fatalf("redelivery %+v", current)
	}
	wantErr(t, p.RenewActivity(ctx, old, time.Second), core.ErrLockLost)
	wantErr(t, p.CompleteActivity(ctx, old, msg("r", "i")), core.ErrLockLost)
	wantErr(t, p.AbandonActivity(ctx, old, 0), core.ErrLockLost)
	wantErr(t, p.DeadLetterActivity(ctx, old, "x"), core.ErrLockLost)
	if p.QueueDepth(0) != 0 || p.WorkItemDepth() != 1 {
		t.Fatal("a lost lock still completed the work item")
	}
	if !core.IsRetryable(p.RenewActivity(ctx, old, time.Second)) {
		t.Fatal("ErrLockLost should be retryable")
	}
	wantErr(t, p.RenewActivity(ctx, &core.ActivityWorkItem{Task: task("i", 1), Receipt: 42}, time.Second), core.ErrInvalidInput)
	wantErr(t, p.CompleteActivity(ctx, nil, msg("r", "i")), core.ErrInvalidInput)
	wantErr(t, p.CompleteActivity(ctx, current, nil), core.ErrInvalidInput)
	if p.WorkItemDepth() != 1 {
		t.Fatal("an invalid result completed the work item")
	}
}

func TestAbandonAndDeadLetterActivity(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task("i", 1)}))
	item := fetchItem(t, p, time.Minute)
	must(t, p.AbandonActivity(ctx, item, 5*time.Second))
	wantErr(t, p.AbandonActivity(ctx, item, 0), core.ErrLockLost) // the abandon released the lock
	clock.Advance(4 * time.Second)
	if fetchItem(t, p, time.Minute) != nil {
		t.Fatal("abandoned item visible before its delay")
	}
	clock.Advance(time.Second)
	item = fetchItem(t, p, time.Minute)
	if item == nil || item.DequeueCount != 2 {
		t.Fatalf("after the delay: %+v", item)
	}
	must(t, p.DeadLetterActivity(ctx, item, "poison: work item delivered 2 times"))
	if p.WorkItemDepth() != 0 {
		t.Fatal("dead-lettered item still queued")
	}
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	d := page.DeadLetters[0]
	if d.Partition != -1 || d.Activity == nil || d.Activity.TaskID != 1 || d.InstanceID != "i" || d.DequeueCount != 2 ||
		!d.At.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("dead letter %+v", d)
	}
	must(t, p.ReplayDeadLetter(ctx, d.ID))
	if item := fetchItem(t, p, time.Minute); item == nil || item.DequeueCount != 1 || string(item.Task.Input) != "1" {
		t.Fatalf("replayed work item %+v", item)
	}
}

func TestUndecodableWorkItemsAreDeadLettered(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	p.InjectRawActivity([]byte("{{{"))
	must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task("i", 1)}))
	if item := fetchItem(t, p, time.Minute); item == nil || item.Task.TaskID != 1 {
		t.Fatalf("fetched %+v", item)
	}
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 1 || !strings.HasPrefix(page.DeadLetters[0].Reason, "undecodable:") || page.DeadLetters[0].Partition != -1 {
		t.Fatalf("dead letters %+v", page.DeadLetters)
	}
	wantErr(t, p.ReplayDeadLetter(ctx, page.DeadLetters[0].ID), core.ErrInvalidInput)
}

func TestEnqueueActivitiesValidatesAllOrNothing(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1, MaxPayloadBytes: 8})
	big := task("i", 2)
	big.Input = bytes.Repeat([]byte("1"), 9)
	noName := task("i", 3)
	noName.Name = ""
	for _, tc := range []struct {
		bad  *core.ActivityTask
		want error
	}{{nil, core.ErrInvalidInput}, {task("", 1), core.ErrInvalidInput}, {noName, core.ErrInvalidInput}, {big, core.ErrPayloadTooLarge}} {
		wantErr(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task("i", 1), tc.bad}), tc.want)
	}
	_, err := p.FetchActivity(ctx, 0)
	wantErr(t, err, core.ErrInvalidInput)
	if p.WorkItemDepth() != 0 {
		t.Fatal("a rejected batch was enqueued")
	}
}

// --- reads, queries, purge ---

func TestGetInstanceStripsPayloads(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	st := state("i", core.StatusCompleted)
	st.Input, st.Output, st.CustomStatus = []byte(`1`), []byte(`2`), []byte(`3`)
	res := commit(t, p, &core.Episode{InstanceID: "i", State: st, History: events(0, core.EventExecutionStarted)})
	must(t, res[0].Err)
	bare, err := p.GetInstance(ctx, "i", false)
	must(t, err)
	if bare.Input != nil || bare.Output != nil || bare.CustomStatus != nil || bare.Name != "Orch" {
		t.Fatalf("without payloads: %+v", bare)
	}
	full, err := p.GetInstance(ctx, "i", true)
	must(t, err)
	if string(full.Input) != "1" || string(full.Output) != "2" || string(full.CustomStatus) != "3" {
		t.Fatalf("with payloads: %+v", full)
	}
	_, err = p.GetInstance(ctx, "missing", true)
	wantErr(t, err, core.ErrInstanceNotFound)
	_, err = p.GetHistory(ctx, "missing")
	wantErr(t, err, core.ErrInstanceNotFound)
	_, err = p.GetInstance(ctx, "", true)
	wantErr(t, err, core.ErrInvalidInput)
}

// seed commits instances "<prefix><n>" created n minutes after t0, with the given statuses and names.
func seed(t *testing.T, p *memory.Provider, prefix string, specs ...struct {
	status core.Status
	name   string
}) []string {
	t.Helper()
	var out []string
	for n, s := range specs {
		id := fmt.Sprintf("%s%02d", prefix, n)
		st := state(id, s.status)
		st.Name, st.CreatedAt, st.Input = s.name, t0.Add(time.Duration(n)*time.Minute), []byte(`"in"`)
		res := commit(t, p, &core.Episode{InstanceID: id, State: st, History: events(0, core.EventExecutionStarted)})
		must(t, res[0].Err)
		out = append(out, id)
	}
	return out
}

type spec = struct {
	status core.Status
	name   string
}

func queryAll(t *testing.T, p *memory.Provider, q core.InstanceQuery) []string {
	t.Helper()
	var out []string
	for {
		page, err := p.QueryInstances(ctx, q)
		must(t, err)
		for _, st := range page.Instances {
			out = append(out, st.InstanceID)
		}
		if page.Continuation == "" {
			return out
		}
		q.Continuation = page.Continuation
	}
}

func TestQueryFilters(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 4})
	seed(t, p, "a-", spec{core.StatusRunning, "Ship"}, spec{core.StatusCompleted, "Ship"}, spec{core.StatusFailed, "Bill"},
		spec{core.StatusCompleted, "Bill"}, spec{core.StatusPending, "Ship"})
	seed(t, p, "b-", spec{core.StatusCompleted, "Ship"})
	for _, tc := range []struct {
		name string
		q    core.InstanceQuery
		want string
	}{
		{"all", core.InstanceQuery{}, "a-00,b-00,a-01,a-02,a-03,a-04"},
		{"statuses", core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted, core.StatusFailed}}, "b-00,a-01,a-02,a-03"},
		{"name", core.InstanceQuery{Name: "Bill"}, "a-02,a-03"},
		{"created range", core.InstanceQuery{CreatedFrom: t0.Add(time.Minute), CreatedTo: t0.Add(3 * time.Minute)}, "a-01,a-02"},
		{"created from", core.InstanceQuery{CreatedFrom: t0.Add(4 * time.Minute)}, "a-04"},
		{"created to", core.InstanceQuery{CreatedTo: t0.Add(time.Minute)}, "a-00,b-00"},
		{"prefix", core.InstanceQuery{InstanceIDPrefix: "b-"}, "b-00"},
		{"combined", core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted}, Name: "Ship", InstanceIDPrefix: "a"}, "a-01"},
		{"paged", core.InstanceQuery{PageSize: 1}, "a-00,b-00,a-01,a-02,a-03,a-04"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(queryAll(t, p, tc.q), ","); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	page, err := p.QueryInstances(ctx, core.InstanceQuery{InstanceIDPrefix: "a-00"})
	must(t, err)
	if page.Instances[0].Input != nil {
		t.Fatal("payloads returned without WithPayloads")
	}
	page, err = p.QueryInstances(ctx, core.InstanceQuery{InstanceIDPrefix: "a-00", WithPayloads: true})
	must(t, err)
	if string(page.Instances[0].Input) != `"in"` {
		t.Fatal("payloads missing with WithPayloads")
	}
	page, err = p.QueryInstances(ctx, core.InstanceQuery{InstanceIDPrefix: "none"})
	must(t, err)
	if page.Instances == nil || len(page.Instances) != 0 || page.Continuation != "" {
		t.Fatalf("empty result %+v", page)
	}
}

func TestQueryPagingIsStableUnderInserts(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 4})
	var specs []spec
	for range 10 {
		specs = append(specs, spec{core.StatusRunning, "O"})
	}
	original := seed(t, p, "p-", specs...)
	seen := map[string]int{}
	q := core.InstanceQuery{PageSize: 3}
	for pages := 0; ; pages++ {
		page, err := p.QueryInstances(ctx, q)
		must(t, err)
		for _, st := range page.Instances {
			seen[st.InstanceID]++
		}
		// Inserts before and after the cursor while paging.
		early := fmt.Sprintf("early-%d", pages)
		st := state(early, core.StatusRunning)
		st.CreatedAt = t0.Add(-time.Hour)
		late := fmt.Sprintf("late-%d", pages)
		st2 := state(late, core.StatusRunning)
		st2.CreatedAt = t0.Add(time.Hour)
		for _, s := range []*core.InstanceState{st, st2} {
			res := commit(t, p, &core.Episode{InstanceID: s.InstanceID, State: s})
			must(t, res[0].Err)
		}
		if q.Continuation = page.Continuation; q.Continuation == "" {
			break
		}
	}
	for _, id := range original {
		if seen[id] != 1 {
			t.Fatalf("%s listed %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 || strings.HasPrefix(id, "early-") {
			t.Fatalf("%s listed %d times", id, n)
		}
	}

	for _, bad := range []string{"%%%", "eyJ4IjoxfQ", "bm90IGpzb24"} {
		_, err := p.QueryInstances(ctx, core.InstanceQuery{Continuation: bad})
		wantErr(t, err, core.ErrInvalidInput)
	}
	// A dead-letter token is not an instance token.
	for range 2 {
		p.InjectRawControlMessage(0, []byte("x"))
	}
	fetch(t, p, 0, 10, time.Second)
	dl, err := p.ListDeadLetters(ctx, 1, "")
	must(t, err)
	_, err = p.QueryInstances(ctx, core.InstanceQuery{Continuation: dl.Continuation})
	wantErr(t, err, core.ErrInvalidInput)
	for _, size := range []int{-1, 1001} {
		_, err := p.QueryInstances(ctx, core.InstanceQuery{PageSize: size})
		wantErr(t, err, core.ErrInvalidInput)
	}
	_, err = p.QueryInstances(ctx, core.InstanceQuery{CreatedFrom: t0, CreatedTo: t0})
	wantErr(t, err, core.ErrInvalidInput)
	if page, err := p.QueryInstances(ctx, core.InstanceQuery{PageSize: 1000}); err != nil || len(page.Instances) == 0 {
		t.Fatalf("page size 1000: %v", err)
	}
}

func TestPurgeInstance(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	wantErr(t, p.PurgeInstance(ctx, "missing"), core.ErrInstanceNotFound)
	running := create(t, p, "run")
	err := p.PurgeInstance(ctx, "run")
	wantErr(t, err, core.ErrNotTerminal)
	if !strings.Contains(err.Error(), "Running") || !strings.Contains(err.Error(), "run") {
		t.Fatalf("the error does not name the instance and status: %v", err)
	}
	for _, s := range []core.Status{core.StatusPending, core.StatusSuspended, core.StatusContinuedAsNew} {
		res := commit(t, p, &core.Episode{InstanceID: "run", Token: running, State: state("run", s)})
		must(t, res[0].Err)
		running = res[0].Token
		wantErr(t, p.PurgeInstance(ctx, "run"), core.ErrNotTerminal)
	}

	res := commit(t, p, &core.Episode{InstanceID: "done", State: state("done", core.StatusCompleted), History: events(0, core.EventExecutionStarted),
		TimersAdded:     []core.TimerRow{{InstanceID: "done", ExecutionID: "e1", TaskID: 1}},
		ActivitiesAdded: []*core.ActivityTask{{InstanceID: "done", ExecutionID: "e1", TaskID: 2, Name: "A"}},
		OutboxID:        "u", Outbox: []*core.Message{msg("o", "peer")}})
	must(t, res[0].Err)
	must(t, p.PurgeInstance(ctx, "done"))
	_, err = p.LoadInstance(ctx, 0, "done")
	wantErr(t, err, core.ErrInstanceNotFound)
	_, err = p.GetHistory(ctx, "done")
	wantErr(t, err, core.ErrInstanceNotFound)
	st, err := p.OpenPartition(ctx, 0)
	must(t, err)
	if len(st.Timers)+len(st.Activities)+len(st.Outbox) != 0 {
		t.Fatalf("rows of a purged instance remain: %+v", st)
	}
	// A stale token of the purged instance cannot resurrect it.
	purged := res[0].Token
	res = commit(t, p, &core.Episode{InstanceID: "done", Token: purged, State: state("done", core.StatusRunning)})
	wantErr(t, res[0].Err, core.ErrConflict)
	// Recreated, it gets a token the old one never equals.
	res = commit(t, p, &core.Episode{InstanceID: "done", State: state("done", core.StatusRunning)})
	must(t, res[0].Err)
	if res[0].Token == purged {
		t.Fatal("token reused")
	}
}

func TestPurgeInstances(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 4})
	seed(t, p, "x-", spec{core.StatusCompleted, "A"}, spec{core.StatusFailed, "A"}, spec{core.StatusTerminated, "B"},
		spec{core.StatusRunning, "A"}, spec{core.StatusSuspended, "A"}, spec{core.StatusCompleted, "A"})
	seed(t, p, "y-", spec{core.StatusCompleted, "A"})
	n, err := p.PurgeInstances(ctx, core.InstanceQuery{InstanceIDPrefix: "x-", Name: "A", PageSize: 1, Continuation: "ignored"})
	must(t, err)
	if n != 3 {
		t.Fatalf("purged %d, want 3", n)
	}
	if got := strings.Join(queryAll(t, p, core.InstanceQuery{}), ","); got != "y-00,x-02,x-03,x-04" {
		t.Fatalf("left: %s", got)
	}
	n, err = p.PurgeInstances(ctx, core.InstanceQuery{Statuses: []core.Status{core.StatusRunning}})
	must(t, err)
	if n != 0 {
		t.Fatalf("purged %d running instances", n)
	}
}

// --- hosts ---

func TestHosts(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 1})
	h := core.HostInfo{ID: "host-b", StartedAt: t0, Orchestrations: []core.NameVersion{{Name: "O", Version: "1"}}, Partitions: []int{0}}
	must(t, p.PublishHost(ctx, h))
	h.Orchestrations[0].Name = "changed"
	clock.Advance(30 * time.Second)
	must(t, p.PublishHost(ctx, core.HostInfo{ID: "host-a"}))
	clock.Advance(31 * time.Second)
	hosts, err := p.ListHosts(ctx, time.Minute)
	must(t, err)
	if len(hosts) != 1 || hosts[0].ID != "host-a" || !hosts[0].LastSeen.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("hosts %+v", hosts)
	}
	must(t, p.PublishHost(ctx, h)) // a heartbeat
	hosts, err = p.ListHosts(ctx, time.Minute)
	must(t, err)
	if len(hosts) != 2 || hosts[0].ID != "host-a" || hosts[1].ID != "host-b" || hosts[1].Orchestrations[0].Name != "changed" ||
		!hosts[1].LastSeen.Equal(t0.Add(61*time.Second)) {
		t.Fatalf("hosts %+v", hosts)
	}
	hosts[1].Partitions[0] = 9
	again, err := p.ListHosts(ctx, 0)
	must(t, err)
	if again[1].Partitions[0] != 0 {
		t.Fatal("ListHosts returned stored data")
	}
	wantErr(t, p.PublishHost(ctx, core.HostInfo{}), core.ErrInvalidInput)
}

// --- task hub, cancellation, hooks ---

func TestDeleteTaskHubClearsEverything(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 2})
	must(t, p.CreateTaskHub(ctx))
	must(t, p.CreateTaskHub(ctx))
	create(t, p, "i")
	must(t, p.SendMessages(ctx, []*core.Message{msg("m", "i")}))
	must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task("i", 1)}))
	p.InjectRawControlMessage(0, []byte("x"))
	p.InjectRawControlMessage(1, []byte("x"))
	fetch(t, p, 0, 10, time.Minute)
	fetch(t, p, 1, 10, time.Minute)
	must(t, p.PublishHost(ctx, core.HostInfo{ID: "h"}))
	must(t, p.DeleteTaskHub(ctx))
	_, err := p.GetInstance(ctx, "i", false)
	wantErr(t, err, core.ErrInstanceNotFound)
	dl, err := p.ListDeadLetters(ctx, 0, "")
	must(t, err)
	hosts, err := p.ListHosts(ctx, 0)
	must(t, err)
	if p.QueueDepth(0)+p.QueueDepth(1)+p.WorkItemDepth() != 0 || len(dl.DeadLetters) != 0 || len(hosts) != 0 {
		t.Fatal("DeleteTaskHub left data behind")
	}
	create(t, p, "i") // usable again
}

func TestCanceledContext(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	c, cancel := context.WithCancel(ctx)
	cancel()
	item := &core.ActivityWorkItem{Task: task("i", 1)}
	for name, call := range map[string]func() error{
		"SendMessages":       func() error { return p.SendMessages(c, nil) },
		"OpenPartition":      func() error { _, err := p.OpenPartition(c, 0); return err },
		"FetchMessages":      func() error { _, err := p.FetchMessages(c, 0, 1, time.Second); return err },
		"AbandonMessages":    func() error { return p.AbandonMessages(c, 0, nil, 0) },
		"DeleteMessages":     func() error { return p.DeleteMessages(c, 0, nil) },
		"DeadLetterMessages": func() error { return p.DeadLetterMessages(c, 0, nil, "") },
		"LoadInstance":       func() error { _, err := p.LoadInstance(c, 0, "i"); return err },
		"Commit":             func() error { _, err := p.Commit(c, 0, &core.CommitBatch{}); return err },
		"EnqueueActivities":  func() error { return p.EnqueueActivities(c, nil) },
		"FetchActivity":      func() error { _, err := p.FetchActivity(c, time.Second); return err },
		"RenewActivity":      func() error { return p.RenewActivity(c, item, time.Second) },
		"CompleteActivity":   func() error { return p.CompleteActivity(c, item, nil) },
		"AbandonActivity":    func() error { return p.AbandonActivity(c, item, 0) },
		"DeadLetterActivity": func() error { return p.DeadLetterActivity(c, item, "") },
		"GetInstance":        func() error { _, err := p.GetInstance(c, "i", false); return err },
		"GetHistory":         func() error { _, err := p.GetHistory(c, "i"); return err },
		"QueryInstances":     func() error { _, err := p.QueryInstances(c, core.InstanceQuery{}); return err },
		"PurgeInstance":      func() error { return p.PurgeInstance(c, "i") },
		"PurgeInstances":     func() error { _, err := p.PurgeInstances(c, core.InstanceQuery{}); return err },
		"ListDeadLetters":    func() error { _, err := p.ListDeadLetters(c, 0, ""); return err },
		"ReplayDeadLetter":   func() error { return p.ReplayDeadLetter(c, "x") },
		"DiscardDeadLetter":  func() error { return p.DiscardDeadLetter(c, "x") },
		"PublishHost":        func() error { return p.PublishHost(c, core.HostInfo{ID: "h"}) },
		"ListHosts":          func() error { _, err := p.ListHosts(c, 0); return err },
		"CreateTaskHub":      func() error { return p.CreateTaskHub(c) },
		"DeleteTaskHub":      func() error { return p.DeleteTaskHub(c) },
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			wantErr(t, err, context.Canceled)
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("the error does not name the call: %v", err)
			}
		})
	}
}

func TestStatsCountCalls(t *testing.T) {
	p, _ := newProvider(t, memory.Options{Partitions: 1})
	create(t, p, "i")
	load(t, p, "i")
	load(t, p, "i")
	_, _ = p.LoadInstance(ctx, 0, "missing")
	s := p.Stats()
	if s.LoadInstance != 3 || s.Commit != 1 || s.FetchMessages != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNextVisibleAt(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 2})
	if _, ok := p.NextVisibleAt(); ok {
		t.Fatal("an empty hub has something invisible")
	}
	must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task("i", 1)}))
	fetchItem(t, p, 20*time.Second)
	must(t, p.SendMessages(ctx, []*core.Message{msg("m", "i")}))
	fetch(t, p, p.PartitionOf("i"), 1, 10*time.Second)
	if at, ok := p.NextVisibleAt(); !ok || !at.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("NextVisibleAt = %v, %v", at, ok)
	}
	clock.Advance(15 * time.Second)
	if at, ok := p.NextVisibleAt(); !ok || !at.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("NextVisibleAt = %v, %v", at, ok)
	}
	if p.QueueDepth(-1) != 0 || p.QueueDepth(2) != 0 {
		t.Fatal("depth of a partition that does not exist")
	}
}

func TestConcurrentUse(t *testing.T) {
	p, clock := newProvider(t, memory.Options{Partitions: 4})
	const n = 50
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range n {
				id := fmt.Sprintf("w%d-%d", w, i)
				_ = p.SendMessages(ctx, []*core.Message{msg(id, id)})
				_ = p.EnqueueActivities(ctx, []*core.ActivityTask{task(id, 1)})
				res, err := p.Commit(ctx, p.PartitionOf(id), &core.CommitBatch{Episodes: []*core.Episode{{InstanceID: id,
					State: state(id, core.StatusCompleted), History: events(0, core.EventExecutionStarted)}}})
				if err != nil || res[0].Err != nil {
					t.Errorf("commit %s: %v %v", id, err, res[0].Err)
				}
			}
		})
		wg.Go(func() {
			for range n {
				for part := range 4 {
					msgs, _ := p.FetchMessages(ctx, part, 5, time.Second)
					_ = p.DeleteMessages(ctx, part, msgs)
				}
				if item, _ := p.FetchActivity(ctx, time.Second); item != nil {
					_ = p.CompleteActivity(ctx, item, msg("r", item.Task.InstanceID))
				}
				_, _ = p.QueryInstances(ctx, core.InstanceQuery{PageSize: 7})
				_, _ = p.PurgeInstances(ctx, core.InstanceQuery{InstanceIDPrefix: "w0-"})
				clock.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
}
