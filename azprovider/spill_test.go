package azprovider

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

func TestEntityLimits(t *testing.T) {
	ok := newEntity("p00", "I|x")
	ok.bin("B", make([]byte, maxBinaryProp))
	ok.str("S", strings.Repeat("a", maxStringPropUTF16))
	if err := ok.check(); err != nil {
		t.Fatalf("entity at the limits: %v", err)
	}
	cases := map[string]func(e *entity){
		"binary over 64 KiB":  func(e *entity) { e.bin("B", make([]byte, maxBinaryProp+1)) },
		"string over 32K":     func(e *entity) { e.str("S", strings.Repeat("é", maxStringPropUTF16+1)) },
		"string of surrogate": func(e *entity) { e.str("S", strings.Repeat("😀", maxStringPropUTF16/2+1)) },
		"253 properties": func(e *entity) {
			for i := range 253 {
				e.boolean(fmt.Sprintf("P%d", i), true)
			}
		},
		"over 1 MiB": func(e *entity) {
			for i := range 17 {
				e.bin(fmt.Sprintf("B%d", i), make([]byte, maxBinaryProp))
			}
		},
		"long property name": func(e *entity) { e.boolean(strings.Repeat("n", 256), true) },
	}
	for name, f := range cases {
		e := newEntity("p00", "I|x")
		f(e)
		if err := e.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := newEntity("p00", "I|a/b").check(); err == nil {
		t.Error("a key with / was accepted")
	}
	if err := newEntity("p00", "I|"+strings.Repeat("x", 511)).check(); err == nil {
		t.Error("a key of 513 characters was accepted")
	}
}

func rowOf(t *testing.T, p *Provider, id string) row {
	t.Helper()
	r, err := p.readInstanceRow(testCtx(t), p.PartitionOf(id), id)
	must(t, err)
	return r
}

func TestAzuriteSpilledPayloads(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "payloads", 0)
	ep := newInstanceEpisode(id, testTime)
	ep.State.Input = bytes.Repeat([]byte("i"), 64<<10)       // 64 KiB: inline
	ep.State.Output = bytes.Repeat([]byte("o"), 64<<10+1)    // 64 KiB + 1: blob
	ep.State.CustomStatus = bytes.Repeat([]byte("c"), 1<<20) // 1 MiB: blob
	ep.State.Failure = &core.Failure{Kind: core.KindApplication, Message: "boom", Stack: strings.Repeat("frame\n", 20000)}
	res := commitOne(t, p, ep)
	must(t, res.Err)
	r := rowOf(t, p, id)
	if r.has("InputBlob") || !r.has("OutputBlob") || !r.has("CustomStatusBlob") || !r.has("FailureBlob") || !r.has("Input") {
		t.Fatalf("spill decisions wrong: input inline %v, output blob %v", r.has("Input"), r.has("OutputBlob"))
	}
	snap := checkSnapshot(t, p, ep, res.Token, 2)

	// An unchanged payload keeps its blob: no upload.
	before := p.Stats()["blob.put"]
	ep2 := nextEpisode(snap.State, snap.Token, 2, activityEvent(1, "A", nil))
	res2 := commitOne(t, p, ep2)
	must(t, res2.Err)
	if n := p.Stats()["blob.put"] - before; n != 0 {
		t.Errorf("an unchanged episode wrote %d blobs", n)
	}
	// A changed one gets a new blob; the old one is deleted after the commit.
	oldBlob := r.str("CustomStatusBlob")
	ep3 := nextEpisode(ep2.State, res2.Token, 3, activityEvent(2, "B", nil))
	ep3.State.CustomStatus = bytes.Repeat([]byte("d"), 1<<20)
	res3 := commitOne(t, p, ep3)
	must(t, res3.Err)
	checkSnapshot(t, p, ep3, res3.Token, 4)
	if _, err := p.getBlob(ctx, oldBlob); !errorsIsNotFound(err) {
		t.Errorf("the replaced custom status blob survived: %v", err)
	}
	// A conflicting commit leaves no blob behind.
	stale := nextEpisode(ep2.State, res2.Token, 3, activityEvent(2, "C", nil))
	stale.State.CustomStatus = bytes.Repeat([]byte("e"), 1<<20)
	if r := commitOne(t, p, stale); !errors.Is(r.Err, core.ErrConflict) {
		t.Fatalf("stale: %+v", r)
	}
	blobs := listBlobs(t, p, instanceBlobPrefix(id))
	if len(blobs) != 3 { // output, custom status, failure
		t.Errorf("blobs of the instance: %v", blobs)
	}

	// Over the limit: refused.
	small := newTestProvider(t, func(o *Options) { o.MaxPayloadBytes = 1000 })
	big := newInstanceEpisode(idIn(small, "big", 0), testTime)
	big.State.Input = make([]byte, 1001)
	if r := commitOne(t, small, big); !errors.Is(r.Err, core.ErrPayloadTooLarge) {
		t.Fatalf("payload over the limit: %+v", r)
	}
}

func listBlobs(t *testing.T, p *Provider, prefix string) []string {
	t.Helper()
	var names []string
	pager := p.payloads.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(testCtx(t))
		must(t, err)
		for _, b := range page.Segment.BlobItems {
			if strings.HasPrefix(*b.Name, prefix) {
				names = append(names, *b.Name)
			}
		}
	}
	return names
}

func TestAzuriteEpisodeOf5000Activities(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "fanout", 1)
	ep := newInstanceEpisode(id, testTime)
	exec := ep.State.ExecutionID
	var acts []*core.ActivityTask
	for i := range 5000 {
		task := int64(i + 1)
		input := []byte(fmt.Sprintf(`{"item":%d,"sku":"SKU-%06d"}`, i, i))
		ep.History = append(ep.History, &core.Event{Seq: int64(len(ep.History)), Kind: core.EventActivityScheduled, TaskID: task, Name: "Process", Data: input, Time: testTime})
		acts = append(acts, &core.ActivityTask{Partition: 1, InstanceID: id, ExecutionID: exec, TaskID: task, Name: "Process", Input: input, ScheduledAt: testTime})
	}
	ep.ActivitiesAdded, ep.PendingActivities = acts, acts
	ep.State.HistoryEvents = len(ep.History)
	before := p.Stats()
	start := time.Now()
	res := commitOne(t, p, ep)
	must(t, res.Err)
	after := p.Stats()
	if n := after["table.batch"] - before["table.batch"]; n != 1 {
		t.Errorf("the episode took %d transactions", n)
	}
	t.Logf("5,000 activities: one transaction in %v, %d blobs written", time.Since(start), after["blob.put"]-before["blob.put"])
	snap := checkSnapshot(t, p, ep, res.Token, 5002)
	st, err := p.OpenPartition(ctx, 1)
	must(t, err)
	if len(st.Activities) != 5000 {
		t.Fatalf("%d activities pending", len(st.Activities))
	}
	for i, a := range st.Activities {
		if a.TaskID != acts[i].TaskID || string(a.Input) != string(acts[i].Input) {
			t.Fatalf("activity %d: %+v", i, a)
		}
	}
	// Half complete.
	var done []*core.Event
	for _, a := range acts[:2500] {
		done = append(done, &core.Event{Kind: core.EventActivityCompleted, TaskID: a.TaskID, Data: []byte(`"ok"`)})
	}
	ep2 := nextEpisode(snap.State, snap.Token, 5002, done...)
	ep2.ActivitiesRemoved, ep2.PendingActivities = acts[:2500], acts[2500:]
	must(t, commitOne(t, p, ep2).Err)
	st, err = p.OpenPartition(ctx, 1)
	must(t, err)
	if len(st.Activities) != 2500 || st.Activities[0].TaskID != 2501 {
		t.Fatalf("%d activities pending after half completed", len(st.Activities))
	}
}

// TestAzuriteEpisodeOverTransactionLimits: history, timers, activities and
// an outbox each near the 900 KiB inline limit, together over the 4 MiB of a
// transaction, and an event over 1 MiB: the provider spills until it fits.
func TestAzuriteEpisodeOverTransactionLimits(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "limits", 2)
	ep := newInstanceEpisode(id, testTime)
	exec := ep.State.ExecutionID
	jsonString := func(n int) []byte { return []byte(`"` + strings.Repeat("h", n) + `"`) }
	ep.History = append(ep.History,
		&core.Event{Seq: 2, Kind: core.EventEventRaised, Name: "big", Data: jsonString(850 << 10)},
		&core.Event{Seq: 3, Kind: core.EventEventRaised, Name: "huge", Data: jsonString(3 << 20)})
	for i := range 11000 {
		ep.PendingTimers = append(ep.PendingTimers, core.TimerRow{InstanceID: id, ExecutionID: exec, TaskID: int64(i), FireAt: testTime.Add(time.Duration(i) * time.Second)})
		ep.PendingActivities = append(ep.PendingActivities, &core.ActivityTask{Partition: 2, InstanceID: id, ExecutionID: exec, TaskID: int64(100000 + i), Name: "N", ScheduledAt: testTime})
	}
	ep.TimersAdded, ep.ActivitiesAdded = ep.PendingTimers, ep.PendingActivities
	ep.OutboxID = "u"
	ep.Outbox = []*core.Message{eventMessage(idIn(p, "to", 0), "big", jsonString(850<<10))}
	res := commitOne(t, p, ep)
	must(t, res.Err)
	checkSnapshot(t, p, ep, res.Token, 4)
	st, err := p.OpenPartition(ctx, 2)
	must(t, err)
	if len(st.Timers) != 11000 || len(st.Activities) != 11000 || len(st.Outbox) != 1 || !sameData(st.Outbox[0].Messages[0].Event.Data, ep.Outbox[0].Event.Data) {
		t.Fatalf("pending work: %d timers, %d activities, %d outbox units", len(st.Timers), len(st.Activities), len(st.Outbox))
	}
	if len(listBlobs(t, p, instanceBlobPrefix(id))) == 0 {
		t.Fatal("nothing was spilled")
	}
	// Delivering the spilled outbox unit deletes its blob.
	outBlob, _ := p.outboxBlobs.Load("u")
	_, err = p.Commit(ctx, 2, &core.CommitBatch{OutboxDelivered: []core.OutboxRef{st.Outbox[0].Ref}})
	must(t, err)
	if ob, ok := outBlob.(outboxBlob); ok {
		if _, err := p.getBlob(ctx, ob.blob); !errorsIsNotFound(err) {
			t.Errorf("the delivered outbox unit's blob survived: %v", err)
		}
	}
}

// TestAzuriteEpisodeWithMoreChunksThanATransaction: 93 events that each
// need their own chunk row go to one history blob.
func TestAzuriteEpisodeWithMoreChunksThanATransaction(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	id := idIn(p, "chunks", 3)
	ep := newInstanceEpisode(id, testTime)
	data := []byte(`"` + strings.Repeat("z", maxInlineBytes/2+1) + `"`)
	for i := range 93 {
		ep.History = append(ep.History, &core.Event{Seq: int64(2 + i), Kind: core.EventEventRaised, Name: "e", Data: data})
	}
	res := commitOne(t, p, ep)
	must(t, res.Err)
	snap := checkSnapshot(t, p, ep, res.Token, 95)
	if !bytes.Equal(snap.History[94].Data, data) {
		t.Fatal("event data changed")
	}
}

func TestTransactionLimits(t *testing.T) {
	var actions []aztables.TransactionAction
	for i := range 101 {
		b, err := newEntity("p01", fmt.Sprintf("X|%d", i)).marshal()
		must(t, err)
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: b})
	}
	if err := checkTransaction("p01", actions[:100]); err != nil {
		t.Fatalf("100 operations in one partition: %v", err)
	}
	if err := checkTransaction("p01", actions); err == nil {
		t.Error("101 operations accepted")
	}
	other, err := newEntity("p02", "X|0").marshal()
	must(t, err)
	tricky := newEntity("p02", "X|1")
	tricky.str("S", `"PartitionKey":"p01"`)
	trickyB, err := tricky.marshal()
	must(t, err)
	for _, e := range [][]byte{other, trickyB} {
		if err := checkTransaction("p01", append(actions[:3:3], aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: e})); err == nil {
			t.Error("a transaction across partitions was accepted")
		}
	}
}

// jsonOf is a JSON string of exactly n bytes, the kind of payload the default codec writes.
func jsonOf(n int, c byte) []byte {
	b := bytes.Repeat([]byte{c}, n)
	b[0], b[n-1] = '"', '"'
	return b
}

// TestAzuriteSpillsAtTheLimits writes payloads of 64 KiB - 1, 64 KiB,
// 64 KiB + 1 and 1 MiB everywhere a payload goes, and checks where each is
// stored and that it comes back unchanged: instance payloads stay in their
// row up to 64 KiB (a binary property) and go to a blob above; history
// chunks and outbox rows stay in their rows up to 720 KiB; queue messages
// (control and work items) go to a blob above 48 KiB of text, and stay in
// the queue up to it.
func TestAzuriteSpillsAtTheLimits(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	for _, n := range []int{64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := jsonOf(n, 'p')
			id := idIn(p, fmt.Sprintf("spill%d", n), 1)
			ep := newInstanceEpisode(id, testTime)
			ep.State.Input, ep.History[1].Data = data, data
			ep.State.Output = jsonOf(n, 'o')
			ep.History = append(ep.History, &core.Event{Seq: 2, Kind: core.EventEventRaised, Name: "e", Data: jsonOf(n, 'e'), Time: testTime})
			ep.State.HistoryEvents = 3
			ep.OutboxID = "out"
			ep.Outbox = []*core.Message{eventMessage(idIn(p, "receiver", 2), "big", jsonOf(n, 'm'))}
			res := commitOne(t, p, ep)
			must(t, res.Err)

			r := rowOf(t, p, id)
			inline := n <= maxInlinePayload
			if r.has("Input") != inline || r.has("InputBlob") == inline || r.has("Output") != inline {
				t.Errorf("instance row: input inline %v, in a blob %v; want inline %v", r.has("Input"), r.has("InputBlob"), inline)
			}
			hist, err := p.queryRange(ctx, 1, historyPrefix(id, ep.State.ExecutionID), prefixEnd(historyPrefix(id, ep.State.ExecutionID)), "", "")
			must(t, err)
			spilledRows := 0
			for _, h := range hist {
				if h.str("Blob") != "" {
					spilledRows++
				}
			}
			if big := n > maxInlineBytes/2; (spilledRows > 0) != (n > maxInlineBytes) || len(hist) < 1 || (!big && len(hist) != 1) {
				t.Errorf("history: %d rows, %d in blobs", len(hist), spilledRows)
			}
			out, err := p.queryRange(ctx, 1, outboxInstancePrefix(id), prefixEnd(outboxInstancePrefix(id)), "", "")
			must(t, err)
			if len(out) != 1 || (out[0].str("Blob") != "") != (n > maxInlineBytes) {
				t.Errorf("outbox row in a blob: %v", len(out) == 1 && out[0].str("Blob") != "")
			}
			snap := checkSnapshot(t, p, ep, res.Token, 3)
			if !bytes.Equal(snap.History[1].Data, data) || !bytes.Equal(snap.History[2].Data, ep.History[2].Data) {
				t.Error("history data changed")
			}
			st, err := p.OpenPartition(ctx, 1)
			must(t, err)
			var unit *core.OutboxUnit
			for _, u := range st.Outbox {
				if u.Ref.InstanceID == id {
					unit = u
				}
			}
			if unit == nil || len(unit.Messages) != 1 || !bytes.Equal(unit.Messages[0].Event.Data, ep.Outbox[0].Event.Data) {
				t.Error("outbox message lost or changed")
			}

			// Over 48 KiB of text, queue messages and work items go to blobs.
			msg := eventMessage(id, "m", data)
			must(t, p.SendMessages(ctx, []*core.Message{msg}))
			got, err := p.FetchMessages(ctx, 1, 32, time.Minute)
			must(t, err)
			if len(got) != 1 || !bytes.Equal(got[0].Event.Data, data) || got[0].Receipt.(*receipt).blob == "" {
				t.Fatalf("control message: %d fetched", len(got))
			}
			must(t, p.DeleteMessages(ctx, 1, got))
			task := &core.ActivityTask{Partition: 1, InstanceID: id, ExecutionID: "e", TaskID: 1, Name: "A", Input: data, ScheduledAt: testTime}
			must(t, p.EnqueueActivities(ctx, []*core.ActivityTask{task}))
			item, err := p.FetchActivity(ctx, time.Minute)
			must(t, err)
			if item == nil || !bytes.Equal(item.Task.Input, data) || item.Receipt.(*receipt).blob == "" {
				t.Fatal("work item lost or not in a blob")
			}
			must(t, p.DeleteActivity(ctx, item))
		})
	}
	t.Run("queue text at 48 KiB", func(t *testing.T) {
		id := idIn(p, "text", 3)
		// The encoded message is the data plus a fixed overhead: find the
		// data size that makes exactly maxQueueText bytes of text.
		probe := eventMessage(id, "m", jsonOf(100, 'q'))
		b, err := core.EncodeMessage(probe)
		must(t, err)
		fits := maxQueueText - (len(b) - 100)
		for _, tc := range []struct {
			n       int
			spilled bool
		}{{fits, false}, {fits + 1, true}} {
			m := eventMessage(id, "m", jsonOf(tc.n, 'q'))
			m.ID = probe.ID
			b, err := core.EncodeMessage(m)
			must(t, err)
			if len(b) != maxQueueText+tc.n-fits {
				t.Fatalf("text of %d bytes, want %d", len(b), maxQueueText+tc.n-fits)
			}
			must(t, p.SendMessages(ctx, []*core.Message{m}))
			got, err := p.FetchMessages(ctx, 3, 32, time.Minute)
			must(t, err)
			if len(got) != 1 || !bytes.Equal(got[0].Event.Data, m.Event.Data) || (got[0].Receipt.(*receipt).blob != "") != tc.spilled {
				t.Fatalf("message of %d bytes of text: %d fetched, want spilled %v", len(b), len(got), tc.spilled)
			}
			must(t, p.DeleteMessages(ctx, 3, got))
		}
	})
}
