package azprovider

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azdurable/azdurable/core"
)

func activityEvent(task int64, name string, input []byte) *core.Event {
	return &core.Event{Kind: core.EventActivityScheduled, TaskID: task, Name: name, Data: input, Time: testTime}
}

func checkSnapshot(t *testing.T, p *Provider, ep *core.Episode, token core.CommitToken, wantEvents int) *core.InstanceSnapshot {
	t.Helper()
	snap, err := p.LoadInstance(testCtx(t), p.PartitionOf(ep.InstanceID), ep.InstanceID)
	if err != nil {
		t.Fatalf("LoadInstance: %v", err)
	}
	if snap.Token != token {
		t.Errorf("token %q, want %q", snap.Token, token)
	}
	want := *ep.State
	want.CreatedAt, want.UpdatedAt, want.CompletedAt = storedTime(want.CreatedAt), storedTime(want.UpdatedAt), storedTime(want.CompletedAt)
	if !reflect.DeepEqual(snap.State, &want) {
		t.Errorf("state\n got %+v\nwant %+v", snap.State, &want)
	}
	if len(snap.History) != wantEvents {
		t.Fatalf("history has %d events, want %d", len(snap.History), wantEvents)
	}
	for i, ev := range snap.History {
		if ev.Seq != int64(i) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
	return snap
}

func TestAzuriteCommitAndLoad(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := "orders/2024|0001 é😀"
	part := p.PartitionOf(id)
	if _, err := p.LoadInstance(ctx, part, id); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("LoadInstance of a missing instance: %v", err)
	}
	if _, err := p.LoadInstance(ctx, (part+1)%p.n, id); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("LoadInstance in the wrong partition: %v", err)
	}

	ep := newInstanceEpisode(id, testTime)
	ep.State.Parent = &core.ParentRef{InstanceID: "parent", ExecutionID: "pe", TaskID: 3, Name: "P"}
	ep.State.CustomStatus = []byte(`{"step":1}`)
	res := commitOne(t, p, ep)
	if res.Err != nil || res.Token == "" {
		t.Fatalf("first commit: %+v", res)
	}
	snap := checkSnapshot(t, p, ep, res.Token, 2)
	if string(snap.History[1].Data) != `"in"` || snap.History[1].ExecutionID != ep.State.ExecutionID {
		t.Fatalf("history event 1: %+v", snap.History[1])
	}

	// A second episode continues with the token.
	ep2 := nextEpisode(snap.State, snap.Token, 2, activityEvent(1, "A", []byte(`"x"`)))
	res2 := commitOne(t, p, ep2)
	if res2.Err != nil || res2.Token == res.Token {
		t.Fatalf("second commit: %+v", res2)
	}
	checkSnapshot(t, p, ep2, res2.Token, 3)

	// Stale token, and a "new" instance that exists: conflicts, nothing written.
	stale := nextEpisode(snap.State, snap.Token, 2, activityEvent(1, "B", nil))
	if r := commitOne(t, p, stale); !errors.Is(r.Err, core.ErrConflict) {
		t.Fatalf("stale token: %+v", r)
	}
	p.meta.Purge() // the same, without the cache: the token is checked by a read
	if r := commitOne(t, p, stale); !errors.Is(r.Err, core.ErrConflict) {
		t.Fatalf("stale token without cache: %+v", r)
	}
	if r := commitOne(t, p, newInstanceEpisode(id, testTime)); !errors.Is(r.Err, core.ErrConflict) {
		t.Fatalf("new instance that exists: %+v", r)
	}
	checkSnapshot(t, p, ep2, res2.Token, 3)

	// Reads for clients.
	st, err := p.GetInstance(ctx, id, false)
	must(t, err)
	if st.Input != nil || st.CustomStatus != nil || st.Name != "Orch" || st.Status != core.StatusRunning {
		t.Fatalf("GetInstance without payloads: %+v", st)
	}
	st, err = p.GetInstance(ctx, id, true)
	must(t, err)
	if string(st.Input) != `"in"` || string(st.CustomStatus) != `{"step":1}` {
		t.Fatalf("GetInstance with payloads: %+v", st)
	}
	h, err := p.GetHistory(ctx, id)
	must(t, err)
	if len(h) != 3 || h[2].Name != "A" {
		t.Fatalf("GetHistory: %d events", len(h))
	}
	if _, err := p.GetInstance(ctx, "nobody", false); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("GetInstance of a missing instance: %v", err)
	}
	if _, err := p.GetHistory(ctx, "nobody"); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("GetHistory of a missing instance: %v", err)
	}

	// Invalid episodes are refused without writing.
	bad := nextEpisode(st, res2.Token, 7, activityEvent(2, "gap", nil))
	if r := commitOne(t, p, bad); !errors.Is(r.Err, core.ErrInvalidInput) {
		t.Fatalf("history gap: %+v", r)
	}
}

func TestAzuriteGroupCommitWithConflict(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	const n = 6
	var eps []*core.Episode
	for i := range n {
		eps = append(eps, newInstanceEpisode(idIn(p, "group"+string(rune('a'+i)), 2), testTime))
	}
	before := p.Stats()["table.batch"]
	res, err := p.Commit(ctx, 2, &core.CommitBatch{Episodes: eps})
	must(t, err)
	if got := p.Stats()["table.batch"] - before; got != 1 {
		t.Errorf("group commit of %d new instances took %d transactions, want 1", n, got)
	}
	var next []*core.Episode
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("episode %d: %v", i, r.Err)
		}
		next = append(next, nextEpisode(eps[i].State, r.Token, 2, activityEvent(1, "A", nil)))
	}
	// Episode 3 lost a race: its token is stale.
	winner := nextEpisode(eps[3].State, res[3].Token, 2, activityEvent(1, "Winner", nil))
	if r := commitOne(t, p, winner); r.Err != nil {
		t.Fatal(r.Err)
	}
	// And a new instance that already exists.
	dup := newInstanceEpisode(eps[5].InstanceID, testTime)
	next[5] = dup

	before = p.Stats()["table.batch"]
	res2, err := p.Commit(ctx, 2, &core.CommitBatch{Episodes: next})
	must(t, err)
	if got := p.Stats()["table.batch"] - before; got != 3 {
		t.Errorf("group commit with two conflicts took %d transactions, want 3", got)
	}
	for i, r := range res2 {
		conflict := i == 3 || i == 5
		if conflict != errors.Is(r.Err, core.ErrConflict) || (!conflict && r.Err != nil) {
			t.Errorf("episode %d: %+v", i, r)
		}
	}
	for i := range next {
		h, err := p.GetHistory(ctx, next[i].InstanceID)
		must(t, err)
		switch i {
		case 3:
			if len(h) != 3 || h[2].Name != "Winner" {
				t.Errorf("the conflicting episode was written")
			}
		case 5:
			if len(h) != 2 {
				t.Errorf("the duplicate start was written")
			}
		default:
			if len(h) != 3 || h[2].Name != "A" {
				t.Errorf("episode %d not written", i)
			}
		}
	}
}

// lossyTransport forwards requests but, once armed, drops the response of
// the next transaction after the service applied it, so the SDK retries.
type lossyTransport struct {
	armed atomic.Bool
	hits  atomic.Int32
}

func (l *lossyTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/$batch") && l.armed.CompareAndSwap(true, false) {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		l.hits.Add(1)
		return nil, io.ErrUnexpectedEOF
	}
	return resp, err
}

var _ policy.Transporter = (*lossyTransport)(nil)

func TestAzuriteCommitWhoseResponseWasLost(t *testing.T) {
	t.Parallel()
	lossy := &lossyTransport{}
	p := newTestProvider(t, func(o *Options) {
		o.Transport = lossy
		o.Retry.RetryDelay = 10 * time.Millisecond
	})
	ctx := testCtx(t)
	a, b := newInstanceEpisode(idIn(p, "lost-a", 0), testTime), newInstanceEpisode(idIn(p, "lost-b", 0), testTime)
	lossy.armed.Store(true)
	res, err := p.Commit(ctx, 0, &core.CommitBatch{Episodes: []*core.Episode{a, b}})
	must(t, err)
	if lossy.hits.Load() != 1 {
		t.Fatal("the response was not dropped")
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("episode %d: the retried commit was reported as %v", i, r.Err)
		}
	}
	snap := checkSnapshot(t, p, a, res[0].Token, 2)
	checkSnapshot(t, p, b, res[1].Token, 2)

	// The same with an update: the retry sees 412 and recognises its own commit.
	lossy.armed.Store(true)
	ep := nextEpisode(snap.State, snap.Token, 2, activityEvent(1, "A", nil))
	r := commitOne(t, p, ep)
	if r.Err != nil {
		t.Fatalf("retried update: %v", r.Err)
	}
	checkSnapshot(t, p, ep, r.Token, 3)
}

func TestAzuriteContinueAsNewDropsOldHistory(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	ep := newInstanceEpisode(idIn(p, "can", 1), testTime)
	ep.History = append(ep.History, &core.Event{Seq: 2, Kind: core.EventTimerCreated, TaskID: 1, FireAt: testTime.Add(time.Hour)})
	ep.TimersAdded = []core.TimerRow{{InstanceID: ep.InstanceID, ExecutionID: ep.State.ExecutionID, TaskID: 1, FireAt: testTime.Add(time.Hour)}}
	ep.PendingTimers = ep.TimersAdded
	res := commitOne(t, p, ep)
	must(t, res.Err)
	oldExec := ep.State.ExecutionID

	st := *ep.State
	st.ExecutionID = core.NewID()
	st.Input = []byte(`"again"`)
	can := &core.Episode{InstanceID: ep.InstanceID, Token: res.Token, State: &st, NewExecution: true,
		TimersRemoved: ep.PendingTimers,
		History: []*core.Event{{Seq: 0, Kind: core.EventEpisodeStarted, Time: testTime},
			{Seq: 1, Kind: core.EventExecutionStarted, Name: "Orch", ExecutionID: st.ExecutionID, Data: st.Input}}}
	r := commitOne(t, p, can)
	must(t, r.Err)
	checkSnapshot(t, p, can, r.Token, 2)
	rows, err := p.queryRange(ctx, 1, historyPrefix(ep.InstanceID, oldExec), prefixEnd(historyPrefix(ep.InstanceID, oldExec)), "", "")
	must(t, err)
	if len(rows) != 0 {
		t.Errorf("%d history rows of the old execution left", len(rows))
	}
	ps, err := p.OpenPartition(ctx, 1)
	must(t, err)
	if len(ps.Timers) != 0 {
		t.Errorf("the old execution's timer survived: %+v", ps.Timers)
	}
	// Reusing the old execution id is refused.
	again := &core.Episode{InstanceID: ep.InstanceID, Token: r.Token, State: ep.State, NewExecution: true,
		History: []*core.Event{{Seq: 0, Kind: core.EventEpisodeStarted, Time: testTime}}}
	st2 := *ep.State
	st2.ExecutionID = st.ExecutionID
	again.State = &st2
	if rr := commitOne(t, p, again); !errors.Is(rr.Err, core.ErrInvalidInput) {
		t.Fatalf("new execution with the current execution id: %+v", rr)
	}
}

// flakyTransport answers 503 to the first try of every request while
// failing is set, and to every try while broken is set.
type flakyTransport struct {
	failing, broken atomic.Bool
	seen            sync.Map // request id → tried once
	faults          atomic.Int32
}

func (f *flakyTransport) Do(req *http.Request) (*http.Response, error) {
	id := req.Header.Get("x-ms-client-request-id") + req.Method + req.URL.String()
	_, tried := f.seen.LoadOrStore(id, true)
	if f.broken.Load() || (f.failing.Load() && !tried) {
		f.faults.Add(1)
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Server Busy", Header: http.Header{"X-Ms-Error-Code": {"ServerBusy"}},
			Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	}
	return http.DefaultClient.Do(req)
}

func TestAzuriteTransientFaultsAreRetriedInThePipeline(t *testing.T) {
	t.Parallel()
	flaky := &flakyTransport{}
	p := newTestProvider(t, func(o *Options) {
		o.Transport = flaky
		o.Retry = RetryOptions{MaxRetries: 3, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}
	})
	ctx := testCtx(t)
	flaky.failing.Store(true)
	ep := newInstanceEpisode(idIn(p, "flaky", 0), testTime)
	res := commitOne(t, p, ep)
	must(t, res.Err)
	snap, err := p.LoadInstance(ctx, 0, ep.InstanceID)
	must(t, err)
	must(t, p.SendMessages(ctx, []*core.Message{eventMessage(ep.InstanceID, "e", nil)}))
	msgs, err := p.FetchMessages(ctx, 0, 1, time.Minute)
	must(t, err)
	must(t, p.DeleteMessages(ctx, 0, msgs))
	if flaky.faults.Load() < 5 || len(msgs) != 1 || snap.Token != res.Token {
		t.Fatalf("%d faults injected, %d messages", flaky.faults.Load(), len(msgs))
	}
	flaky.broken.Store(true)
	_, err = p.LoadInstance(ctx, 0, ep.InstanceID)
	var se *core.StorageError
	if !errors.As(err, &se) || !se.Transient || se.Status != http.StatusServiceUnavailable || !core.IsRetryable(err) {
		t.Fatalf("persistent 503: %v", err)
	}
	results, err := p.Commit(ctx, 0, &core.CommitBatch{Episodes: []*core.Episode{nextEpisode(snap.State, snap.Token, 2, activityEvent(1, "A", nil))}})
	if err == nil || !core.IsRetryable(err) || results != nil {
		t.Fatalf("commit during a persistent 503: %v %v", results, err)
	}
	flaky.broken.Store(false) // for the cleanup
}
