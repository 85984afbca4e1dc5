package azprovider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// The instance row (I|<inst>) holds the InstanceState as typed properties:
//
//	InstanceID, Exec, Name, Version, Status (by name)   strings
//	CreatedAt, UpdatedAt, CompletedAt                    DateTime (100 ns)
//	Parent                                               JSON string
//	HistoryEvents, HistoryBytes, NextSeq                 Int64
//	Input, Output, CustomStatus, Failure (JSON)          Binary ≤ 64 KiB, or
//	  <name>Blob + <name>Hash                            a blob and its SHA-256
//	XKey                                                 the instance's X| row
//	HasTimers, HasActivities, TimersBlob, ActivitiesBlob its T| and A| rows
//	InlineInputs                                         tasks whose input the A| row holds
//	CommitID                                             unique per commit
//
// CommitID tells, after a retried transaction was rejected, whether an
// earlier try of it was applied. NextSeq is the Seq of the next history
// event of the current execution.

// payloadProps are the instance row's properties that may go to blobs; the
// first three are the payloads a query returns only WithPayloads.
var payloadProps = []string{"Input", "Output", "CustomStatus", "Failure"}

// stateColumns are the instance row's properties without payloads, for $select.
const stateColumns = "RowKey,InstanceID,Exec,Name,Version,Status,CreatedAt,UpdatedAt,CompletedAt,Parent,HistoryEvents,HistoryBytes,NextSeq,Failure,FailureBlob"

// metaKey names one version of an instance row.
type metaKey struct {
	instance string
	etag     string
}

// instanceMeta is what a commit must know about the instance row it
// replaces: which rows and blobs the new version drops.
type instanceMeta struct {
	exec     string
	name     string // kept in the X| row for queries by name
	nextSeq  int64
	xKey     string
	blobs    map[string]blobRef // by property: the payloads, "Timers", "Activities"
	timers   bool               // a T| row exists
	acts     bool               // an A| row exists
	commitID string
	// inline are the pending activities whose input the A| row holds
	// because the history does not (see pending.go).
	inline map[int64]bool
}

type blobRef struct {
	name string
	hash string
}

func payloadHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// readInstanceRow reads an instance row; ErrInstanceNotFound when absent.
func (p *Provider) readInstanceRow(ctx context.Context, partition int, id string) (row, error) {
	resp, err := p.table.GetEntity(ctx, p.pk(partition), instanceKey(id), nil)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("%w: %q", core.ErrInstanceNotFound, id)
		}
		return nil, p.storageErr("read instance", p.tableResource(partition, id), err)
	}
	r, err := parseRow(resp.Value)
	if err != nil {
		return nil, err
	}
	if r.etag() == "" {
		r["odata.etag"], _ = json.Marshal(string(resp.ETag))
	}
	return r, nil
}

// decodeMeta reads the commit-relevant facts of an instance row.
func decodeMeta(r row) (*instanceMeta, error) {
	m := &instanceMeta{exec: r.str("Exec"), name: r.str("Name"), xKey: r.str("XKey"), timers: r.boolean("HasTimers"),
		acts: r.boolean("HasActivities"), commitID: r.str("CommitID"), blobs: map[string]blobRef{}}
	var err error
	if m.nextSeq, err = r.i64("NextSeq"); err != nil {
		return nil, err
	}
	for _, name := range payloadProps {
		if b := r.str(name + "Blob"); b != "" {
			m.blobs[name] = blobRef{name: b, hash: r.str(name + "Hash")}
		}
	}
	inline, err := r.chunks("InlineInputs")
	if err != nil {
		return nil, err
	}
	if len(inline) > 0 {
		m.inline = map[int64]bool{}
		for f := range strings.SplitSeq(string(inline), ",") {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("property InlineInputs: %w", err)
			}
			m.inline[n] = true
		}
	}
	if b := r.str("TimersBlob"); b != "" {
		m.blobs["Timers"] = blobRef{name: b}
	}
	if b := r.str("ActivitiesBlob"); b != "" {
		m.blobs["Activities"] = blobRef{name: b}
	}
	return m, nil
}

// decodeState reads the InstanceState of an instance row; payloads only
// when withPayloads (reading spilled ones from their blobs).
func (p *Provider) decodeState(ctx context.Context, r row, withPayloads bool) (*core.InstanceState, error) {
	st := &core.InstanceState{InstanceID: r.str("InstanceID"), ExecutionID: r.str("Exec"), Name: r.str("Name"), Version: r.str("Version")}
	if err := st.Status.UnmarshalText([]byte(r.str("Status"))); err != nil {
		return nil, fmt.Errorf("instance %q: %w", st.InstanceID, err)
	}
	var err error
	if st.CreatedAt, err = r.time("CreatedAt"); err != nil {
		return nil, err
	}
	if st.UpdatedAt, err = r.time("UpdatedAt"); err != nil {
		return nil, err
	}
	if st.CompletedAt, err = r.time("CompletedAt"); err != nil {
		return nil, err
	}
	if s := r.str("Parent"); s != "" {
		st.Parent = &core.ParentRef{}
		if err := json.Unmarshal([]byte(s), st.Parent); err != nil {
			return nil, fmt.Errorf("instance %q: parent: %w", st.InstanceID, err)
		}
	}
	n, err := r.i64("HistoryEvents")
	if err != nil {
		return nil, err
	}
	st.HistoryEvents = int(n)
	if st.HistoryBytes, err = r.i64("HistoryBytes"); err != nil {
		return nil, err
	}
	// The failure is always returned; input, output and custom status only
	// with payloads.
	names := payloadProps[3:]
	if withPayloads {
		names = payloadProps
	}
	values := make([][]byte, len(names))
	var blobs []string
	var blobIdx []int
	for i, name := range names {
		if b := r.str(name + "Blob"); b != "" {
			blobs = append(blobs, b)
			blobIdx = append(blobIdx, i)
			continue
		}
		if values[i], err = r.bin(name); err != nil {
			return nil, err
		}
	}
	got, err := p.getBlobs(ctx, blobs)
	if err != nil {
		return nil, err
	}
	for k, i := range blobIdx {
		values[i] = got[k]
	}
	if withPayloads {
		st.Input, st.Output, st.CustomStatus = values[0], values[1], values[2]
	}
	if f := values[len(values)-1]; len(f) > 0 {
		st.Failure = &core.Failure{}
		if err := json.Unmarshal(f, st.Failure); err != nil {
			return nil, fmt.Errorf("instance %q: failure: %w", st.InstanceID, err)
		}
	}
	return st, nil
}

// LoadInstance reads the instance row (a point read) and the history of its
// current execution (a range query): two storage operations, plus one blob
// read per spilled payload or history chunk.
func (p *Provider) LoadInstance(ctx context.Context, partition int, instanceID string) (*core.InstanceSnapshot, error) {
	if err := p.checkPartition(partition); err != nil {
		return nil, err
	}
	if err := p.checkRoute(partition, instanceID); err != nil {
		return nil, err
	}
	r, m, hist, err := p.readInstance(ctx, partition, instanceID)
	if err != nil {
		return nil, err
	}
	st, err := p.decodeState(ctx, r, true)
	if err != nil {
		return nil, err
	}
	p.meta.Add(metaKey{instanceID, r.etag()}, m)
	return &core.InstanceSnapshot{State: st, History: hist, Token: core.CommitToken(r.etag())}, nil
}

// GetInstance reads an instance's state.
func (p *Provider) GetInstance(ctx context.Context, instanceID string, withPayloads bool) (*core.InstanceState, error) {
	if err := core.ValidateInstanceID(instanceID, 0); err != nil {
		return nil, err
	}
	r, err := p.readInstanceRow(ctx, p.PartitionOf(instanceID), instanceID)
	if err != nil {
		return nil, err
	}
	return p.decodeState(ctx, r, withPayloads)
}

// GetHistory reads the history of the instance's current execution.
func (p *Provider) GetHistory(ctx context.Context, instanceID string) ([]*core.Event, error) {
	if err := core.ValidateInstanceID(instanceID, 0); err != nil {
		return nil, err
	}
	_, _, hist, err := p.readInstance(ctx, p.PartitionOf(instanceID), instanceID)
	return hist, err
}

// historyReadTries bounds how often readInstance starts again when a new
// execution replaced the history between its two reads.
const historyReadTries = 3

// readInstance reads the instance row, then the history of its execution,
// and returns the history as of that row. A commit between the two reads
// only appends events, which are left out; a continue-as-new in between
// drops the execution's rows, and the reads start again.
func (p *Provider) readInstance(ctx context.Context, partition int, id string) (row, *instanceMeta, []*core.Event, error) {
	for try := 1; ; try++ {
		r, err := p.readInstanceRow(ctx, partition, id)
		if err != nil {
			return nil, nil, nil, err
		}
		m, err := decodeMeta(r)
		if err != nil {
			return nil, nil, nil, err
		}
		hist, err := p.readHistory(ctx, partition, id, m.exec, m.nextSeq)
		if errors.Is(err, errHistoryReplaced) && try < historyReadTries {
			continue
		}
		return r, m, hist, err
	}
}

// errHistoryReplaced: the execution's history had fewer events than its
// instance row (read just before) counts.
var errHistoryReplaced = errors.New("the execution's history was replaced while it was read")

// readHistory reads the H| rows of one execution and returns its first next
// events, checking that they are in order.
func (p *Provider) readHistory(ctx context.Context, partition int, id, exec string, next int64) ([]*core.Event, error) {
	prefix := historyPrefix(id, exec)
	rows, err := p.queryRange(ctx, partition, prefix, prefixEnd(prefix), "", "")
	if err != nil {
		return nil, p.storageErr("read history", p.tableResource(partition, id), err)
	}
	data, err := p.rowValues(ctx, rows)
	if err != nil {
		return nil, err
	}
	var events []*core.Event
	for i, b := range data {
		evs, err := core.DecodeEvents(b)
		if err != nil {
			return nil, fmt.Errorf("instance %q: history row %s: %w", id, rows[i].rowKey(), err)
		}
		events = append(events, evs...)
	}
	for i, ev := range events {
		if ev.Seq != int64(i) {
			return nil, fmt.Errorf("instance %q: history of execution %q is corrupt: event %d has seq %d", id, exec, i, ev.Seq)
		}
	}
	if int64(len(events)) < next {
		return nil, fmt.Errorf("instance %q: %w: execution %q has %d events; the instance row expects %d", id, errHistoryReplaced, exec, len(events), next)
	}
	// Events past next were committed after the instance row was read.
	return events[:next], nil
}

// rowValues reads the chunked value ("D" properties, or the blob named by
// "Blob") of each row, reading blobs in parallel.
func (p *Provider) rowValues(ctx context.Context, rows []row) ([][]byte, error) {
	out := make([][]byte, len(rows))
	err := parallel(len(rows), maxParallel, func(i int) error {
		var err error
		if b := rows[i].str("Blob"); b != "" {
			out[i], err = p.getBlob(ctx, b)
		} else {
			out[i], err = rows[i].chunks("D")
		}
		return err
	})
	return out, err
}

// queryRange reads every row of a partition whose RowKey is in [from, to),
// optionally with an extra filter and a $select.
func (p *Provider) queryRange(ctx context.Context, partition int, from, to, extra, sel string) ([]row, error) {
	filter := rangeFilter(p.pk(partition), from, to)
	if extra != "" {
		filter += " and (" + extra + ")"
	}
	return p.queryAll(ctx, filter, sel)
}

func (p *Provider) queryAll(ctx context.Context, filter, sel string) ([]row, error) {
	opts := &aztables.ListEntitiesOptions{Filter: &filter}
	if sel != "" {
		opts.Select = &sel
	}
	pager := p.table.NewListEntitiesPager(opts)
	var rows []row
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range page.Entities {
			r, err := parseRow(b)
			if err != nil {
				return nil, err
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// rangeFilter selects RowKeys in [from, to) of one partition; an empty to
// means no upper bound.
func rangeFilter(pk, from, to string) string {
	f := "PartitionKey eq " + odataString(pk) + " and RowKey ge " + odataString(from)
	if to != "" {
		f += " and RowKey lt " + odataString(to)
	}
	return f
}

// odataString quotes a string literal for an OData filter.
func odataString(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			b = append(b, '\'')
		}
		b = append(b, s[i])
	}
	return string(append(b, '\''))
}

// isNotFound reports ErrInstanceNotFound.
func isNotFound(err error) bool { return errors.Is(err, core.ErrInstanceNotFound) }
