package azurite

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// draws runs n decisions over a fixed sequence of operations and returns the
// kind chosen for each ("" for none).
func draws(t *testing.T, seed uint64, rules []FaultRule, n int) []FaultKind {
	t.Helper()
	// No request reaches the target: only decisions are drawn.
	p, err := StartFaultProxy(ConnectionString(1, 2, 3), FaultProxyOptions{Seed: seed, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ops := Operations()
	out := make([]FaultKind, n)
	for i := range out {
		if r := p.decide(ops[i%len(ops)]); r != nil {
			out[i] = r.Kind
		}
	}
	return out
}

func TestFaultProxyDeterministic(t *testing.T) {
	rules := []FaultRule{
		{Kind: FaultThrottle, Share: 0.05},
		{Ops: []string{"table", "queue.get"}, Kind: FaultServerError, Share: 0.05},
		{Ops: []string{"*"}, Kind: FaultReset, Share: 0.02, Limit: 10},
	}
	const n = 20000
	a, b := draws(t, 42, rules, n), draws(t, 42, rules, n)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed drew different faults")
	}
	if slices.Equal(a, draws(t, 43, rules, n)) {
		t.Fatal("another seed drew the same faults")
	}
	count := map[FaultKind]int{}
	for _, k := range a {
		count[k]++
	}
	// Throttles hit 5% of all requests; 500s 5% of the rest on tables and
	// queue.get; resets stop at their limit.
	if c := count[FaultThrottle]; c < n*4/100 || c > n*6/100 {
		t.Errorf("%d throttles in %d requests, want about 5%%", c, n)
	}
	if c := count[FaultServerError]; c == 0 || c > n*2/100 {
		t.Errorf("%d server errors in %d requests", c, n)
	}
	if c := count[FaultReset]; c != 10 {
		t.Errorf("%d resets, want the limit of 10", c)
	}
}

func TestFaultRuleSelects(t *testing.T) {
	tests := []struct {
		ops  []string
		op   string
		want bool
	}{
		{nil, "blob.lease", true},
		{[]string{"*"}, "table.batch", true},
		{[]string{"table"}, "table.batch", true},
		{[]string{"table"}, "queue.put", false},
		{[]string{"queue.put", "queue.get"}, "queue.get", true},
		{[]string{"queue.put"}, "queue.update", false},
	}
	for _, tt := range tests {
		r := &ruleState{FaultRule: FaultRule{Ops: tt.ops}}
		if got := r.selects(tt.op); got != tt.want {
			t.Errorf("Ops %v selects %s = %v, want %v", tt.ops, tt.op, got, tt.want)
		}
	}
}

func TestOperation(t *testing.T) {
	tests := []struct{ service, method, target, want string }{
		{"table", "POST", "/devstoreaccount1/$batch", "table.batch"},
		{"table", "POST", "/devstoreaccount1/Tables", "table.create"},
		{"table", "DELETE", "/devstoreaccount1/Tables('hubState')", "table.drop"},
		{"table", "GET", "/devstoreaccount1/hubState(PartitionKey='p00',RowKey='I%7Ca')", "table.read"},
		{"table", "GET", "/devstoreaccount1/hubState()?$filter=x", "table.query"},
		{"table", "PUT", "/devstoreaccount1/hubState(PartitionKey='p00',RowKey='a')", "table.write"},
		{"table", "POST", "/devstoreaccount1/hubState", "table.write"},
		{"queue", "POST", "/devstoreaccount1/hub-control-00/messages", "queue.put"},
		{"queue", "GET", "/devstoreaccount1/hub-control-00/messages?numofmessages=32", "queue.get"},
		{"queue", "GET", "/devstoreaccount1/hub-control-00/messages?peekonly=true", "queue.peek"},
		{"queue", "PUT", "/devstoreaccount1/hub-control-00/messages/id?popreceipt=x", "queue.update"},
		{"queue", "DELETE", "/devstoreaccount1/hub-control-00/messages/id?popreceipt=x", "queue.delete"},
		{"queue", "GET", "/devstoreaccount1/hub-control-00?comp=metadata", "queue.props"},
		{"blob", "PUT", "/devstoreaccount1/hub-leases/p00?comp=lease", "blob.lease"},
		{"blob", "GET", "/devstoreaccount1/hub-leases?restype=container&comp=list", "blob.list"},
		{"blob", "PUT", "/devstoreaccount1/hub-payloads/x", "blob.put"},
		{"blob", "GET", "/devstoreaccount1/hub-payloads/x", "blob.get"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		got := Operation(tt.service, r)
		if got != tt.want {
			t.Errorf("%s %s %s = %s, want %s", tt.service, tt.method, tt.target, got, tt.want)
		}
		if !slices.Contains(Operations(), got) {
			t.Errorf("%s is missing from Operations()", got)
		}
	}
}

func TestFaultProxyOptionsInvalid(t *testing.T) {
	target := ConnectionString(1, 2, 3)
	bad := [][]FaultRule{
		{{Kind: "boom", Share: 0.1}},
		{{Kind: FaultThrottle, Share: 1.5}},
		{{Kind: FaultThrottle, Share: 0.1, Ops: []string{"queue.pop"}}},
		{{Kind: FaultLatency, Share: 0.1, Latency: -1}},
	}
	for _, rules := range bad {
		if p, err := StartFaultProxy(target, FaultProxyOptions{Rules: rules}); err == nil {
			p.Close()
			t.Errorf("rules %+v accepted", rules)
		}
	}
	// A malformed target is refused without quoting it: it holds the key.
	_, err := StartFaultProxy("AccountKey="+AccountKey+";garbage", FaultProxyOptions{})
	if err == nil || strings.Contains(err.Error(), AccountKey) {
		t.Fatalf("malformed target: %v", err)
	}
	p, err := StartFaultProxy("UseDevelopmentStorage=true", FaultProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, q, tb := p.Ports()
	if want := ConnectionString(b, q, tb); p.ConnectionString() != want {
		t.Fatalf("proxy connection string\n%s\nwant\n%s", p.ConnectionString(), want)
	}
}
