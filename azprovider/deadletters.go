package azprovider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
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

var errNoDeadLetter = errors.New("no such dead letter")

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
			return nil, fmt.Errorf("%w: %w: %q", core.ErrInvalidInput, errNoDeadLetter, id)
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

// DiscardDeadLetter deletes a dead letter and its blob. A dead letter
// already gone is not an error.
func (p *Provider) DiscardDeadLetter(ctx context.Context, id string) error {
	r, err := p.readDeadLetter(ctx, id)
	if err != nil {
		if errors.Is(err, errNoDeadLetter) {
			return nil
		}
		return err
	}
	if _, err := p.table.DeleteEntity(ctx, deadLetterPK, id, nil); err != nil && !isStatus(err, http.StatusNotFound) {
		return p.storageErr("delete dead letter", "table "+p.tableName, err)
	}
	if b := r.str("Blob"); b != "" {
		p.deleteBlobs(ctx, []string{b})
	}
	return nil
}
