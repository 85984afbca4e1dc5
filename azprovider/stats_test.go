package azprovider

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

func TestOpKind(t *testing.T) {
	cases := []struct{ service, method, url, want string }{
		{"table", "POST", "http://h/acct/$batch", "table.batch"},
		{"table", "GET", "http://h/acct/hubState(PartitionKey='p00',RowKey='I%7Cx')", "table.read"},
		{"table", "GET", "http://h/acct/hubState()?$filter=x", "table.query"},
		{"table", "PUT", "http://h/acct/hubState(PartitionKey='p00',RowKey='x')", "table.write"},
		{"table", "DELETE", "http://h/acct/hubState(PartitionKey='p00',RowKey='x')", "table.delete"},
		{"table", "POST", "http://h/acct/Tables", "table.create"},
		{"table", "DELETE", "http://h/acct/Tables('hubState')", "table.drop"},
		{"queue", "POST", "http://h/acct/q/messages", "queue.put"},
		{"queue", "GET", "http://h/acct/q/messages?numofmessages=32", "queue.get"},
		{"queue", "GET", "http://h/acct/q/messages?peekonly=true", "queue.peek"},
		{"queue", "PUT", "http://h/acct/q/messages/id?popreceipt=x", "queue.update"},
		{"queue", "DELETE", "http://h/acct/q/messages/id?popreceipt=x", "queue.delete"},
		{"queue", "PUT", "http://h/acct/q", "queue.create"},
		{"blob", "PUT", "http://h/acct/c/b", "blob.put"},
		{"blob", "GET", "http://h/acct/c/b", "blob.get"},
		{"blob", "DELETE", "http://h/acct/c/b", "blob.delete"},
		{"blob", "GET", "http://h/acct/c?restype=container&comp=list", "blob.list"},
		{"blob", "PUT", "http://h/acct/c?restype=container", "blob.container-create"},
		{"blob", "PUT", "http://h/acct/c/b?comp=lease", "blob.lease"},
	}
	for _, c := range cases {
		if got := opKind(c.service, httptest.NewRequest(c.method, c.url, nil)); got != c.want {
			t.Errorf("%s %s %s: %s, want %s", c.service, c.method, c.url, got, c.want)
		}
	}
}

// TestAzuriteOperationCounts measures the storage operations of the hot path.
func TestAzuriteOperationCounts(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	ctx := testCtx(t)
	id := idIn(p, "ops", 0)
	delta := func(f func()) map[string]int64 { return statDelta(p, f) }
	check := func(what string, got map[string]int64, want map[string]int64) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
			return
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", what, got, want)
			}
		}
		t.Logf("%s: %v", what, got)
	}
	var res core.CommitResult
	ep := newInstanceEpisode(id, testTime)
	check("commit of a new instance", delta(func() { res = commitOne(t, p, ep) }), map[string]int64{"table.batch": 1})
	var snap *core.InstanceSnapshot
	check("LoadInstance", delta(func() {
		var err error
		snap, err = p.LoadInstance(ctx, 0, id)
		must(t, err)
	}), map[string]int64{"table.read": 1, "table.query": 1})
	ep2 := nextEpisode(snap.State, snap.Token, 2, activityEvent(1, "A", nil))
	check("commit of the next episode", delta(func() { res = commitOne(t, p, ep2) }), map[string]int64{"table.batch": 1})
	p.meta.Purge()
	ep3 := nextEpisode(ep2.State, res.Token, 3, activityEvent(2, "B", nil))
	check("commit after a cache miss", delta(func() { must(t, commitOne(t, p, ep3).Err) }), map[string]int64{"table.batch": 1, "table.read": 1})
	msg := eventMessage(id, "e", nil)
	var msgs []*core.Message
	check("send, fetch and delete a message", delta(func() {
		must(t, p.SendMessages(ctx, []*core.Message{msg}))
		var err error
		msgs, err = p.FetchMessages(ctx, 0, 32, time.Minute)
		must(t, err)
		must(t, p.DeleteMessages(ctx, 0, msgs))
	}), map[string]int64{"queue.put": 1, "queue.get": 1, "queue.delete": 1})
}

// helloSequence measures one hello sequence of 5 activities end to end on a
// fresh task hub with one runtime: from the client's start to the runtime's
// shutdown, every storage operation of the provider the runtime and its
// client use. The test waits for the result through a second provider over
// the same task hub, so that its polling is not counted. It returns the
// operations by kind and the runtime's counters.
func helloSequence(t *testing.T, offload bool) (map[string]int64, core.RuntimeStats) {
	t.Helper()
	p := newTestProvider(t)
	ctx := testCtx(t)
	observer, err := New(ctx, Options{ConnectionString: p.opts.ConnectionString, TaskHub: p.hub, Partitions: p.n})
	must(t, err)
	reg := core.NewRegistry()
	must(t, core.RegisterActivity(reg, func(_ core.ActivityContext, name string) (string, error) {
		return "Hello, " + name + "!", nil
	}, core.WithName("SayHello")))
	must(t, core.RegisterOrchestration(reg, func(ctx *core.OrchestrationContext, cities []string) ([]string, error) {
		var out []string
		for _, c := range cities {
			s, err := core.CallActivity[string](ctx, "SayHello", c).Await(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}, core.WithName("HelloSequence")))
	// The host record is written when the runtime starts and then every
	// HostPublishInterval: long enough here not to fall into the measure.
	rt, err := core.NewRuntime(core.Options{Provider: p, Registry: reg, OffloadActivities: offload, HostPublishInterval: time.Hour})
	must(t, err)
	must(t, rt.Start(ctx))
	defer func() { _ = rt.Shutdown(ctx) }()
	for len(rt.OwnedPartitions()) < p.n {
		time.Sleep(5 * time.Millisecond)
	}
	for {
		hosts, err := observer.ListHosts(ctx, time.Minute)
		must(t, err)
		if len(hosts) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	before := p.Stats()
	id, err := rt.Client().Start(ctx, "HelloSequence", core.WithInput([]string{"Tokyo", "Seattle", "London", "Cairo", "Lima"}))
	must(t, err)
	var got []string
	st, err := core.NewClient(observer).WaitForCompletion(ctx, id)
	must(t, err)
	must(t, json.Unmarshal(st.Output, &got))
	if st.Status != core.StatusCompleted || len(got) != 5 || got[4] != "Hello, Lima!" {
		t.Fatalf("result %s %q", st.Status, got)
	}
	// Shutting down drains what is still in flight (a last delete) and adds
	// no storage operation of its own.
	must(t, rt.Shutdown(ctx))
	after := p.Stats()
	ops := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			ops[k] = d
		}
	}
	return ops, rt.Stats()
}

// TestAzuriteHelloSequenceBudget checks the storage budget of one hello
// sequence of 5 (issue "Azure Storage provider", DESIGN §5): at most 10
// operations with activities on the owner, at most 32 with every activity
// through the work-item queue, counting the client's start, dequeues,
// commits, sends, deletes and blobs. Only idle polls, dequeues that found
// no message (queue.get-empty), are left out: the provider counts them as
// such when the queue answers with an empty list. A cached instance costs
// no table read per episode.
func TestAzuriteHelloSequenceBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		offload bool
		budget  int64
	}{{"owner", false, 10}, {"offload", true, 32}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ops, rs := helloSequence(t, tc.offload)
			idle := ops[kindEmptyDequeue]
			var total int64
			for k, v := range ops {
				if k != kindEmptyDequeue {
					total += v
				}
			}
			total -= idle
			t.Logf("hello sequence of 5, %s: %d storage operations %v (idle polls left out: %d); runtime %+v", tc.name, total, ops, idle, rs)
			if total > tc.budget {
				t.Errorf("%d storage operations; the budget is %d", total, tc.budget)
			}
			if rs.CacheHits != 5 || rs.CacheMisses != 1 {
				t.Errorf("episodes from the cache: %d hits, %d misses; want 5 and 1", rs.CacheHits, rs.CacheMisses)
			}
			// The first episode does not read either: a start delivered for
			// the first time is taken to be for a new instance.
			if reads := ops["table.read"] + ops["table.query"]; reads != 0 {
				t.Errorf("%d table reads; a cached instance must cost none per episode", reads)
			}
		})
	}
}
