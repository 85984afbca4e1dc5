package azprovider

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/core"
)

// sameData compares payloads: JSON ones by meaning, since the message
// encoding may escape characters (<, >, &, U+2028, U+FFFF) differently.
func sameData(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func eventMessage(id, name string, data []byte) *core.Message {
	return &core.Message{ID: core.NewID(), InstanceID: id,
		Event: &core.Event{Seq: -1, Kind: core.EventEventRaised, Name: name, Data: data, Time: testTime}}
}

// TestAzuriteQueueTextRoundTrip measures what the queue service does to
// message text: the SDK sends it as XML without base64.
func TestAzuriteQueueTextRoundTrip(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	q := p.control[0]

	// Raw text: control characters and U+FFFF do not survive the XML.
	raw := "ctl:\x01\x02 ffff:\uFFFF xml:<&>\"' unicode:é漢😀"
	_, err := q.EnqueueMessage(ctx, raw, nil)
	must(t, err)
	resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: ptr(int32(1))})
	must(t, err)
	got := *resp.Messages[0].MessageText
	if got == raw {
		t.Errorf("raw text with control characters survived; the JSON escaping is not needed any more")
	}
	if !strings.Contains(got, "xml:<&>\"' unicode:é漢😀") {
		t.Errorf("XML-special or unicode characters did not survive: %q", got)
	}
	t.Logf("raw text %q came back as %q", raw, got)
	_, err = q.DeleteMessage(ctx, *resp.Messages[0].MessageID, *resp.Messages[0].PopReceipt, nil)
	must(t, err)

	// Encoded messages survive: JSON escapes control characters, xmlSafe U+FFFE/U+FFFF.
	id := idIn(p, "text<&>\"'é漢😀\uFFFF", 0)
	evil := "<&>\"'\x00\x01\x1f\x7f\u0085\u2028\uFFFE\uFFFF é 漢字 😀 ]]> &amp;"
	msgs := []*core.Message{
		eventMessage(id, evil, []byte(`{"s":"`+strings.ReplaceAll(evil, "\x00", `\u0000`)+`"}`)), // JSON payload, kept raw
		eventMessage(id, "binary", []byte(evil)),                                                 // not JSON: base64 inside the JSON
	}
	msgs[0].Event.Data = []byte(`{"s":"<&>\"'\u0000\u0001 \u2028` + "\uFFFE\uFFFF é 漢字 😀" + `"}`)
	must(t, p.SendMessages(ctx, msgs))
	fetched, err := p.FetchMessages(ctx, 0, 10, time.Minute)
	must(t, err)
	if len(fetched) != 2 {
		t.Fatalf("fetched %d messages", len(fetched))
	}
	for i, m := range fetched {
		want := msgs[i]
		if m.ID != want.ID || m.InstanceID != want.InstanceID || m.Event.Name != want.Event.Name || !sameData(m.Event.Data, want.Event.Data) {
			t.Errorf("message %d changed:\n got %q %q %q\nwant %q %q %q", i, m.InstanceID, m.Event.Name, m.Event.Data, want.InstanceID, want.Event.Name, want.Event.Data)
		}
	}
	must(t, p.DeleteMessages(ctx, 0, fetched))
}

func TestAzuriteMessageLocks(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "locks", 1)
	var sent []*core.Message
	for range 3 {
		sent = append(sent, eventMessage(id, "e", []byte(`1`)))
	}
	must(t, p.SendMessages(ctx, sent))

	got, err := p.FetchMessages(ctx, 1, 10, time.Minute)
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("fetched %d", len(got))
	}
	for i, m := range got {
		if m.ID != sent[i].ID || m.DequeueCount != 1 || m.Receipt == nil {
			t.Fatalf("message %d: id %s count %d receipt %v (order or count wrong)", i, m.ID, m.DequeueCount, m.Receipt)
		}
	}
	if again, err := p.FetchMessages(ctx, 1, 10, time.Minute); err != nil || len(again) != 0 {
		t.Fatalf("locked messages fetched again: %d %v", len(again), err)
	}
	// Abandon one with no delay: it comes back with a higher count.
	must(t, p.AbandonMessages(ctx, 1, got[:1], 0))
	back, err := p.FetchMessages(ctx, 1, 10, time.Minute)
	must(t, err)
	if len(back) != 1 || back[0].ID != sent[0].ID || back[0].DequeueCount != 2 {
		t.Fatalf("abandoned message: %d messages", len(back))
	}
	// The abandoned message's old receipt is stale: abandon and delete ignore it.
	must(t, p.AbandonMessages(ctx, 1, got[:1], 0))
	must(t, p.DeleteMessages(ctx, 1, got[:1]))
	must(t, p.DeleteMessages(ctx, 1, append(got[1:], back...)))
	must(t, p.DeleteMessages(ctx, 1, append(got[1:], back...))) // already gone
	// Messages without a receipt are ignored.
	must(t, p.DeleteMessages(ctx, 1, sent))
	must(t, p.AbandonMessages(ctx, 1, sent, 0))
	if rest, err := p.FetchMessages(ctx, 1, 10, time.Minute); err != nil || len(rest) != 0 {
		t.Fatalf("queue not empty: %d %v", len(rest), err)
	}

	// An expired lock delivers the message again.
	must(t, p.SendMessages(ctx, sent[:1]))
	first, err := p.FetchMessages(ctx, 1, 1, time.Second)
	must(t, err)
	time.Sleep(1500 * time.Millisecond)
	second, err := p.FetchMessages(ctx, 1, 1, time.Minute)
	must(t, err)
	if len(first) != 1 || len(second) != 1 || second[0].DequeueCount != 2 {
		t.Fatalf("lock expiry: %d then %d messages", len(first), len(second))
	}
	must(t, p.DeleteMessages(ctx, 1, first)) // stale: ignored, the message stays
	must(t, p.AbandonMessages(ctx, 1, second, 0))
	third, err := p.FetchMessages(ctx, 1, 1, time.Minute)
	must(t, err)
	if len(third) != 1 {
		t.Fatal("a delete with a stale receipt removed the message")
	}
	must(t, p.DeleteMessages(ctx, 1, third))
}

func TestAzuriteDelayedAndLargeMessages(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "delayed", 2)
	delayed := eventMessage(id, "later", nil)
	delayed.VisibleAt = time.Now().Add(5 * time.Second) // long enough to outlast the upload of big under load
	far := eventMessage(id, "next week", nil)
	far.VisibleAt = time.Now().Add(8 * 24 * time.Hour)
	big := eventMessage(id, "big", bytes.Repeat([]byte("x"), 200<<10))
	must(t, p.SendMessages(ctx, []*core.Message{delayed, far, big}))

	got, err := p.FetchMessages(ctx, 2, 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != big.ID || !bytes.Equal(got[0].Event.Data, big.Event.Data) {
		t.Fatalf("first fetch: %d messages", len(got))
	}
	blob := got[0].Receipt.(*receipt).blob
	if blob == "" {
		t.Fatal("a 200 KiB message was not spilled to a blob")
	}
	must(t, p.DeleteMessages(ctx, 2, got))
	if _, err := p.getBlob(ctx, blob); !errorsIsNotFound(err) {
		t.Errorf("the spilled blob survived the delete: %v", err)
	}
	time.Sleep(time.Until(delayed.VisibleAt.Add(1100 * time.Millisecond))) // the queue delays in whole seconds
	got, err = p.FetchMessages(ctx, 2, 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != delayed.ID {
		t.Fatalf("after the delay: %d messages", len(got))
	}
	must(t, p.DeleteMessages(ctx, 2, got))
	// The message due next week was hidden again for up to 7 days.
	props, err := p.control[2].GetProperties(ctx, nil)
	must(t, err)
	if props.ApproximateMessagesCount == nil || *props.ApproximateMessagesCount != 1 {
		t.Fatalf("queue should still hold the far message")
	}

	// Such a message, once visible before it is due, is hidden again; that
	// dequeue does not count as a delivery.
	soon := eventMessage(id, "soon", nil)
	body, err := core.EncodeMessage(soon)
	must(t, err)
	text, _, err := p.queueText(ctx, body, "m", time.Now().Add(1500*time.Millisecond))
	must(t, err)
	must(t, p.enqueue(ctx, p.control[2], "control", text, 0))
	got, err = p.FetchMessages(ctx, 2, 10, time.Minute)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("a message not due yet was delivered")
	}
	time.Sleep(2100 * time.Millisecond)
	got, err = p.FetchMessages(ctx, 2, 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != soon.ID || got[0].DequeueCount != 1 {
		t.Fatalf("due message: %d messages", len(got))
	}
}

func TestAzuriteUndecodableMessagesAreDeadLettered(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "poison", 3)
	good := eventMessage(id, "fine", nil)
	must(t, p.SendMessages(ctx, []*core.Message{good}))
	_, err := p.control[3].EnqueueMessage(ctx, `{"v":1,"garbage":true}`, nil)
	must(t, err)
	_, err = p.control[3].EnqueueMessage(ctx, `{"$ref":"m/does-not-exist"}`, nil)
	must(t, err)

	got, err := p.FetchMessages(ctx, 3, 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != good.ID {
		t.Fatalf("fetched %d messages, want only the good one", len(got))
	}
	page, err := p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(page.DeadLetters))
	}
	for _, dl := range page.DeadLetters {
		if !strings.HasPrefix(dl.Reason, "undecodable:") || dl.Raw == nil || dl.Partition != 3 || dl.DequeueCount != 1 {
			t.Errorf("dead letter %+v", dl)
		}
	}
	// Dead-letter the good message too, then replay it.
	must(t, p.DeadLetterMessages(ctx, 3, got, "poison: failed 10 times"))
	page, err = p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 3 {
		t.Fatalf("%d dead letters", len(page.DeadLetters))
	}
	last := page.DeadLetters[2]
	if last.Message == nil || last.Message.ID != good.ID || last.InstanceID != id || last.Reason != "poison: failed 10 times" {
		t.Fatalf("dead letter of the good message: %+v", last)
	}
	must(t, p.ReplayDeadLetter(ctx, last.ID))
	got, err = p.FetchMessages(ctx, 3, 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != good.ID || got[0].DequeueCount != 1 {
		t.Fatalf("replayed message: %d", len(got))
	}
	if err := p.ReplayDeadLetter(ctx, last.ID); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("replay of a replayed dead letter: %v", err)
	}
	for _, dl := range page.DeadLetters[:2] {
		must(t, p.DiscardDeadLetter(ctx, dl.ID))
	}
	if err := p.DiscardDeadLetter(ctx, page.DeadLetters[0].ID); !errors.Is(err, core.ErrInvalidInput) || !errors.Is(err, ErrDeadLetterNotFound) {
		t.Fatalf("discard of a discarded dead letter: %v", err)
	}
	page, err = p.ListDeadLetters(ctx, 10, "")
	must(t, err)
	if len(page.DeadLetters) != 0 {
		t.Fatalf("%d dead letters left", len(page.DeadLetters))
	}
}
