package azprovider

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// seedInstances commits n instances spread over the partitions: id
// "<prefix><i>", status by i%3 (Running, Completed, Failed), name "A" or "B"
// by i%2, created i minutes after testTime.
func seedInstances(t *testing.T, p *Provider, prefix string, n int) map[string]*core.InstanceState {
	t.Helper()
	ctx := testCtx(t)
	byPart := map[int][]*core.Episode{}
	all := map[string]*core.InstanceState{}
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		ep := newInstanceEpisode(id, testTime.Add(time.Duration(i)*time.Minute))
		ep.State.Name = []string{"A", "B"}[i%2]
		ep.State.Status = []core.Status{core.StatusRunning, core.StatusCompleted, core.StatusFailed}[i%3]
		if ep.State.Status.IsTerminal() {
			ep.State.CompletedAt = ep.State.CreatedAt.Add(time.Second)
		}
		byPart[p.PartitionOf(id)] = append(byPart[p.PartitionOf(id)], ep)
		all[id] = ep.State
	}
	for part, eps := range byPart {
		res, err := p.Commit(ctx, part, &core.CommitBatch{Episodes: eps})
		must(t, err)
		for _, r := range res {
			must(t, r.Err)
		}
	}
	return all
}

// queryAllPages runs a query to the end and returns the ids, failing on duplicates.
func queryAllPages(t *testing.T, p *Provider, q core.InstanceQuery) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		page, err := p.QueryInstances(testCtx(t), q)
		must(t, err)
		if q.PageSize > 0 && len(page.Instances) > q.PageSize {
			t.Fatalf("page of %d instances, page size %d", len(page.Instances), q.PageSize)
		}
		for _, st := range page.Instances {
			if seen[st.InstanceID] {
				t.Fatalf("instance %s listed twice", st.InstanceID)
			}
			seen[st.InstanceID] = true
			ids = append(ids, st.InstanceID)
			if q.WithPayloads != (st.Input != nil) {
				t.Fatalf("payloads: want %v, input %q", q.WithPayloads, st.Input)
			}
		}
		if page.Continuation == "" {
			break
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		q.Continuation = page.Continuation
	}
	sort.Strings(ids)
	return ids
}

func expectIDs(t *testing.T, what string, got []string, all map[string]*core.InstanceState, want func(id string, st *core.InstanceState) bool) {
	t.Helper()
	var exp []string
	for id, st := range all {
		if want(id, st) {
			exp = append(exp, id)
		}
	}
	sort.Strings(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, exp)
	}
}

func TestAzuriteQueryInstances(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	all := seedInstances(t, p, "q/", 30)
	for id, st := range seedInstances(t, p, "other|", 12) {
		all[id] = st
	}
	any := func(string, *core.InstanceState) bool { return true }

	expectIDs(t, "all, page 7", queryAllPages(t, p, core.InstanceQuery{PageSize: 7}), all, any)
	expectIDs(t, "all, default page", queryAllPages(t, p, core.InstanceQuery{}), all, any)
	expectIDs(t, "all, page 1", queryAllPages(t, p, core.InstanceQuery{PageSize: 1}), all, any)
	expectIDs(t, "completed", queryAllPages(t, p, core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted}, PageSize: 4}), all,
		func(_ string, st *core.InstanceState) bool { return st.Status == core.StatusCompleted })
	expectIDs(t, "completed or failed, name B", queryAllPages(t, p, core.InstanceQuery{Statuses: []core.Status{core.StatusFailed, core.StatusCompleted}, Name: "B", PageSize: 5}), all,
		func(_ string, st *core.InstanceState) bool { return st.Status.IsTerminal() && st.Name == "B" })
	from, to := testTime.Add(5*time.Minute), testTime.Add(20*time.Minute)
	expectIDs(t, "created in [5m, 20m)", queryAllPages(t, p, core.InstanceQuery{CreatedFrom: from, CreatedTo: to, PageSize: 6}), all,
		func(_ string, st *core.InstanceState) bool {
			return !st.CreatedAt.Before(from) && st.CreatedAt.Before(to)
		})
	expectIDs(t, "name A", queryAllPages(t, p, core.InstanceQuery{Name: "A", PageSize: 5}), all,
		func(_ string, st *core.InstanceState) bool { return st.Name == "A" })
	expectIDs(t, "prefix q/1", queryAllPages(t, p, core.InstanceQuery{InstanceIDPrefix: "q/1", PageSize: 3, WithPayloads: true}), all,
		func(id string, _ *core.InstanceState) bool { return strings.HasPrefix(id, "q/1") })
	expectIDs(t, "prefix other| running", queryAllPages(t, p, core.InstanceQuery{InstanceIDPrefix: "other|", Statuses: []core.Status{core.StatusRunning}}), all,
		func(id string, st *core.InstanceState) bool {
			return strings.HasPrefix(id, "other|") && st.Status == core.StatusRunning
		})
	expectIDs(t, "no match", queryAllPages(t, p, core.InstanceQuery{InstanceIDPrefix: "zzz"}), all,
		func(string, *core.InstanceState) bool { return false })

	page, err := p.QueryInstances(ctx, core.InstanceQuery{PageSize: 2})
	must(t, err)
	if page.Continuation == "" {
		t.Fatal("no continuation")
	}
	if _, err := p.QueryInstances(ctx, core.InstanceQuery{Continuation: "not a token"}); !errors.Is(err, core.ErrInvalidInput) {
		t.Errorf("malformed continuation: %v", err)
	}
	if _, err := p.QueryInstances(ctx, core.InstanceQuery{Name: "A", Continuation: page.Continuation}); !errors.Is(err, core.ErrInvalidInput) {
		t.Errorf("continuation of another query: %v", err)
	}

	// A status change moves the index row in the same transaction.
	id := "q/0" // Running
	snap, err := p.LoadInstance(ctx, p.PartitionOf(id), id)
	must(t, err)
	ep := nextEpisode(snap.State, snap.Token, 2, &core.Event{Kind: core.EventExecutionCompleted, Status: core.StatusCompleted})
	ep.State.Status, ep.State.CompletedAt = core.StatusCompleted, testTime.Add(time.Hour)
	must(t, commitOne(t, p, ep).Err)
	all[id] = ep.State
	expectIDs(t, "running after q/0 completed", queryAllPages(t, p, core.InstanceQuery{Statuses: []core.Status{core.StatusRunning}}), all,
		func(_ string, st *core.InstanceState) bool { return st.Status == core.StatusRunning })
	expectIDs(t, "completed after q/0 completed", queryAllPages(t, p, core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted}}), all,
		func(_ string, st *core.InstanceState) bool { return st.Status == core.StatusCompleted })
}

func TestAzuritePurge(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	all := seedInstances(t, p, "purge-", 24)

	if err := p.PurgeInstance(ctx, "purge-0"); !errors.Is(err, core.ErrNotTerminal) {
		t.Fatalf("purge of a running instance: %v", err)
	}
	if err := p.PurgeInstance(ctx, "nobody"); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("purge of a missing instance: %v", err)
	}
	// A completed instance with a long history, pending rows, an outbox and blobs.
	id := "purge-1"
	part := p.PartitionOf(id)
	snap, err := p.LoadInstance(ctx, part, id)
	must(t, err)
	var evs []*core.Event
	for i := range 150 {
		evs = append(evs, &core.Event{Kind: core.EventEventRaised, Name: fmt.Sprint(i), Data: make([]byte, 8<<10)})
	}
	ep := nextEpisode(snap.State, snap.Token, 2, evs...)
	ep.State.Output = make([]byte, 100<<10)
	ep.OutboxID, ep.Outbox = "unit", []*core.Message{eventMessage("purge-2", "x", nil)}
	ep.PendingTimers = []core.TimerRow{{InstanceID: id, ExecutionID: snap.State.ExecutionID, TaskID: 1, FireAt: testTime}}
	ep.TimersAdded = ep.PendingTimers
	must(t, commitOne(t, p, ep).Err)
	if len(listBlobs(t, p, instanceBlobPrefix(id))) == 0 {
		t.Fatal("no blob to purge")
	}
	must(t, p.PurgeInstance(ctx, id))
	if _, err := p.GetInstance(ctx, id, false); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("purged instance still there: %v", err)
	}
	rows, err := p.queryRange(ctx, part, "", "", "", "")
	must(t, err)
	for _, r := range rows {
		k := r.rowKey()
		if r.str("InstanceID") == id || strings.HasPrefix(k, historyInstancePrefix(id)) || strings.HasPrefix(k, outboxInstancePrefix(id)) || k == timersKey(id) {
			t.Errorf("row %s left after purge", k)
		}
	}
	if b := listBlobs(t, p, instanceBlobPrefix(id)); len(b) != 0 {
		t.Errorf("blobs left after purge: %v", b)
	}
	delete(all, id)

	// Purge by filter: failed instances named A, then every terminal one.
	n, err := p.PurgeInstances(ctx, core.InstanceQuery{Statuses: []core.Status{core.StatusFailed, core.StatusRunning}, Name: "A"})
	must(t, err)
	want := 0
	for i := range 24 {
		if i%3 == 2 && i%2 == 0 {
			want++
		}
	}
	if n != want {
		t.Errorf("purged %d failed instances named A, want %d", n, want)
	}
	n, err = p.PurgeInstances(ctx, core.InstanceQuery{})
	must(t, err)
	left := queryAllPages(t, p, core.InstanceQuery{})
	expectIDs(t, "left after purging everything terminal", left, all,
		func(_ string, st *core.InstanceState) bool { return !st.Status.IsTerminal() })
	t.Logf("purged %d more", n)
}

func TestAzuriteHosts(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	regs := []core.NameVersion{{Name: "Checkout"}, {Name: "Checkout", Version: "v2"}}
	must(t, p.PublishHost(ctx, core.HostInfo{ID: "host/b#1", StartedAt: testTime, Orchestrations: regs, Partitions: []int{1, 2}}))
	must(t, p.PublishHost(ctx, core.HostInfo{ID: "host-a", StartedAt: testTime, Activities: regs}))
	must(t, p.PublishHost(ctx, core.HostInfo{ID: "old", StartedAt: testTime, LastSeen: time.Now().Add(-time.Hour)}))
	hosts, err := p.ListHosts(ctx, time.Minute)
	must(t, err)
	if len(hosts) != 2 || hosts[0].ID != "host-a" || hosts[1].ID != "host/b#1" || len(hosts[1].Orchestrations) != 2 || !slices.Equal(hosts[1].Partitions, []int{1, 2}) {
		t.Fatalf("hosts %+v", hosts)
	}
	// Publishing again replaces the record.
	must(t, p.PublishHost(ctx, core.HostInfo{ID: "host-a", StartedAt: testTime}))
	hosts, err = p.ListHosts(ctx, 0)
	must(t, err)
	if len(hosts) != 3 || len(hosts[0].Activities) != 0 {
		t.Fatalf("hosts after republish %+v", hosts)
	}
}
