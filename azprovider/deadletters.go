package azprovider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// Dead letters are rows of partition "dl" keyed <time>|<uuid>, so they list
// oldest first; the RowKey is the dead letter's id. A row keeps the queue
// text unchanged (an envelope naming a blob stays one: the blob now belongs
// to the dead letter), so a replay re-enqueues exactly what was dequeued.

const (
	dlMessage  = "message"
	dlActivity = "activity"

	maxReasonChars = 4096
)

// deadLetterLock is how long a message or work item stays locked while it is
// moved to the dead-letter store: enough for the write and the delete.
const deadLetterLock = time.Minute

type deadLetterRecord struct {
	kind         string
	partition    int // -1 for work items
	reason       string
	instanceID   string
	dequeueCount int
	text         string
	blob         string
	undecodable  bool
}

func (p *Provider) writeDeadLetter(ctx context.Context, dl *deadLetterRecord) error {
	reason := dl.reason
	if utf8.RuneCountInString(reason) > maxReasonChars {
		reason = string([]rune(reason)[:maxReasonChars]) + "…"
	}
	now := p.now()
	e := newEntity(deadLetterPK, timeKey(now)+keySep+core.NewID())
	e.str("Kind", dl.kind)
	e.i64("Partition", int64(dl.partition))
	e.str("Reason", p.redact.text(reason))
	if dl.instanceID != "" {
		e.str("InstanceID", dl.instanceID)
	}
	e.time("At", now)
	e.i64("DequeueCount", int64(dl.dequeueCount))
	e.boolean("Undecodable", dl.undecodable)
	if dl.blob != "" {
		e.str("Blob", dl.blob)
	}
	e.chunks("D", []byte(dl.text))
	b, err := e.marshal()
	if err != nil {
		return err
	}
	if _, err := p.table.AddEntity(ctx, b, nil); err != nil {
		return p.storageErr("write dead letter", "table "+p.tableName+" dead letters", err)
	}
	return nil
}

// ListDeadLetters lists dead letters, oldest first. pageSize defaults to 100
// (at most 1000); the continuation is opaque.
func (p *Provider) ListDeadLetters(ctx context.Context, pageSize int, continuation string) (*core.DeadLetterPage, error) {
	if pageSize <= 0 {
		pageSize = 100
	}
	pageSize = min(pageSize, 1000)
	after := ""
	if continuation != "" {
		b, err := base64.RawURLEncoding.DecodeString(continuation)
		if err != nil || !utf8.Valid(b) {
			return nil, fmt.Errorf("%w: malformed dead-letter continuation", core.ErrInvalidInput)
		}
		after = string(b)
	}
	filter := "PartitionKey eq " + odataString(deadLetterPK)
	if after != "" {
		filter += " and RowKey gt " + odataString(after)
	}
	top := int32(pageSize + 1)
	pager := p.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Top: &top})
	var rows []row
	for pager.More() && len(rows) <= pageSize {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, p.storageErr("list dead letters", "table "+p.tableName, err)
		}
		for _, b := range page.Entities {
			r, err := parseRow(b)
			if err != nil {
				return nil, err
			}
			rows = append(rows, r)
		}
	}
	out := &core.DeadLetterPage{}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		out.Continuation = base64.RawURLEncoding.EncodeToString([]byte(rows[len(rows)-1].rowKey()))
	}
	out.DeadLetters = make([]*core.DeadLetter, len(rows))
	err := parallel(len(rows), maxParallel, func(i int) error {
		dl, err := p.decodeDeadLetter(ctx, rows[i])
		out.DeadLetters[i] = dl
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (p *Provider) decodeDeadLetter(ctx context.Context, r row) (*core.DeadLetter, error) {
	part, err := r.i64("Partition")
	if err != nil {
		return nil, err
	}
	count, err := r.i64("DequeueCount")
	if err != nil {
		return nil, err
	}
	at, err := r.time("At")
	if err != nil {
		return nil, err
	}
	text, err := r.chunks("D")
	if err != nil {
		return nil, err
	}
	dl := &core.DeadLetter{ID: r.rowKey(), Partition: int(part), Reason: r.str("Reason"), InstanceID: r.str("InstanceID"),
		At: at, DequeueCount: int(count)}
	body, _, err := p.openText(ctx, string(text))
	if err != nil || r.boolean("Undecodable") {
		dl.Raw = text
		return dl, nil
	}
	if r.str("Kind") == dlActivity {
		t, err := decodeWorkItem(body)
		if err != nil {
			dl.Raw = text
			return dl, nil
		}
		dl.Activity = t
		if dl.InstanceID == "" {
			dl.InstanceID = t.InstanceID
		}
		return dl, nil
	}
	m, err := core.DecodeMessage(body)
	if err != nil {
		dl.Raw = text
		return dl, nil
	}
	dl.Message = m
	return dl, nil
}

func (p *Provider) readDeadLetter(ctx context.Context, id string) (row, error) {
	if id == "" || !strings.Contains(id, keySep) || checkKey("dead letter id", id) != nil {
		return nil, fmt.Errorf("%w: %q is not a dead-letter id", core.ErrInvalidInput, id)
	}
	resp, err := p.table.GetEntity(ctx, deadLetterPK, id, nil)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("%w: %w: %q in task hub %q (never written, or already replayed or discarded)",
				core.ErrInvalidInput, ErrDeadLetterNotFound, id, p.hub)
		}
		return nil, p.storageErr("read dead letter", "table "+p.tableName, err)
	}
	r, err := parseRow(resp.Value)
	if err != nil {
		return nil, err
	}
	r["odata.etag"], _ = json.Marshal(string(resp.ETag))
	return r, nil
}

// ReplayDeadLetter puts a dead letter back on the queue it came from (its
// dequeue count starts again) and deletes it.
func (p *Provider) ReplayDeadLetter(ctx context.Context, id string) error {
	r, err := p.readDeadLetter(ctx, id)
	if err != nil {
		return err
	}
	text, err := r.chunks("D")
	if err != nil {
		return err
	}
	part, err := r.i64("Partition")
	if err != nil {
		return err
	}
	if part >= 0 && int(part) < p.n && r.str("Kind") == dlMessage {
		err = p.enqueue(ctx, p.control[part], p.controlQueueName(int(part)), string(text), 0)
	} else {
		err = p.enqueue(ctx, p.work, p.workQueueName(), string(text), 0)
	}
	if err != nil {
		return err
	}
	etag := azcore.ETag(r.etag())
	if _, err := p.table.DeleteEntity(ctx, deadLetterPK, id, &aztables.DeleteEntityOptions{IfMatch: &etag}); err != nil && !isStatus(err, http.StatusNotFound) {
		return p.storageErr("delete dead letter", "table "+p.tableName, err)
	}
	return nil
}

// DiscardDeadLetter deletes a dead letter and its blob. A dead letter that
// is not found (never written, or already replayed or discarded, perhaps by
// a concurrent call) is an error wrapping core.ErrInvalidInput and
// ErrDeadLetterNotFound, so that an operator who discards twice is told.
func (p *Provider) DiscardDeadLetter(ctx context.Context, id string) error {
	r, err := p.readDeadLetter(ctx, id)
	if err != nil {
		return err
	}
	if _, err := p.table.DeleteEntity(ctx, deadLetterPK, id, nil); err != nil {
		if isStatus(err, http.StatusNotFound) {
			return fmt.Errorf("%w: %w: %q in task hub %q was discarded or replayed meanwhile",
				core.ErrInvalidInput, ErrDeadLetterNotFound, id, p.hub)
		}
		return p.storageErr("delete dead letter", "table "+p.tableName, err)
	}
	if b := r.str("Blob"); b != "" {
		p.deleteBlobs(ctx, []string{b})
	}
	return nil
}

// DeadLetterMessages moves fetched messages whose receipts are still current
// to the dead-letter store, with the reason, and removes them from their
// queue. A message whose receipt is stale (it was deleted, or fetched again
// after its lock expired) is left alone without error: it belongs to whoever
// holds the current receipt. A message without a receipt of this provider
// for this partition is core.ErrInvalidInput, and then nothing is moved.
func (p *Provider) DeadLetterMessages(ctx context.Context, partition int, msgs []*core.Message, reason string) error {
	if err := p.checkPartition(partition); err != nil {
		return err
	}
	held := make([]*core.Message, 0, len(msgs))
	for i, m := range msgs {
		if m == nil {
			continue
		}
		rc, ok := m.Receipt.(*receipt)
		switch {
		case !ok || rc == nil:
			return fmt.Errorf("%w: dead-letter message %q (%d of %d) of instance %q: it has no receipt of this provider; only fetched messages can be dead-lettered",
				core.ErrInvalidInput, m.ID, i+1, len(msgs), m.InstanceID)
		case rc.partition != partition:
			return fmt.Errorf("%w: dead-letter message %q of instance %q: its receipt is of %s, not of partition %d",
				core.ErrInvalidInput, m.ID, m.InstanceID, rc.queueName, partition)
		}
		held = append(held, m)
	}
	record := func(m *core.Message) *deadLetterRecord {
		rc := m.Receipt.(*receipt)
		return &deadLetterRecord{kind: dlMessage, partition: partition, reason: reason, instanceID: m.InstanceID,
			dequeueCount: m.DequeueCount, text: rc.text, blob: rc.blob}
	}
	// The parts of a pack are dead-lettered together, each as a message of
	// its own (pack.go).
	var singles []*core.Message
	var packs []*packState
	parts := map[*packState]map[int]*core.Message{}
	for _, m := range held {
		rc := m.Receipt.(*receipt)
		if rc.pack == nil {
			singles = append(singles, m)
			continue
		}
		if parts[rc.pack] == nil {
			packs = append(packs, rc.pack)
			parts[rc.pack] = map[int]*core.Message{}
		}
		parts[rc.pack][rc.part] = m
	}
	return parallel(len(singles)+len(packs), maxParallel, func(i int) error {
		if i >= len(singles) {
			ps := packs[i-len(singles)]
			byPart := parts[ps]
			_, err := p.deadLetterParts(ctx, ps, slices.Sorted(maps.Keys(byPart)), func(part int) *deadLetterRecord {
				return record(byPart[part])
			})
			return err
		}
		m := singles[i]
		err := p.deadLetterHeld(ctx, m.Receipt.(*receipt), record(m), fmt.Sprintf("message %q of instance %q", m.ID, m.InstanceID))
		if errors.Is(err, core.ErrLockLost) {
			return nil
		}
		return err
	})
}

// deadLetterHeld writes the dead letter of a fetched message or work item
// and deletes it from its queue, but only while rc still locks it: with a
// stale receipt it writes nothing and returns an error wrapping
// core.ErrLockLost.
func (p *Provider) deadLetterHeld(ctx context.Context, rc *receipt, dl *deadLetterRecord, what string) error {
	// Extending the lock proves the receipt current (a stale one gets
	// PopReceiptMismatch, a deleted message MessageNotFound) and keeps the
	// item locked while its dead letter is written.
	lost, err := p.setVisibility(ctx, rc, deadLetterLock, 1, "lock for dead-lettering")
	switch {
	case err != nil:
		return err
	case lost:
		return fmt.Errorf("%w: %s was fetched again or deleted; it is not dead-lettered", core.ErrLockLost, what)
	}
	if err := p.writeDeadLetter(ctx, dl); err != nil {
		return err
	}
	// A delete that finds the item gone now has most likely retried a first
	// attempt that was applied (the lock was just extended). The dead letter
	// stands either way: a duplicate is safe, a lost message is not.
	return p.deleteMessage(ctx, rc, false)
}
