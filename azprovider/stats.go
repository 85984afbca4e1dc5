package azprovider

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/azdurable/azdurable/internal/storageop"
)

// Stats returns how many storage operations the provider has issued, by kind
// (a snapshot). A call counts once however often the SDK retried it. Kinds:
//
//	table.batch  entity group transaction (a commit)
//	table.read   point read of one entity
//	table.query  one page of a range query
//	table.write  insert, update, upsert or merge of one entity
//	table.delete delete of one entity
//	table.create, table.drop  create or delete the table
//	queue.put, queue.get, queue.update, queue.delete  message operations
//	queue.get-empty  a queue.get that returned no message: an idle poll
//	                 (also counted in queue.get)
//	queue.peek, queue.clear, queue.create, queue.drop, queue.props
//	blob.put, blob.get, blob.delete, blob.list, blob.lease
//	blob.container-create, blob.container-drop
//
// They are meant to become metrics.
func (p *Provider) Stats() map[string]int64 {
	return p.stats.snapshot()
}

// kindEmptyDequeue counts the dequeues that found no message, so that the
// cost of idle polling can be told from the cost of work.
const kindEmptyDequeue = "queue.get-empty"

type opStats struct {
	m sync.Map // kind → *atomic.Int64
}

func (s *opStats) add(kind string) {
	v, ok := s.m.Load(kind)
	if !ok {
		v, _ = s.m.LoadOrStore(kind, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (s *opStats) snapshot() map[string]int64 {
	out := map[string]int64{}
	s.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// countingPolicy is a per-call pipeline policy on every client: it counts
// the call by kind and, for entity group transactions, hands the response
// body to the caller (the SDK drops the per-operation ETags and error index
// that the commit needs).
type countingPolicy struct {
	service string
	stats   *opStats
}

type captureKey struct{}

// batchCapture receives the response of a transaction submitted with its context.
type batchCapture struct {
	status int
	body   []byte
}

func withCapture(ctx context.Context, c *batchCapture) context.Context {
	return context.WithValue(ctx, captureKey{}, c)
}

func (c *countingPolicy) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	kind := opKind(c.service, raw)
	resp, err := req.Next()
	// A call is counted when it ends, together with what it found, so that a
	// snapshot taken while calls run never holds half of one.
	c.stats.add(kind)
	if err != nil {
		return resp, err
	}
	if kind == "queue.get" && resp.StatusCode == http.StatusOK {
		if body, _ := runtime.Payload(resp); !bytes.Contains(body, []byte("<QueueMessage>")) {
			c.stats.add(kindEmptyDequeue)
		}
	}
	if cp, ok := raw.Context().Value(captureKey{}).(*batchCapture); ok && strings.HasSuffix(raw.URL.Path, "/$batch") {
		cp.status = resp.StatusCode
		cp.body, _ = runtime.Payload(resp)
	}
	return resp, err
}

// opKind classifies a request of one of the three services.
func opKind(service string, r *http.Request) string { return storageop.Operation(service, r) }
