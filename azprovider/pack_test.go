package azprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// statDelta runs f and returns how many operations of each kind it issued.
func statDelta(p *Provider, f func()) map[string]int64 {
	before := p.Stats()
	f()
	after := p.Stats()
	d := map[string]int64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

func sentIDs(msgs []*core.Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// expectEmpty fails when the partition's control queue hands out a message.
func expectEmpty(t *testing.T, p *Provider, partition int) {
	t.Helper()
	got, err := p.FetchMessages(testCtx(t), partition, 32, time.Minute)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("partition %d still had %d messages: %v", partition, len(got), sentIDs(got))
	}
}

// TestAzuritePacking: one call's messages for a partition travel in packs
// of at most 32 and about 48 KiB, in order; a delayed message and one too
// large to share go alone. The fetch opens the packs, and one delete per
// queue message settles them all.
func TestAzuritePacking(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "packed", 0)
	var small []*core.Message
	for i := range 40 {
		small = append(small, eventMessage(id, fmt.Sprintf("e%02d", i), []byte(fmt.Sprint(i))))
	}
	large := eventMessage(id, "large", []byte(`"`+strings.Repeat("x", 30<<10)+`"`))
	delayed := eventMessage(id, "delayed", nil)
	delayed.VisibleAt = time.Now().Add(time.Hour)
	var medium []*core.Message
	for i := range 10 {
		medium = append(medium, eventMessage(id, fmt.Sprintf("m%d", i), []byte(`"`+strings.Repeat("y", 10<<10)+`"`)))
	}
	all := append(append(append([]*core.Message{}, small...), large, delayed), medium...)
	d := statDelta(p, func() { must(t, p.SendMessages(ctx, all)) })
	// 32 + 8 small, the large one, the delayed one, the 10 KiB ones four to a pack (3).
	if d["queue.put"] != 7 {
		t.Fatalf("%d queue puts for 52 messages, want 7: %v", d["queue.put"], d)
	}

	var got []*core.Message
	for len(got) < 51 {
		batch, err := p.FetchMessages(ctx, 0, 32, time.Minute)
		must(t, err)
		if len(batch) == 0 {
			t.Fatalf("fetched %d of 51 messages", len(got))
		}
		got = append(got, batch...)
	}
	want := append(append(append([]*core.Message{}, small...), large), medium...)
	if fmt.Sprint(sentIDs(got)) != fmt.Sprint(sentIDs(want)) {
		t.Fatalf("fetched in another order or with other messages:\n got %v\nwant %v", sentIDs(got), sentIDs(want))
	}
	for i, m := range got {
		if m.DequeueCount != 1 || !sameData(m.Event.Data, want[i].Event.Data) || m.Event.Name != want[i].Event.Name {
			t.Fatalf("message %d: count %d, name %q (want %q)", i, m.DequeueCount, m.Event.Name, want[i].Event.Name)
		}
	}
	d = statDelta(p, func() { must(t, p.DeleteMessages(ctx, 0, got)) })
	if d["queue.delete"] != 6 || d["queue.update"] != 0 || d["queue.put"] != 0 {
		t.Fatalf("settling 51 messages of 6 queue messages: %v, want 6 deletes", d)
	}
	expectEmpty(t, p, 0)
}

// TestAzuriteNoMessagePacking: with the option, one queue message per message.
func TestAzuriteNoMessagePacking(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, func(o *Options) { o.NoMessagePacking = true })
	ctx := testCtx(t)
	id := idIn(p, "single", 1)
	var msgs []*core.Message
	for range 5 {
		msgs = append(msgs, eventMessage(id, "e", nil))
	}
	if d := statDelta(p, func() { must(t, p.SendMessages(ctx, msgs)) }); d["queue.put"] != 5 {
		t.Fatalf("%d puts for 5 messages without packing", d["queue.put"])
	}
	got, err := p.FetchMessages(ctx, 1, 32, time.Minute)
	must(t, err)
	if len(got) != 5 || got[0].Receipt.(*receipt).pack != nil {
		t.Fatalf("fetched %d messages", len(got))
	}
	must(t, p.DeleteMessages(ctx, 1, got))
}

// gateTransport holds every message put on one queue until released.
type gateTransport struct {
	queue   string
	arrived atomic.Int32
	release chan struct{}
}

func (g *gateTransport) Do(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/"+g.queue+"/messages") {
		g.arrived.Add(1)
		<-g.release
	}
	return http.DefaultClient.Do(req)
}

// TestAzuritePackCoalescesConcurrentSends: while the puts of a partition's
// lanes are in flight, the messages of other callers gather and go in the
// next round, packed.
func TestAzuritePackCoalescesConcurrentSends(t *testing.T) {
	t.Parallel()
	gate := &gateTransport{release: make(chan struct{})}
	p := newTestProvider(t, func(o *Options) { o.Transport = gate })
	gate.queue = p.controlQueueName(2)
	ctx := testCtx(t)
	id := idIn(p, "coalesced", 2)
	msgs := make([]*core.Message, 50)
	for i := range msgs {
		msgs[i] = eventMessage(id, fmt.Sprintf("e%02d", i), nil)
	}
	errs := make(chan error, len(msgs))
	before := p.Stats()["queue.put"]
	for _, m := range msgs {
		go func() { errs <- p.SendMessages(ctx, []*core.Message{m}) }()
	}
	// Every lane has a put in flight, and every other caller waits.
	s := &p.senders[2]
	for deadline := time.Now().Add(30 * time.Second); ; {
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == len(msgs)-senderLanes && gate.arrived.Load() == senderLanes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers waiting and %d puts in flight, want %d and %d", n, gate.arrived.Load(), len(msgs)-senderLanes, senderLanes)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(gate.release)
	for range msgs {
		must(t, <-errs)
	}
	// 4 alone, then the 46 others in packs of 32 and 14.
	if puts := p.Stats()["queue.put"] - before; puts != senderLanes+2 {
		t.Fatalf("%d puts for 50 concurrent sends, want %d", puts, senderLanes+2)
	}
	seen := map[string]bool{}
	for len(seen) < len(msgs) {
		got, err := p.FetchMessages(ctx, 2, 32, time.Minute)
		must(t, err)
		if len(got) == 0 {
			t.Fatalf("fetched %d of %d messages", len(seen), len(msgs))
		}
		for _, m := range got {
			if seen[m.ID] {
				t.Fatalf("message %s fetched twice", m.ID)
			}
			seen[m.ID] = true
		}
		must(t, p.DeleteMessages(ctx, 2, got))
	}
}

// TestAzuritePackPartialOutcomes: the messages of one pack settle one by one
// as if each had a queue message of its own. A deleted one never comes
// back, a dead-lettered one is dead-lettered alone, an abandoned one comes
// back with its delivery count carried on, and the others stay locked.
func TestAzuritePackPartialOutcomes(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "partial", 3)
	var sent []*core.Message
	for i := range 4 {
		sent = append(sent, eventMessage(id, fmt.Sprintf("e%d", i), []byte(fmt.Sprint(i))))
	}
	must(t, p.SendMessages(ctx, sent))
	got, err := p.FetchMessages(ctx, 3, 32, time.Minute)
	must(t, err)
	if len(got) != 4 || got[0].Receipt.(*receipt).pack == nil {
		t.Fatalf("fetched %d messages, want one pack of 4", len(got))
	}

	must(t, p.DeleteMessages(ctx, 3, got[:1]))
	must(t, p.DeadLetterMessages(ctx, 3, got[1:2], "poison: test"))
	expectEmpty(t, p, 3) // the rest stays locked
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].Message == nil || page.DeadLetters[0].Message.ID != sent[1].ID {
		t.Fatalf("dead letters: %+v, want one of message %s alone", page.DeadLetters, sent[1].ID)
	}

	// Abandon one of the two left: it is put again, with its count.
	must(t, p.AbandonMessages(ctx, 3, got[2:3], 0))
	back, err := p.FetchMessages(ctx, 3, 32, time.Minute)
	must(t, err)
	if len(back) != 1 || back[0].ID != sent[2].ID || back[0].DequeueCount != 2 {
		t.Fatalf("after abandoning one: %v", sentIDs(back))
	}
	// Abandon the last one: the queue message itself comes back, holding it alone.
	must(t, p.AbandonMessages(ctx, 3, got[3:], 0))
	last, err := p.FetchMessages(ctx, 3, 32, time.Minute)
	must(t, err)
	if len(last) != 1 || last[0].ID != sent[3].ID || last[0].DequeueCount != 2 {
		t.Fatalf("after abandoning the last: %v", sentIDs(last))
	}
	// Settled parts are not settled again: no second dead letter, no error.
	must(t, p.DeadLetterMessages(ctx, 3, got[:2], "again"))
	must(t, p.DeleteMessages(ctx, 3, got))
	if page, err := p.ListDeadLetters(ctx, 10, ""); err != nil || len(page.DeadLetters) != 1 {
		t.Fatalf("settled parts were dead-lettered again: %v %v", page, err)
	}
	// The one put again counts on from its earlier deliveries.
	must(t, p.AbandonMessages(ctx, 3, back, 0))
	again, err := p.FetchMessages(ctx, 3, 32, time.Minute)
	must(t, err)
	if len(again) != 1 || again[0].ID != sent[2].ID || again[0].DequeueCount != 3 {
		t.Fatalf("the re-sent message: %v", again)
	}
	must(t, p.DeleteMessages(ctx, 3, append(again, last...)))
	expectEmpty(t, p, 3)
}

// TestAzuritePackLockExpiry: a pack whose lock expires comes back holding
// only the messages that had no outcome; the old receipts are stale.
func TestAzuritePackLockExpiry(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "expiry", 0)
	sent := []*core.Message{eventMessage(id, "a", nil), eventMessage(id, "b", nil), eventMessage(id, "c", nil)}
	must(t, p.SendMessages(ctx, sent))
	first, err := p.FetchMessages(ctx, 0, 32, time.Second)
	must(t, err)
	if len(first) != 3 {
		t.Fatalf("fetched %d", len(first))
	}
	must(t, p.DeleteMessages(ctx, 0, first[:1]))
	var second []*core.Message
	for deadline := time.Now().Add(20 * time.Second); len(second) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the pack did not come back after its lock expired")
		}
		second, err = p.FetchMessages(ctx, 0, 32, time.Minute)
		must(t, err)
		if len(second) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if fmt.Sprint(sentIDs(second)) != fmt.Sprint(sentIDs(sent[1:])) || second[0].DequeueCount != 2 {
		t.Fatalf("after the lock expired: %v (count %d), want b and c delivered twice", sentIDs(second), second[0].DequeueCount)
	}
	// The stale receipts change nothing: an abandon puts no copy, a delete
	// deletes nothing.
	must(t, p.AbandonMessages(ctx, 0, first[1:2], 0))
	must(t, p.DeleteMessages(ctx, 0, first[2:]))
	expectEmpty(t, p, 0)
	must(t, p.DeleteMessages(ctx, 0, second))
	expectEmpty(t, p, 0)
}

// TestAzuritePackUndecodablePart: a part that cannot be decoded is
// dead-lettered alone; the others are delivered. A pack on the work-item
// queue, where none is ever sent, is dead-lettered whole.
func TestAzuritePackUndecodablePart(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	good := eventMessage(idIn(p, "undecodable", 1), "fine", nil)
	body, err := core.EncodeMessage(good)
	must(t, err)
	bad := `{"v":1,"garbage":true}`
	must(t, p.enqueue(ctx, p.control[1], "control", packText([][]byte{body, []byte(bad)}, nil), 0))
	got, err := p.FetchMessages(ctx, 1, 32, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != good.ID {
		t.Fatalf("fetched %v, want the good message alone", sentIDs(got))
	}
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 1 || !strings.HasPrefix(page.DeadLetters[0].Reason, "undecodable:") ||
		!bytes.Equal(page.DeadLetters[0].Raw, []byte(bad)) {
		t.Fatalf("dead letters: %+v, want the bad part alone", page.DeadLetters)
	}
	must(t, p.DeleteMessages(ctx, 1, got))
	expectEmpty(t, p, 1)

	// The same on the work-item queue: a good item is handed out, a bad one
	// dead-lettered alone.
	task := &core.ActivityTask{InstanceID: good.InstanceID, ExecutionID: "e", Name: "Act", TaskID: 1, Input: []byte(`1`)}
	doc, err := json.Marshal(workItemDoc{V: workItemFormat, Task: task})
	must(t, err)
	must(t, p.enqueue(ctx, p.work, "work", packText([][]byte{[]byte(bad), doc}, nil), 0))
	item, err := p.FetchActivity(ctx, time.Minute)
	must(t, err)
	if item == nil || item.Task.TaskID != 1 {
		t.Fatalf("the good item of a pack on the work-item queue: %+v", item)
	}
	page, err = p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 2 || page.DeadLetters[1].Partition != -1 || !bytes.Equal(page.DeadLetters[1].Raw, []byte(bad)) {
		t.Fatalf("%d dead letters, want the bad work item too: %+v", len(page.DeadLetters), page.DeadLetters)
	}
	must(t, p.DeleteActivities(ctx, []*core.ActivityWorkItem{item}))
	if item, err := p.FetchActivity(ctx, time.Minute); err != nil || item != nil {
		t.Fatalf("the work-item queue is not empty: %v %v", item, err)
	}
}

// TestAzuriteWorkItemPacks: one EnqueueActivities call puts its tasks as
// packs; one dequeue serves a pack's items, which then renew, complete,
// abandon, dead-letter and delete one by one, as if each were alone.
func TestAzuriteWorkItemPacks(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "items", 2)
	var tasks []*core.ActivityTask
	for i := range 40 {
		tasks = append(tasks, &core.ActivityTask{InstanceID: id, ExecutionID: "e1", Name: "Act", TaskID: int64(i), Input: []byte(fmt.Sprint(i))})
	}
	if d := statDelta(p, func() { must(t, p.EnqueueActivities(ctx, tasks)) }); d["queue.put"] != 2 {
		t.Fatalf("%d puts for 40 work items, want 2 packs", d["queue.put"])
	}
	var items []*core.ActivityWorkItem
	d := statDelta(p, func() {
		for len(items) < len(tasks) {
			its, err := p.FetchActivities(ctx, 32, time.Minute)
			must(t, err)
			if len(its) == 0 {
				t.Fatalf("fetched %d of 40 work items", len(items))
			}
			items = append(items, its...)
		}
	})
	if d["queue.get"] != 2 {
		t.Fatalf("%d dequeues for 40 work items in 2 packs", d["queue.get"])
	}
	// The packs are put in parallel: either may come first.
	slices.SortFunc(items, func(a, b *core.ActivityWorkItem) int { return int(a.Task.TaskID - b.Task.TaskID) })
	for i, it := range items {
		if it.Task.TaskID != int64(i) || it.DequeueCount != 1 {
			t.Fatalf("item %d: task %d, count %d", i, it.Task.TaskID, it.DequeueCount)
		}
	}
	result := &core.Message{ID: core.NewID(), InstanceID: id, Event: &core.Event{Seq: -1, Kind: core.EventActivityCompleted, TaskID: 0, Data: []byte(`"done"`), Time: testTime}}
	must(t, p.CompleteActivity(ctx, items[0], result))
	must(t, p.RenewActivity(ctx, items[1], time.Minute))
	must(t, p.AbandonActivity(ctx, items[2], 0))
	must(t, p.DeadLetterActivity(ctx, items[3], "poison: test"))
	// Settled items report a lost lock, as a deleted work item does.
	if err := p.CompleteActivity(ctx, items[0], nil); !errors.Is(err, core.ErrLockLost) {
		t.Fatalf("complete twice: %v", err)
	}
	if err := p.RenewActivity(ctx, items[3], time.Minute); !errors.Is(err, core.ErrLockLost) {
		t.Fatalf("renew of a dead-lettered item: %v", err)
	}
	got, err := p.FetchMessages(ctx, 2, 32, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != result.ID {
		t.Fatalf("the result sent by CompleteActivity: %v", sentIDs(got))
	}
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].Activity == nil || page.DeadLetters[0].Activity.TaskID != 3 {
		t.Fatalf("dead letters: %+v, want task 3 alone", page.DeadLetters)
	}
	back, err := p.FetchActivity(ctx, time.Minute)
	must(t, err)
	if back == nil || back.Task.TaskID != 2 || back.DequeueCount != 2 {
		t.Fatalf("the abandoned item: %+v", back)
	}
	// The second pack (items 32..39) is deleted with one request.
	if d := statDelta(p, func() { must(t, p.DeleteActivities(ctx, items[32:])) }); d["queue.delete"] != 1 || d["queue.update"] != 0 {
		t.Fatalf("deleting a whole pack of work items: %v", d)
	}
	must(t, p.DeleteActivities(ctx, append(items[4:32], back)))
	if it, err := p.FetchActivity(ctx, time.Minute); err != nil || it != nil {
		t.Fatalf("the work-item queue is not empty: %+v %v", it, err)
	}
}

// TestAzuriteWorkItemGiveBack: a fetch hands out a pack's items up to the
// number asked for; the rest go back to the queue at once, for any host, and
// that fetch does not count as their delivery.
func TestAzuriteWorkItemGiveBack(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	other, err := New(testCtx(t), Options{ConnectionString: p.opts.ConnectionString, TaskHub: p.hub, Partitions: p.n})
	must(t, err)
	ctx := testCtx(t)
	id := idIn(p, "giveback", 0)
	var tasks []*core.ActivityTask
	for i := range 5 {
		tasks = append(tasks, &core.ActivityTask{InstanceID: id, ExecutionID: "e1", Name: "Act", TaskID: int64(i)})
	}
	must(t, p.EnqueueActivities(ctx, tasks))
	var mine []*core.ActivityWorkItem
	d := statDelta(p, func() {
		mine, err = p.FetchActivities(ctx, 2, time.Minute)
		must(t, err)
	})
	if len(mine) != 2 || mine[0].Task.TaskID != 0 || mine[1].Task.TaskID != 1 {
		t.Fatalf("fetched %d items, want tasks 0 and 1", len(mine))
	}
	if d["queue.get"] != 1 || d["queue.put"] != 1 || d["queue.update"] != 1 {
		t.Fatalf("a fetch of 2 from a pack of 5: %v, want a dequeue, a put of the other 3 and a rewrite", d)
	}
	// The other host takes the three given back, delivered once so far.
	theirs, err := other.FetchActivities(ctx, 32, time.Minute)
	must(t, err)
	if len(theirs) != 3 {
		t.Fatalf("the other host fetched %d items, want the 3 given back", len(theirs))
	}
	for i, it := range theirs {
		if it.Task.TaskID != int64(i+2) || it.DequeueCount != 1 {
			t.Fatalf("given back: task %d, count %d", it.Task.TaskID, it.DequeueCount)
		}
	}
	must(t, other.DeleteActivities(ctx, theirs))
	// The two handed out are still locked, and settle as before.
	if it, err := other.FetchActivity(ctx, time.Minute); err != nil || it != nil {
		t.Fatalf("an item handed out was fetched again: %+v %v", it, err)
	}
	must(t, p.DeleteActivities(ctx, mine))
	if it, err := p.FetchActivity(ctx, time.Minute); err != nil || it != nil {
		t.Fatalf("the work-item queue is not empty: %+v %v", it, err)
	}
}

// failPuts fails the message puts of queues whose name contains queue.
type failPuts struct{ queue atomic.Value }

func (f *failPuts) Do(req *http.Request) (*http.Response, error) {
	q, _ := f.queue.Load().(string)
	if q != "" && req.Method == http.MethodPost && strings.Contains(req.URL.Path, q) && strings.HasSuffix(req.URL.Path, "/messages") {
		return nil, errors.New("fault injected: put refused")
	}
	return http.DefaultClient.Do(req)
}

// TestAzuritePackSendFailures: when a put fails, the call's later messages
// are not sent (the caller sends them all again, in order); a call whose
// context is done sends nothing.
func TestAzuritePackSendFailures(t *testing.T) {
	t.Parallel()
	fail := &failPuts{}
	p := newTestProvider(t, func(o *Options) { o.Transport = fail; o.Retry.MaxRetries = -1 })
	ctx := testCtx(t)
	id := idIn(p, "failing", 1)
	var msgs []*core.Message
	for i := range 40 {
		msgs = append(msgs, eventMessage(id, fmt.Sprintf("e%02d", i), nil))
	}
	fail.queue.Store(p.controlQueueName(1))
	if err := p.SendMessages(ctx, msgs); err == nil {
		t.Fatal("SendMessages succeeded although its first put failed")
	}
	fail.queue.Store("")
	expectEmpty(t, p, 1) // the second pack was not put after the first failed

	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.SendMessages(done, msgs[:1]); !errors.Is(err, context.Canceled) {
		t.Fatalf("SendMessages with a cancelled context: %v", err)
	}
	expectEmpty(t, p, 1)
}

// holdFirstPut holds the first message put on one queue until released.
type holdFirstPut struct {
	queue   string
	first   atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

func (h *holdFirstPut) Do(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/"+h.queue+"/messages") && h.first.CompareAndSwap(false, true) {
		close(h.arrived)
		<-h.release
	}
	return http.DefaultClient.Do(req)
}

// TestAzuritePackHungPutHoldsNoOtherSend: a put that hangs (as on a
// blackholed connection, until its try timeout) does not hold back the
// other messages for the partition.
func TestAzuritePackHungPutHoldsNoOtherSend(t *testing.T) {
	t.Parallel()
	hold := &holdFirstPut{arrived: make(chan struct{}), release: make(chan struct{})}
	p := newTestProvider(t, func(o *Options) { o.Transport = hold })
	hold.queue = p.controlQueueName(3)
	ctx := testCtx(t)
	id := idIn(p, "hung", 3)
	first := make(chan error, 1)
	go func() { first <- p.SendMessages(ctx, []*core.Message{eventMessage(id, "hung", nil)}) }()
	<-hold.arrived
	for i := range 20 {
		must(t, p.SendMessages(ctx, []*core.Message{eventMessage(id, fmt.Sprintf("e%d", i), nil)}))
	}
	select {
	case err := <-first:
		t.Fatalf("the held send returned: %v", err)
	default:
	}
	close(hold.release)
	must(t, <-first)
}
