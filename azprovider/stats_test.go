package azprovider

import (
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
	delta := func(f func()) map[string]int64 {
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
