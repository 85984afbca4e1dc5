package azprovider

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

func TestAzuriteWorkItems(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	if item, err := p.FetchActivity(ctx, time.Minute); item != nil || err != nil {
		t.Fatalf("empty queue: %v %v", item, err)
	}
	id := idIn(p, "work", 1)
	small := &core.ActivityTask{Partition: 1, InstanceID: id, ExecutionID: "e1", TaskID: 7, Name: "Charge", Version: "v1", Input: []byte(`{"a":1}`), ScheduledAt: testTime}
	big := &core.ActivityTask{Partition: 1, InstanceID: id, ExecutionID: "e1", TaskID: 8, Name: "Resize", Input: bytes.Repeat([]byte{0xff, 0x00}, 100<<10), ScheduledAt: testTime}
	must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{small, big}))

	got := map[int64]*core.ActivityWorkItem{}
	for range 2 {
		item, err := p.FetchActivity(ctx, 2*time.Second)
		must(t, err)
		if item == nil {
			t.Fatal("work item missing")
		}
		got[item.Task.TaskID] = item
	}
	if item, _ := p.FetchActivity(ctx, time.Minute); item != nil {
		t.Fatal("a locked work item was fetched again")
	}
	a, b := got[7], got[8]
	if a == nil || b == nil || a.Task.Name != "Charge" || a.Task.Version != "v1" || string(a.Task.Input) != `{"a":1}` ||
		!bytes.Equal(b.Task.Input, big.Input) || a.DequeueCount != 1 {
		t.Fatalf("work items %+v %+v", a, b)
	}

	// Renew keeps the lock past its first expiry; a stale receipt has lost it.
	oldPop := a.Receipt.(*receipt).popReceipt()
	must(t, p.RenewActivity(ctx, a, time.Minute))
	if a.Receipt.(*receipt).popReceipt() == oldPop {
		t.Fatal("renew did not keep the new pop receipt")
	}
	stale := &core.ActivityWorkItem{Task: a.Task, Receipt: &receipt{queue: p.work, queueName: "w", id: a.Receipt.(*receipt).id, text: "x", pop: oldPop}}
	if err := p.RenewActivity(ctx, stale, time.Minute); !errors.Is(err, core.ErrLockLost) {
		t.Fatalf("renew with a stale receipt: %v", err)
	}
	time.Sleep(2200 * time.Millisecond) // b's lock expires, a's was renewed
	again, err := p.FetchActivity(ctx, time.Minute)
	must(t, err)
	if again == nil || again.Task.TaskID != 8 || again.DequeueCount != 2 {
		t.Fatalf("after lock expiry: %+v", again)
	}
	if err := p.RenewActivity(ctx, b, time.Minute); !errors.Is(err, core.ErrLockLost) {
		t.Fatalf("renew after the item was fetched again: %v", err)
	}

	// Complete sends the result durably, then deletes the item.
	result := &core.Message{ID: core.NewID(), InstanceID: id, ExecutionID: "e1",
		Event: &core.Event{Seq: -1, Kind: core.EventActivityCompleted, TaskID: 7, Data: []byte(`"done"`)}}
	must(t, p.CompleteActivity(ctx, a, result))
	msgs, err := p.FetchMessages(ctx, 1, 10, time.Minute)
	must(t, err)
	if len(msgs) != 1 || msgs[0].ID != result.ID {
		t.Fatalf("result message: %d", len(msgs))
	}
	if err := p.CompleteActivity(ctx, a, nil); !errors.Is(err, core.ErrLockLost) { // already deleted
		t.Fatalf("second completion: %v", err)
	}

	// Abandon makes it visible at once; dead-lettering removes it.
	must(t, p.AbandonActivity(ctx, again, 0))
	third, err := p.FetchActivity(ctx, time.Minute)
	must(t, err)
	if third == nil || third.DequeueCount != 3 {
		t.Fatalf("abandoned item: %+v", third)
	}
	must(t, p.DeadLetterActivity(ctx, third, "failed 3 times"))
	if item, _ := p.FetchActivity(ctx, time.Minute); item != nil {
		t.Fatal("dead-lettered item still queued")
	}
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].Activity == nil || !bytes.Equal(page.DeadLetters[0].Activity.Input, big.Input) ||
		page.DeadLetters[0].Partition != -1 || page.DeadLetters[0].InstanceID != id || page.DeadLetters[0].DequeueCount != 3 {
		t.Fatalf("dead letter %+v", page.DeadLetters)
	}
	must(t, p.ReplayDeadLetter(ctx, page.DeadLetters[0].ID))
	back, err := p.FetchActivity(ctx, time.Minute)
	must(t, err)
	if back == nil || !bytes.Equal(back.Task.Input, big.Input) || back.DequeueCount != 1 {
		t.Fatalf("replayed work item: %+v", back)
	}
	must(t, p.CompleteActivity(ctx, back, nil))
	if _, err := p.getBlob(ctx, back.Receipt.(*receipt).blob); !errorsIsNotFound(err) {
		t.Errorf("the spilled work item's blob survived completion: %v", err)
	}
}
