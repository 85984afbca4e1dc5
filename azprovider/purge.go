package azprovider

import (
	"context"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// PurgeInstance deletes a terminal instance: first, in one transaction, its
// instance row (If-Match on the version read, so a concurrent restart wins),
// its index row and its pending rows; then its outbox and history rows (in
// transactions of 100) and every blob under its prefix.
func (p *Provider) PurgeInstance(ctx context.Context, instanceID string) error {
	if err := core.ValidateInstanceID(instanceID, 0); err != nil {
		return err
	}
	partition := p.PartitionOf(instanceID)
	for attempt := 0; ; attempt++ {
		r, err := p.readInstanceRow(ctx, partition, instanceID)
		if err != nil {
			return err
		}
		st, err := p.decodeState(ctx, r, false)
		if err != nil {
			return err
		}
		if !st.Status.IsTerminal() {
			return fmt.Errorf("%w: instance %q is %s", core.ErrNotTerminal, instanceID, st.Status)
		}
		m, err := decodeMeta(r)
		if err != nil {
			return err
		}
		ok, err := p.deleteInstanceRows(ctx, partition, instanceID, r.etag(), m)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if attempt >= 3 {
			return fmt.Errorf("%w: instance %q kept changing during the purge", core.ErrConflict, instanceID)
		}
	}
	var keys []string
	for _, prefix := range []string{outboxInstancePrefix(instanceID), historyInstancePrefix(instanceID)} {
		rows, err := p.queryRange(ctx, partition, prefix, prefixEnd(prefix), "", "RowKey")
		if err != nil {
			return p.storageErr("purge", p.tableResource(partition, instanceID), err)
		}
		for _, r := range rows {
			keys = append(keys, r.rowKey())
		}
	}
	if err := p.deleteRows(ctx, partition, instanceID, keys); err != nil {
		return err
	}
	return p.deleteBlobPrefix(ctx, instanceBlobPrefix(instanceID))
}

// deleteInstanceRows deletes the instance row (If-Match etag) with its index
// and pending rows; false when the row changed meanwhile.
func (p *Provider) deleteInstanceRows(ctx context.Context, partition int, id, etag string, m *instanceMeta) (bool, error) {
	pk := p.pk(partition)
	keys := []string{instanceKey(id)}
	if m.xKey != "" {
		keys = append(keys, m.xKey)
	}
	if m.timers {
		keys = append(keys, timersKey(id))
	}
	if m.acts {
		keys = append(keys, activitiesKey(id))
	}
	tag := azcore.ETag(etag)
	for {
		actions := make([]aztables.TransactionAction, 0, len(keys))
		for i, k := range keys {
			b, err := newEntity(pk, k).marshal()
			if err != nil {
				return false, err
			}
			a := aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: b}
			if i == 0 {
				a.IfMatch = &tag
			}
			actions = append(actions, a)
		}
		_, fail, err := p.submit(ctx, p.tableResource(partition, id), pk, actions)
		switch {
		case err != nil:
			return false, err
		case fail == nil:
			return true, nil
		case fail.index == 0 && (fail.status == http.StatusPreconditionFailed || fail.status == http.StatusNotFound):
			return false, nil
		case fail.index > 0 && fail.index < len(actions) && fail.status == http.StatusNotFound:
			keys = append(keys[:fail.index:fail.index], keys[fail.index+1:]...)
		default:
			return false, p.rejected(partition, id, fail)
		}
	}
}
