package azurite_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
)

// The tests of this file do not run in parallel with the others of the
// package: those start Azurite processes and time how long that takes.

// quickRetry retries fast, so that the tests recover in milliseconds.
var quickRetry = azprovider.RetryOptions{MaxRetries: 4, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond, TryTimeout: 5 * time.Second}

// hubEnv is a task hub with one partition, created straight on storage, and
// a provider that reaches it through a fault proxy.
type hubEnv struct {
	ctx   context.Context
	proxy *azurite.FaultProxy
	prov  *azprovider.Provider // through the proxy
}

func newHubEnv(t *testing.T, opts azurite.FaultProxyOptions, retry azprovider.RetryOptions) *hubEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	connStr := azurite.ForTest(t)
	hub := fmt.Sprintf("fp%08x", rand.Uint32())
	direct, err := azprovider.New(ctx, azprovider.Options{ConnectionString: connStr, TaskHub: hub, Partitions: 1, CreateIfMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if err := direct.DeleteTaskHub(dctx); err != nil {
			t.Errorf("delete task hub: %v", err)
		}
	})
	proxy, err := azurite.StartFaultProxy(connStr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	prov, err := azprovider.New(ctx, azprovider.Options{ConnectionString: proxy.ConnectionString(), TaskHub: hub, Partitions: 1, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	return &hubEnv{ctx: ctx, proxy: proxy, prov: prov}
}

func message(id string) *core.Message {
	return &core.Message{ID: id, InstanceID: "fault-proxy", Event: &core.Event{Kind: core.EventEventRaised, Name: "ping"}}
}

// drain fetches and deletes every message of partition 0 and returns their ids.
func (e *hubEnv) drain(t *testing.T) []string {
	t.Helper()
	var ids []string
	for {
		msgs, err := e.prov.FetchMessages(e.ctx, 0, 32, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return ids
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if err := e.prov.DeleteMessages(e.ctx, 0, msgs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFaultProxyForwards: without rules every operation of the three
// services goes through unchanged, entity group transactions included.
func TestFaultProxyForwards(t *testing.T) {
	e := newHubEnv(t, azurite.FaultProxyOptions{}, quickRetry)
	if err := e.prov.SendMessages(e.ctx, []*core.Message{message("m1"), message("m2")}); err != nil {
		t.Fatal(err)
	}
	if got := e.drain(t); strings.Join(got, ",") != "m1,m2" {
		t.Fatalf("messages through the proxy: %v, want [m1 m2]", got)
	}

	tbl := tableClient(t, e.proxy.ConnectionString(), fmt.Sprintf("fwd%08x", rand.Uint32()), -1)
	if _, err := tbl.CreateTable(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer tbl.Delete(context.Background(), nil)
	var batch []aztables.TransactionAction
	for i := range 3 {
		batch = append(batch, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: entity("p", fmt.Sprint(i))})
	}
	if _, err := tbl.SubmitTransaction(e.ctx, batch, nil); err != nil {
		t.Fatalf("entity group transaction through the proxy: %v", err)
	}
	if _, err := tbl.GetEntity(e.ctx, "p", "2", nil); err != nil {
		t.Fatalf("read after the transaction: %v", err)
	}

	s := e.proxy.Stats()
	if s.Total() != 0 || s.Cut != 0 || s.UpstreamErrors != 0 {
		t.Fatalf("stats without rules: %+v", s)
	}
	if s.Requests < 8 {
		t.Fatalf("the proxy saw %d requests, want at least 8", s.Requests)
	}
}

// TestFaultProxyKinds injects each kind of fault, before and after storage
// applies the request, into the first enqueue, and checks that the
// provider's retries recover: the send succeeds. A fault after the enqueue
// makes the retry enqueue the message again (delivered at least once), which
// is the case receivers must deduplicate.
func TestFaultProxyKinds(t *testing.T) {
	for _, kind := range azurite.FaultKinds() {
		for _, after := range []bool{false, true} {
			name := string(kind)
			if after {
				name += "/after"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				retry := quickRetry
				if kind == azurite.FaultTimeout {
					retry.TryTimeout = 3 * time.Second
				}
				e := newHubEnv(t, azurite.FaultProxyOptions{
					Seed:  1,
					Hold:  time.Minute, // the client gives up first
					Rules: []azurite.FaultRule{{Ops: []string{"queue.put"}, Kind: kind, Share: 1, After: after, Limit: 1, Latency: 50 * time.Millisecond}},
				}, retry)
				if err := e.prov.SendMessages(e.ctx, []*core.Message{message("m1")}); err != nil {
					t.Fatalf("send through a %s fault: %v", name, err)
				}
				s := e.proxy.Stats()
				if s.Faults[kind] != 1 || s.Total() != 1 || s.ByOp["queue.put"] != 1 {
					t.Fatalf("stats: %+v, want one %s fault on queue.put", s, kind)
				}
				if want := map[bool]int64{false: 0, true: 1}[after]; s.After != want {
					t.Fatalf("After = %d, want %d", s.After, want)
				}
				want := []string{"m1"}
				if after && kind != azurite.FaultLatency {
					want = []string{"m1", "m1"}
				}
				if got := e.drain(t); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("queue holds %v, want %v", got, want)
				}
			})
		}
	}
}

// TestFaultProxyErrorsAsAzureSends: without retries each fault surfaces as
// the storage error Azure would cause, classified as transient.
func TestFaultProxyErrorsAsAzureSends(t *testing.T) {
	tests := []struct {
		kind   azurite.FaultKind
		status int
		code   string
	}{
		{azurite.FaultServerError, http.StatusInternalServerError, "InternalError"},
		{azurite.FaultThrottle, http.StatusServiceUnavailable, "ServerBusy"},
		{azurite.FaultReset, 0, ""},
		{azurite.FaultTimeout, 0, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			// The client's try timeout ends a timeout fault; the proxy
			// would hold the request for a minute.
			tryTimeout := 10 * time.Second
			if tt.kind == azurite.FaultTimeout {
				tryTimeout = 2 * time.Second
			}
			e := newHubEnv(t, azurite.FaultProxyOptions{
				Hold:  time.Minute,
				Rules: []azurite.FaultRule{{Ops: []string{"queue"}, Kind: tt.kind, Share: 1}},
			}, azprovider.RetryOptions{MaxRetries: -1, TryTimeout: tryTimeout})
			err := e.prov.SendMessages(e.ctx, []*core.Message{message("m1")})
			var se *core.StorageError
			if !errors.As(err, &se) {
				t.Fatalf("send: %v, want a *core.StorageError", err)
			}
			if !se.Transient || se.Status != tt.status || se.Code != tt.code {
				t.Fatalf("send: %#v, want transient, status %d, code %q", se, tt.status, tt.code)
			}
			if strings.Contains(err.Error(), azurite.AccountKey) {
				t.Fatal("the error quotes the account key")
			}
		})
	}

	// Tables answer in JSON, blobs in XML: the SDKs read the code of both.
	t.Run("table and blob", func(t *testing.T) {
		t.Parallel()
		proxy, err := azurite.StartFaultProxy(azurite.ForTest(t), azurite.FaultProxyOptions{
			Rules: []azurite.FaultRule{{Ops: []string{"table.list", "blob.list"}, Kind: azurite.FaultThrottle, Share: 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		ctx := context.Background()
		tables, err := aztables.NewServiceClientFromConnectionString(proxy.ConnectionString(), &aztables.ClientOptions{ClientOptions: noRetry()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tables.NewListTablesPager(nil).NextPage(ctx)
		checkResponseError(t, "list tables", err, http.StatusServiceUnavailable, "ServerBusy")
		blobs, err := azblob.NewClientFromConnectionString(proxy.ConnectionString(), &azblob.ClientOptions{ClientOptions: noRetry()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = blobs.NewListBlobsFlatPager("any", nil).NextPage(ctx)
		checkResponseError(t, "list blobs", err, http.StatusServiceUnavailable, "ServerBusy")
	})
}

func noRetry() azcore.ClientOptions {
	return azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}
}

func checkResponseError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("%s: %v, want HTTP %d %s", what, err, status, code)
	}
}

// TestFaultProxyAfterCommitIsApplied: a 500 after storage inserted an
// entity makes the SDK retry an insert that already happened, and the retry
// fails with 409 EntityAlreadyExists. A lease acquired behind a 503 is held
// although the client was told it failed.
func TestFaultProxyAfterCommitIsApplied(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	connStr := azurite.ForTest(t)
	proxy, err := azurite.StartFaultProxy(connStr, azurite.FaultProxyOptions{Rules: []azurite.FaultRule{
		{Ops: []string{"table.write"}, Kind: azurite.FaultServerError, Share: 1, After: true, Limit: 1},
		{Ops: []string{"blob.lease"}, Kind: azurite.FaultThrottle, Share: 1, After: true, Limit: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	name := fmt.Sprintf("after%08x", rand.Uint32())
	direct := tableClient(t, connStr, name, -1)
	if _, err := direct.CreateTable(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer direct.Delete(context.Background(), nil)
	_, err = tableClient(t, proxy.ConnectionString(), name, 3).AddEntity(ctx, entity("p", "r"), nil)
	checkResponseError(t, "insert retried after a 500 that followed the insert", err, http.StatusConflict, "EntityAlreadyExists")
	if _, err := direct.GetEntity(ctx, "p", "r", nil); err != nil {
		t.Fatalf("the entity the client was told failed: %v", err)
	}

	blobs, err := azblob.NewClientFromConnectionString(connStr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.CreateContainer(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	defer blobs.DeleteContainer(context.Background(), name, nil)
	if _, err := blobs.UploadBuffer(ctx, name, "b", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	pblobs, err := azblob.NewClientFromConnectionString(proxy.ConnectionString(), &azblob.ClientOptions{ClientOptions: noRetry()})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lease.NewBlobClient(pblobs.ServiceClient().NewContainerClient(name).NewBlobClient("b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lc.AcquireLease(ctx, 15, nil)
	checkResponseError(t, "acquire lease", err, http.StatusServiceUnavailable, "ServerBusy")
	props, err := blobs.ServiceClient().NewContainerClient(name).NewBlobClient("b").GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if props.LeaseState == nil || *props.LeaseState != "leased" {
		t.Fatalf("lease state after a 503 that followed the acquire: %v, want leased", props.LeaseState)
	}
	if s := proxy.Stats(); s.After != 2 || s.Faults[azurite.FaultServerError] != 1 || s.Faults[azurite.FaultThrottle] != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestFaultProxyCut cuts the client off (refused, then blackholed) and
// reconnects it: calls fail while cut, and work again after, including a
// call that was held when the proxy reconnected.
func TestFaultProxyCut(t *testing.T) {
	e := newHubEnv(t, azurite.FaultProxyOptions{Hold: time.Minute},
		azprovider.RetryOptions{MaxRetries: 20, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond, TryTimeout: 5 * time.Second})

	e.proxy.Cut(azurite.CutRefuse)
	if e.proxy.CutMode() != azurite.CutRefuse {
		t.Fatalf("CutMode = %v", e.proxy.CutMode())
	}
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	err := e.prov.SendMessages(ctx, []*core.Message{message("refused")})
	cancel()
	var se *core.StorageError
	if !errors.As(err, &se) || !se.Transient {
		t.Fatalf("send while refused: %v, want a transient storage error", err)
	}
	refused := e.proxy.Stats().Cut
	if refused < 2 {
		t.Fatalf("%d requests refused, want the first try and retries", refused)
	}

	e.proxy.Cut(azurite.CutBlackhole)
	done := make(chan error, 1)
	go func() { done <- e.prov.SendMessages(e.ctx, []*core.Message{message("held")}) }()
	// Wait until the send is held, then reconnect: the held request is reset
	// and the retry goes through.
	for e.proxy.Stats().Cut == refused {
		select {
		case err := <-done:
			t.Fatalf("send returned while blackholed: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	e.proxy.Reconnect()
	if err := <-done; err != nil {
		t.Fatalf("send held across a reconnect: %v", err)
	}
	if e.proxy.CutMode() != azurite.Connected {
		t.Fatalf("CutMode after Reconnect = %v", e.proxy.CutMode())
	}
	if got := e.drain(t); strings.Join(got, ",") != "held" {
		t.Fatalf("queue holds %v, want [held]", got)
	}
}

// TestFaultProxyShare: a 20% share of throttles over many retried calls
// injects some faults and every call still succeeds.
func TestFaultProxyShare(t *testing.T) {
	e := newHubEnv(t, azurite.FaultProxyOptions{Seed: 7, Rules: []azurite.FaultRule{
		{Ops: []string{"queue"}, Kind: azurite.FaultThrottle, Share: 0.1},
		{Ops: []string{"queue"}, Kind: azurite.FaultReset, Share: 0.1},
	}}, azprovider.RetryOptions{MaxRetries: 10, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond})
	var msgs []*core.Message
	for i := range 40 {
		msgs = append(msgs, message(fmt.Sprintf("m%02d", i)))
	}
	// One call per message: the provider would pack the messages of one call.
	for _, m := range msgs {
		if err := e.prov.SendMessages(e.ctx, []*core.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	s := e.proxy.Stats()
	if s.Faults[azurite.FaultThrottle] == 0 || s.Faults[azurite.FaultReset] == 0 {
		t.Fatalf("no fault of some kind in %d requests: %+v", s.Requests, s)
	}
	t.Logf("%d requests, %d faults: %v", s.Requests, s.Total(), s.Faults)
	seen := map[string]bool{}
	for _, id := range e.drain(t) {
		seen[id] = true
	}
	for _, m := range msgs {
		if !seen[m.ID] {
			t.Errorf("message %s lost", m.ID)
		}
	}
}

func tableClient(t *testing.T, connStr, name string, retries int32) *aztables.Client {
	t.Helper()
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: retries, RetryDelay: 10 * time.Millisecond}}}
	svc, err := aztables.NewServiceClientFromConnectionString(connStr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc.NewClient(name)
}

func entity(pk, rk string) []byte {
	return fmt.Appendf(nil, `{"PartitionKey":%q,"RowKey":%q,"V":1}`, pk, rk)
}
