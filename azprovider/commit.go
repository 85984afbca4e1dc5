package azprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// Commit protocol (DESIGN §5). Every episode is exactly one entity group
// transaction: its instance row (Add for a new instance, Update with If-Match
// on its token otherwise), its history chunk rows, the X| index change, its
// packed T| and A| rows when they changed, and its O| outbox unit. What does
// not fit (payloads over 64 KiB, values over 720 KiB, or an episode over the
// 100 operations / 4 MiB of a transaction) is written to new blobs first.
// Several episodes share a transaction while they fit (group commit). When a
// transaction is rejected, the response names the failing operation: its
// episode gets ErrConflict (or its error) and the rest is submitted again.

// maxTxBytes bounds the request body of one transaction (Azure allows 4 MiB).
const maxTxBytes = 3584 << 10

// opOverhead approximates the multipart headers and URL of one operation.
const opOverhead = 600

// staleToken is returned for an episode whose commit is known to have been
// applied although the row has moved on since: the next commit conflicts.
const staleToken core.CommitToken = `W/"azdurable-stale"`

// opRole says how a rejection of an operation is handled.
type opRole uint8

const (
	roleInstance       opRole = iota + 1 // the instance row: 409/412/404 is a conflict
	roleOptionalDelete                   // a delete whose row may already be gone
	roleWrite                            // any other write of an episode
)

type txOp struct {
	action aztables.TransactionAction
	bytes  int
	role   opRole
	plan   *epPlan         // nil for an OutboxDelivered delete
	ref    *core.OutboxRef // the outbox unit an OutboxDelivered delete removes
	done   bool
}

// epPlan is one episode prepared for its transaction.
type epPlan struct {
	ep      *core.Episode
	old     *instanceMeta // nil for a new instance
	meta    *instanceMeta // after the commit
	ops     []*txOp
	bytes   int
	uploads map[string][]byte // blobs to write before the transaction
	// After the commit: blobs it dropped, and the execution whose history it
	// dropped (continue-as-new).
	drop       []string
	dropExec   string
	outboxBlob string
	res        core.CommitResult
	settled    bool
}

func (pl *epPlan) succeed(etag string) {
	if !pl.settled {
		pl.res, pl.settled = core.CommitResult{Token: core.CommitToken(etag)}, true
	}
}

func (pl *epPlan) fail(err error) {
	if !pl.settled {
		pl.res, pl.settled = core.CommitResult{Err: err}, true
	}
}

// Commit writes a batch of episodes of one partition (see the protocol above).
func (p *Provider) Commit(ctx context.Context, partition int, batch *core.CommitBatch) ([]core.CommitResult, error) {
	if err := p.checkPartition(partition); err != nil {
		return nil, err
	}
	if batch == nil {
		return nil, fmt.Errorf("%w: commit to partition %d: batch is nil", core.ErrInvalidInput, partition)
	}
	plans := make([]*epPlan, len(batch.Episodes))
	seen := map[string]bool{}
	for i, ep := range batch.Episodes {
		if ep != nil && seen[ep.InstanceID] {
			plans[i] = &epPlan{ep: ep}
			plans[i].fail(fmt.Errorf("%w: instance %q has two episodes in one commit batch", core.ErrInvalidInput, ep.InstanceID))
			continue
		}
		if ep != nil {
			seen[ep.InstanceID] = true
		}
	}
	_ = parallel(len(plans), maxParallel, func(i int) error {
		if plans[i] != nil {
			return nil
		}
		pl, err := p.planEpisode(ctx, partition, batch.Episodes[i])
		if err != nil {
			pl = &epPlan{ep: batch.Episodes[i]}
			pl.fail(err)
		}
		plans[i] = pl
		return nil
	})
	p.uploadPlans(ctx, plans)

	var ready []*epPlan
	for _, pl := range plans {
		if !pl.settled {
			ready = append(ready, pl)
		}
	}
	delivered := p.deliveredOps(partition, batch.OutboxDelivered)
	txs := packTransactions(ready, delivered)
	_ = parallel(len(txs), 4, func(i int) error {
		p.runTx(ctx, partition, txs[i])
		return nil
	})

	results := make([]core.CommitResult, len(plans))
	var batchErr error
	allTransient := len(plans) > 0
	for i, pl := range plans {
		if !pl.settled {
			pl.fail(fmt.Errorf("commit of instance %q: no outcome", pl.ep.InstanceID))
		}
		results[i] = pl.res
		if pl.res.Err == nil || errors.Is(pl.res.Err, core.ErrConflict) || !core.IsRetryable(pl.res.Err) {
			allTransient = false
		} else if batchErr == nil {
			batchErr = pl.res.Err
		}
	}
	var undelivered []*txOp
	for _, op := range delivered {
		if !op.done {
			undelivered = append(undelivered, op)
		}
	}
	if allTransient {
		// Nothing was written: report the batch as failed, so that the runtime
		// retries every episode and keeps the delivered outbox units.
		return nil, batchErr
	}
	if len(undelivered) > 0 {
		// Delivered units are deleted best effort: a unit left behind is only
		// sent again when the partition is next opened, and receivers drop duplicates.
		p.runTx(ctx, partition, undelivered)
	}
	p.afterCommit(ctx, partition, plans, delivered)
	return results, nil
}

// uploadPlans writes the blobs of every plan before any transaction.
func (p *Provider) uploadPlans(ctx context.Context, plans []*epPlan) {
	type upload struct {
		pl   *epPlan
		name string
	}
	var ups []upload
	for _, pl := range plans {
		if pl.settled {
			continue
		}
		for name := range pl.uploads {
			ups = append(ups, upload{pl, name})
		}
	}
	errs := make([]error, len(ups))
	_ = parallel(len(ups), maxParallel, func(i int) error {
		errs[i] = p.putBlob(ctx, ups[i].name, ups[i].pl.uploads[ups[i].name])
		return nil
	})
	for i, u := range ups {
		if errs[i] != nil {
			u.pl.fail(errs[i])
		}
	}
	var orphans []string
	for _, pl := range plans {
		if pl.settled && pl.res.Err != nil {
			for name := range pl.uploads {
				orphans = append(orphans, name)
			}
		}
	}
	p.deleteBlobs(ctx, orphans)
}

// deliveredOps are the deletes of OutboxDelivered units of this partition.
func (p *Provider) deliveredOps(partition int, refs []core.OutboxRef) []*txOp {
	var ops []*txOp
	seen := map[string]bool{}
	for i := range refs {
		ref := refs[i]
		k := outboxKey(ref.InstanceID, ref.ID)
		if ref.Partition != partition || seen[k] || ref.ID == "" || ref.InstanceID == "" {
			continue
		}
		seen[k] = true
		e := newEntity(p.pk(partition), k)
		b, err := e.marshal()
		if err != nil {
			continue
		}
		ops = append(ops, &txOp{action: aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: b},
			bytes: len(b) + opOverhead, role: roleOptionalDelete, ref: &ref})
	}
	return ops
}

// packTransactions groups whole episodes into transactions of at most 100
// operations and maxTxBytes, then adds the delivered deletes where they fit.
func packTransactions(plans []*epPlan, delivered []*txOp) [][]*txOp {
	var txs [][]*txOp
	var cur []*txOp
	size := 0
	add := func(ops []*txOp, bytes int) {
		if len(cur) > 0 && (len(cur)+len(ops) > maxBatchOps || size+bytes > maxTxBytes) {
			txs = append(txs, cur)
			cur, size = nil, 0
		}
		cur = append(cur, ops...)
		size += bytes
	}
	for _, pl := range plans {
		add(pl.ops, pl.bytes)
	}
	for _, op := range delivered {
		add([]*txOp{op}, op.bytes)
	}
	if len(cur) > 0 {
		txs = append(txs, cur)
	}
	return txs
}

// runTx submits one transaction until every episode in it has an outcome.
func (p *Provider) runTx(ctx context.Context, partition int, ops []*txOp) {
	resource := p.tableResource(partition, "")
	for len(ops) > 0 {
		actions := make([]aztables.TransactionAction, len(ops))
		for i, op := range ops {
			actions[i] = op.action
		}
		etags, fail, err := p.submit(ctx, resource, p.pk(partition), actions)
		if err != nil {
			for _, op := range ops {
				if op.plan != nil {
					op.plan.fail(err)
				}
			}
			return
		}
		if fail == nil {
			for i, op := range ops {
				op.done = true
				if op.role == roleInstance {
					if etags[i] == "" {
						// No ETag in the response: the next commit reloads.
						etags[i] = string(staleToken)
					}
					op.plan.succeed(etags[i])
				}
			}
			return
		}
		if fail.index < 0 || fail.index >= len(ops) {
			groups := splitByEpisode(ops)
			if len(groups) > 1 {
				for _, g := range groups {
					p.runTx(ctx, partition, g)
				}
				return
			}
			for _, op := range ops {
				if op.plan != nil {
					op.plan.fail(p.rejected(partition, op.plan.ep.InstanceID, fail))
				}
			}
			return
		}
		op := ops[fail.index]
		switch {
		case op.plan == nil:
			// An OutboxDelivered unit already gone (or not deletable): drop it.
			ops = without(ops, func(o *txOp) bool { return o == op })
		case op.role == roleInstance && (fail.status == http.StatusConflict || fail.status == http.StatusPreconditionFailed || fail.status == http.StatusNotFound):
			if p.appliedEarlier(ctx, partition, op.plan) {
				p.resolveApplied(ctx, partition, ops)
				return
			}
			op.plan.fail(fmt.Errorf("%w: instance %q (partition %d)", core.ErrConflict, op.plan.ep.InstanceID, partition))
			ops = without(ops, func(o *txOp) bool { return o.plan == op.plan })
		case op.role == roleOptionalDelete && fail.status == http.StatusNotFound:
			ops = without(ops, func(o *txOp) bool { return o == op })
		default:
			op.plan.fail(p.rejected(partition, op.plan.ep.InstanceID, fail))
			ops = without(ops, func(o *txOp) bool { return o.plan == op.plan })
		}
	}
}

func (p *Provider) rejected(partition int, id string, f *txFailure) error {
	return &core.StorageError{Op: "commit", Resource: p.tableResource(partition, id), Status: f.status, Code: f.code,
		Transient: transientStatus(f.status), Err: redactedError("the transaction was rejected")}
}

func without(ops []*txOp, drop func(*txOp) bool) []*txOp {
	out := ops[:0:0]
	for _, o := range ops {
		if !drop(o) {
			out = append(out, o)
		}
	}
	return out
}

// splitByEpisode splits a transaction into one per episode and one per
// delivered delete.
func splitByEpisode(ops []*txOp) [][]*txOp {
	var groups [][]*txOp
	index := map[*epPlan]int{}
	for _, op := range ops {
		if op.plan == nil {
			groups = append(groups, []*txOp{op})
			continue
		}
		i, ok := index[op.plan]
		if !ok {
			i = len(groups)
			index[op.plan] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], op)
	}
	return groups
}

// appliedEarlier tells whether the instance row holds this commit: the SDK
// retries a transaction whose response was lost, and the retry of an
// applied transaction is rejected.
func (p *Provider) appliedEarlier(ctx context.Context, partition int, pl *epPlan) bool {
	r, err := p.readInstanceRow(ctx, partition, pl.ep.InstanceID)
	return err == nil && r.str("CommitID") == pl.meta.commitID
}

// resolveApplied settles a transaction found applied by an earlier try:
// every episode in it committed; each gets the current ETag of its row, or
// a stale token when the row has moved on since.
func (p *Provider) resolveApplied(ctx context.Context, partition int, ops []*txOp) {
	for _, op := range ops {
		op.done = true
	}
	var plans []*epPlan
	for _, op := range ops {
		if op.role == roleInstance {
			plans = append(plans, op.plan)
		}
	}
	_ = parallel(len(plans), maxParallel, func(i int) error {
		pl := plans[i]
		r, err := p.readInstanceRow(ctx, partition, pl.ep.InstanceID)
		if err == nil && r.str("CommitID") == pl.meta.commitID {
			pl.succeed(r.etag())
		} else {
			pl.succeed(string(staleToken))
		}
		return nil
	})
}

// afterCommit does what committed episodes leave for later: cache the new
// row versions, remember spilled outbox units, delete dropped blobs and the
// history of replaced executions, and delete blobs of episodes that failed
// for certain.
func (p *Provider) afterCommit(ctx context.Context, partition int, plans []*epPlan, delivered []*txOp) {
	var dropBlobs []string
	for _, pl := range plans {
		switch {
		case pl.res.Err == nil && pl.meta != nil:
			if pl.res.Token != staleToken {
				p.meta.Add(metaKey{pl.ep.InstanceID, string(pl.res.Token)}, pl.meta)
			}
			if pl.outboxBlob != "" {
				p.outboxBlobs.Store(pl.ep.OutboxID, outboxBlob{partition: partition, blob: pl.outboxBlob})
			}
			dropBlobs = append(dropBlobs, pl.drop...)
		case errors.Is(pl.res.Err, core.ErrConflict) || (pl.res.Err != nil && !core.IsRetryable(pl.res.Err)):
			for name := range pl.uploads {
				dropBlobs = append(dropBlobs, name)
			}
		}
	}
	for _, op := range delivered {
		if op.done {
			if v, ok := p.outboxBlobs.LoadAndDelete(op.ref.ID); ok {
				dropBlobs = append(dropBlobs, v.(outboxBlob).blob)
			}
		}
	}
	p.deleteBlobs(ctx, dropBlobs)
	for _, pl := range plans {
		if pl.res.Err == nil && pl.dropExec != "" {
			_ = p.deleteHistory(ctx, partition, pl.ep.InstanceID, historyPrefix(pl.ep.InstanceID, pl.dropExec))
		}
	}
}

// deleteHistory deletes the H| rows under a key prefix and their blobs, in
// transactions of at most 100 rows.
func (p *Provider) deleteHistory(ctx context.Context, partition int, id, prefix string) error {
	rows, err := p.queryRange(ctx, partition, prefix, prefixEnd(prefix), "", "RowKey,Blob")
	if err != nil {
		return p.storageErr("read history", p.tableResource(partition, id), err)
	}
	var keys, blobs []string
	for _, r := range rows {
		keys = append(keys, r.rowKey())
		if b := r.str("Blob"); b != "" {
			blobs = append(blobs, b)
		}
	}
	if err := p.deleteRows(ctx, partition, id, keys); err != nil {
		return err
	}
	p.deleteBlobs(ctx, blobs)
	return nil
}

// deleteRows deletes rows of a partition in transactions of at most 100;
// rows already gone are skipped.
func (p *Provider) deleteRows(ctx context.Context, partition int, id string, keys []string) error {
	resource := p.tableResource(partition, id)
	for len(keys) > 0 {
		n := min(len(keys), maxBatchOps)
		batch := keys[:n]
		keys = keys[n:]
		for len(batch) > 0 {
			actions := make([]aztables.TransactionAction, len(batch))
			for i, k := range batch {
				b, _ := json.Marshal(map[string]string{"PartitionKey": p.pk(partition), "RowKey": k})
				actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: b}
			}
			_, fail, err := p.submit(ctx, resource, p.pk(partition), actions)
			if err != nil {
				return err
			}
			if fail == nil {
				break
			}
			if fail.status != http.StatusNotFound || fail.index < 0 || fail.index >= len(batch) {
				return p.rejected(partition, id, fail)
			}
			batch = append(batch[:fail.index:fail.index], batch[fail.index+1:]...)
		}
	}
	return nil
}

// oldMeta returns what the commit must know about the row version named by
// token: from the cache, or by reading the row (a version that is not
// current any more is a conflict).
func (p *Provider) oldMeta(ctx context.Context, partition int, id string, token core.CommitToken) (*instanceMeta, error) {
	if m, ok := p.meta.Get(metaKey{id, string(token)}); ok {
		return m, nil
	}
	r, err := p.readInstanceRow(ctx, partition, id)
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: instance %q no longer exists (partition %d)", core.ErrConflict, id, partition)
	}
	if err != nil {
		return nil, err
	}
	if r.etag() != string(token) {
		return nil, fmt.Errorf("%w: instance %q (partition %d)", core.ErrConflict, id, partition)
	}
	m, err := decodeMeta(r)
	if err != nil {
		return nil, err
	}
	p.meta.Add(metaKey{id, string(token)}, m)
	return m, nil
}

// tokenCurrent reads the instance row and tells whether token is its ETag.
func (p *Provider) tokenCurrent(ctx context.Context, partition int, id string, token core.CommitToken) bool {
	r, err := p.readInstanceRow(ctx, partition, id)
	return err == nil && r.etag() == string(token)
}
