package azprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// Planning lays an episode out as the operations of one transaction: it
// validates the episode against the row version its token names, decides
// which payloads and rows go to blobs, and spills more until the episode fits
// 100 operations and maxTxBytes.

// dataRow is a row whose value (history events, pending timers or
// activities, an outbox unit) is kept in the row or, when it does not fit,
// in a blob the row names.
type dataRow struct {
	rk     string
	kind   string // blob name part
	data   []byte
	props  func(e *entity)
	blob   string
	action aztables.TransactionType
}

func (d *dataRow) entity(pk string) *entity {
	e := newEntity(pk, d.rk)
	if d.props != nil {
		d.props(e)
	}
	if d.blob != "" {
		e.str("Blob", d.blob)
	} else {
		e.chunks("D", d.data)
	}
	return e
}

// spill moves the row's value to a new blob of the instance.
func (d *dataRow) spill(id string) {
	if d.blob == "" {
		d.blob = instanceBlobName(id, d.kind)
	}
}

// planner holds one episode's layout while it is being decided.
type planner struct {
	p        *Provider
	pl       *epPlan
	pk       string
	payloads [][]byte   // by payloadProps
	rows     []*dataRow // history chunks, then T|, A|, O|
	timers   *dataRow
	acts     *dataRow
}

// planEpisode validates an episode and lays out its transaction.
func (p *Provider) planEpisode(ctx context.Context, partition int, ep *core.Episode) (*epPlan, error) {
	old, base, err := p.checkEpisode(ctx, partition, ep)
	if err != nil {
		return nil, err
	}
	id, st := ep.InstanceID, ep.State
	pl := &epPlan{ep: ep, old: old, uploads: map[string][]byte{}, meta: &instanceMeta{exec: st.ExecutionID, name: st.Name,
		nextSeq: base + int64(len(ep.History)), commitID: core.NewID(), blobs: map[string]blobRef{},
		xKey: indexKey(st.Status, st.CreatedAt, id)}}
	if old != nil && ep.NewExecution {
		pl.dropExec = old.exec
	}
	pn := &planner{p: p, pl: pl, pk: p.pk(partition)}
	if err := pn.planPayloads(); err != nil {
		return nil, err
	}
	if err := pn.planRows(); err != nil {
		return nil, err
	}
	if err := pn.fit(); err != nil {
		return nil, err
	}
	return pl, nil
}

// checkEpisode validates an episode and returns what the commit replaces
// (nil for a new instance) and the Seq its history must start at.
func (p *Provider) checkEpisode(ctx context.Context, partition int, ep *core.Episode) (*instanceMeta, int64, error) {
	if ep == nil || ep.State == nil {
		return nil, 0, fmt.Errorf("%w: episode without state", core.ErrInvalidInput)
	}
	id, st := ep.InstanceID, ep.State
	if err := p.checkRoute(partition, id); err != nil {
		return nil, 0, err
	}
	switch _, err := st.Status.MarshalText(); {
	case st.InstanceID != id:
		return nil, 0, fmt.Errorf("%w: episode of instance %q carries the state of %q", core.ErrInvalidInput, id, st.InstanceID)
	case st.ExecutionID == "":
		return nil, 0, fmt.Errorf("%w: episode of instance %q has no execution id", core.ErrInvalidInput, id)
	case err != nil:
		return nil, 0, fmt.Errorf("%w: episode of instance %q: %v", core.ErrInvalidInput, id, err)
	case len(ep.Outbox) > 0 && ep.OutboxID == "":
		return nil, 0, fmt.Errorf("%w: episode of instance %q has an outbox without OutboxID", core.ErrInvalidInput, id)
	}
	var old *instanceMeta
	if ep.Token != "" {
		var err error
		if old, err = p.oldMeta(ctx, partition, id, ep.Token); err != nil {
			return nil, 0, err
		}
	}
	var base int64
	if old != nil && !ep.NewExecution {
		base = old.nextSeq
	}
	// An episode that does not continue the version its token names was
	// built from another version: a stale token (a conflict), or a bug.
	var mismatch error
	switch {
	case old != nil && !ep.NewExecution && st.ExecutionID != old.exec:
		mismatch = fmt.Errorf("%w: episode of instance %q changes the execution from %q to %q without NewExecution", core.ErrInvalidInput, id, old.exec, st.ExecutionID)
	case old != nil && ep.NewExecution && st.ExecutionID == old.exec:
		mismatch = fmt.Errorf("%w: episode of instance %q starts a new execution with the old execution id %q", core.ErrInvalidInput, id, old.exec)
	}
	for i, ev := range ep.History {
		if mismatch == nil && (ev == nil || ev.Seq != base+int64(i)) {
			mismatch = fmt.Errorf("%w: episode of instance %q: history event %d has seq %v, want %d", core.ErrInvalidInput, id, i, seqOf(ev), base+int64(i))
		}
	}
	if mismatch != nil {
		if old != nil && !p.tokenCurrent(ctx, partition, id, ep.Token) {
			return nil, 0, fmt.Errorf("%w: instance %q (partition %d)", core.ErrConflict, id, partition)
		}
		return nil, 0, mismatch
	}
	for _, ev := range ep.History {
		if err := p.checkPayload(fmt.Sprintf("data of history event %d of instance %q", ev.Seq, id), ev.Data); err != nil {
			return nil, 0, err
		}
	}
	for _, m := range ep.Outbox {
		if m == nil || m.Event == nil {
			return nil, 0, fmt.Errorf("%w: episode of instance %q has an empty outbox message", core.ErrInvalidInput, id)
		}
		if err := p.checkPayload(fmt.Sprintf("event data of outbox message %q of instance %q", m.ID, id), m.Event.Data); err != nil {
			return nil, 0, err
		}
	}
	return old, base, nil
}

func seqOf(ev *core.Event) any {
	if ev == nil {
		return "nil"
	}
	return ev.Seq
}

// planPayloads keeps payloads up to 64 KiB in the instance row and puts
// larger ones in new blobs, except that an unchanged payload keeps its blob.
func (pn *planner) planPayloads() error {
	pl, st, m, old := pn.pl, pn.pl.ep.State, pn.pl.meta, pn.pl.old
	id := st.InstanceID
	var failure []byte
	if st.Failure != nil {
		var err error
		if failure, err = json.Marshal(st.Failure); err != nil {
			return fmt.Errorf("%w: instance %q: failure: %v", core.ErrInvalidInput, id, err)
		}
	}
	pn.payloads = [][]byte{st.Input, st.Output, st.CustomStatus, failure}
	for i, name := range payloadProps {
		b := pn.payloads[i]
		if err := pn.p.checkPayload(fmt.Sprintf("%s of instance %q", strings.ToLower(name), id), b); err != nil {
			return err
		}
		if len(b) <= maxInlinePayload {
			continue
		}
		h := payloadHash(b)
		if old != nil && old.blobs[name].hash == h {
			m.blobs[name] = old.blobs[name]
			continue
		}
		ref := blobRef{name: instanceBlobName(id, strings.ToLower(name)), hash: h}
		pl.uploads[ref.name] = b
		m.blobs[name] = ref
	}
	if old != nil {
		for _, name := range payloadProps {
			if ref := old.blobs[name]; ref.name != "" && m.blobs[name].name != ref.name {
				pl.drop = append(pl.drop, ref.name)
			}
		}
	}
	return nil
}

// planRows builds the history chunk rows and, when they changed, the T|,
// A| and O| rows.
func (pn *planner) planRows() error {
	pl, ep, m, old := pn.pl, pn.pl.ep, pn.pl.meta, pn.pl.old
	id, exec := ep.InstanceID, ep.State.ExecutionID
	newExec := old == nil || ep.NewExecution
	hist, err := historyRows(id, exec, ep.History)
	if err != nil {
		return err
	}
	pn.rows = hist
	if newExec || len(ep.TimersAdded)+len(ep.TimersRemoved) > 0 {
		m.timers = len(ep.PendingTimers) > 0
		if old != nil && old.blobs["Timers"].name != "" {
			pl.drop = append(pl.drop, old.blobs["Timers"].name)
		}
		if m.timers {
			if pn.timers, err = timersRow(id, exec, ep.PendingTimers); err != nil {
				return err
			}
			pn.rows = append(pn.rows, pn.timers)
		}
	} else {
		m.timers, m.blobs["Timers"] = old.timers, old.blobs["Timers"]
	}
	if newExec || len(ep.ActivitiesAdded)+len(ep.ActivitiesRemoved) > 0 {
		m.acts = len(ep.PendingActivities) > 0
		if old != nil && old.blobs["Activities"].name != "" {
			pl.drop = append(pl.drop, old.blobs["Activities"].name)
		}
		if m.acts {
			m.inline = inlineInputs(ep, old)
			if pn.acts, err = activitiesRow(id, exec, ep.PendingActivities, m.inline); err != nil {
				return err
			}
			pn.rows = append(pn.rows, pn.acts)
		}
	} else {
		m.acts, m.blobs["Activities"], m.inline = old.acts, old.blobs["Activities"], old.inline
	}
	if len(ep.Outbox) > 0 {
		out, err := outboxRow(id, ep.OutboxID, ep.Outbox)
		if err != nil {
			return err
		}
		pn.rows = append(pn.rows, out)
	}
	for _, d := range pn.rows {
		if len(d.data) > maxInlineBytes {
			d.spill(id)
		}
	}
	return nil
}

// fit builds the operations, spilling the largest row kept inline until the
// episode fits one transaction, and records the blobs to write.
func (pn *planner) fit() error {
	pl := pn.pl
	id := pl.ep.InstanceID
	for {
		ops, err := pn.fixedOps()
		if err != nil {
			return err
		}
		var largest *dataRow
		largestBytes := 0
		for _, d := range pn.rows {
			op, err := pn.op(d.entity(pn.pk), d.action, roleWrite, nil)
			if err != nil {
				return err
			}
			ops = append(ops, op)
			if d.blob == "" && op.bytes > largestBytes {
				largest, largestBytes = d, op.bytes
			}
		}
		bytes := 0
		for _, op := range ops {
			bytes += op.bytes
		}
		if bytes <= maxTxBytes && len(ops) <= maxBatchOps {
			pl.ops, pl.bytes = ops, bytes
			break
		}
		if largest == nil {
			return fmt.Errorf("%w: instance %q: the episode does not fit one transaction (%d operations, %d bytes)", core.ErrInvalidInput, id, len(ops), bytes)
		}
		largest.spill(id)
	}
	for _, d := range pn.rows {
		if d.blob != "" {
			pl.uploads[d.blob] = d.data
			if d.kind == "outbox" {
				pl.outboxBlob = d.blob
			}
		}
	}
	return nil
}

// op turns an entity into a transaction operation of the episode.
func (pn *planner) op(e *entity, t aztables.TransactionType, role opRole, ifMatch *azcore.ETag) (*txOp, error) {
	b, err := e.marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: instance %q: %v", core.ErrInvalidInput, pn.pl.ep.InstanceID, err)
	}
	return &txOp{action: aztables.TransactionAction{ActionType: t, Entity: b, IfMatch: ifMatch},
		bytes: len(b) + opOverhead + 3*len(e.rk), role: role, plan: pn.pl}, nil
}

// fixedOps are the instance row (first: a conflict must be the first
// failure of the transaction), the index change and the deletes of pending
// rows whose set became empty.
func (pn *planner) fixedOps() ([]*txOp, error) {
	pl, m, old, pk := pn.pl, pn.pl.meta, pn.pl.old, pn.pk
	id := pl.ep.InstanceID
	if pn.timers != nil && pn.timers.blob != "" {
		m.blobs["Timers"] = blobRef{name: pn.timers.blob}
	}
	if pn.acts != nil && pn.acts.blob != "" {
		m.blobs["Activities"] = blobRef{name: pn.acts.blob}
	}
	type spec struct {
		e       *entity
		t       aztables.TransactionType
		role    opRole
		ifMatch *azcore.ETag
	}
	specs := []spec{{e: instanceEntity(pk, pl.ep.State, m, pn.payloads), t: aztables.TransactionTypeAdd, role: roleInstance}}
	if old != nil {
		tok := azcore.ETag(pl.ep.Token)
		specs[0].t, specs[0].ifMatch = aztables.TransactionTypeUpdateReplace, &tok
	}
	if old == nil || old.xKey != m.xKey || old.name != m.name {
		if old != nil && old.xKey != "" && old.xKey != m.xKey {
			specs = append(specs, spec{e: newEntity(pk, old.xKey), t: aztables.TransactionTypeDelete, role: roleOptionalDelete})
		}
		xe := newEntity(pk, m.xKey)
		xe.str("InstanceID", id)
		xe.str("Name", pl.ep.State.Name)
		xe.time("CreatedAt", pl.ep.State.CreatedAt)
		specs = append(specs, spec{e: xe, t: aztables.TransactionTypeInsertReplace, role: roleWrite})
	}
	if old != nil && old.timers && !m.timers {
		specs = append(specs, spec{e: newEntity(pk, timersKey(id)), t: aztables.TransactionTypeDelete, role: roleOptionalDelete})
	}
	if old != nil && old.acts && !m.acts {
		specs = append(specs, spec{e: newEntity(pk, activitiesKey(id)), t: aztables.TransactionTypeDelete, role: roleOptionalDelete})
	}
	ops := make([]*txOp, len(specs))
	for i, s := range specs {
		var err error
		if ops[i], err = pn.op(s.e, s.t, s.role, s.ifMatch); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// inlineInputs decides which pending activities keep their input in the A|
// row: a task dispatched by this episode whose ActivityScheduled event (same
// task, same data) is not in the episode's history, and a task carried over
// whose input the row held before.
func inlineInputs(ep *core.Episode, old *instanceMeta) map[int64]bool {
	scheduled := map[int64][]byte{}
	for _, ev := range ep.History {
		if ev.Kind == core.EventActivityScheduled {
			scheduled[ev.TaskID] = ev.Data
		}
	}
	added := map[int64]bool{}
	for _, a := range ep.ActivitiesAdded {
		added[a.TaskID] = true
	}
	var inline map[int64]bool
	for _, a := range ep.PendingActivities {
		var keep bool
		if added[a.TaskID] {
			data, ok := scheduled[a.TaskID]
			keep = !ok || !bytes.Equal(data, a.Input)
		} else {
			keep = old != nil && old.inline[a.TaskID] && !ep.NewExecution
		}
		if keep {
			if inline == nil {
				inline = map[int64]bool{}
			}
			inline[a.TaskID] = true
		}
	}
	return inline
}

// instanceEntity builds the instance row.
func instanceEntity(pk string, st *core.InstanceState, m *instanceMeta, payloads [][]byte) *entity {
	e := newEntity(pk, instanceKey(st.InstanceID))
	e.str("InstanceID", st.InstanceID)
	e.str("Exec", st.ExecutionID)
	e.str("Name", st.Name)
	if st.Version != "" {
		e.str("Version", st.Version)
	}
	e.str("Status", st.Status.String())
	e.time("CreatedAt", st.CreatedAt)
	e.time("UpdatedAt", st.UpdatedAt)
	e.time("CompletedAt", st.CompletedAt)
	if st.Parent != nil {
		b, _ := json.Marshal(st.Parent)
		e.str("Parent", string(b))
	}
	e.i64("HistoryEvents", int64(st.HistoryEvents))
	e.i64("HistoryBytes", st.HistoryBytes)
	e.i64("NextSeq", m.nextSeq)
	e.str("XKey", m.xKey)
	e.str("CommitID", m.commitID)
	for i, name := range payloadProps {
		switch b := payloads[i]; {
		case m.blobs[name].name != "":
			e.str(name+"Blob", m.blobs[name].name)
			e.str(name+"Hash", m.blobs[name].hash)
		case len(b) > 0:
			e.bin(name, b)
		}
	}
	e.boolean("HasTimers", m.timers)
	e.boolean("HasActivities", m.acts)
	if m.timers && m.blobs["Timers"].name != "" {
		e.str("TimersBlob", m.blobs["Timers"].name)
	}
	if m.acts && m.blobs["Activities"].name != "" {
		e.str("ActivitiesBlob", m.blobs["Activities"].name)
	}
	if m.acts && len(m.inline) > 0 {
		tasks := make([]string, 0, len(m.inline))
		for t := range m.inline {
			tasks = append(tasks, strconv.FormatInt(t, 10))
		}
		slices.Sort(tasks)
		e.chunks("InlineInputs", []byte(strings.Join(tasks, ",")))
	}
	return e
}

// historyRows packs new history events into chunk rows of at most
// maxInlineBytes of encoded events each (a single larger event gets its own
// row, spilled to a blob). When the chunks would not fit one transaction,
// the whole history of the episode goes to one row, spilled to a blob.
func historyRows(id, exec string, events []*core.Event) ([]*dataRow, error) {
	// Each event is encoded once: its size decides the chunks, and the
	// chunks are put together from the encodings (encodeEventRun).
	enc := make([][]byte, len(events))
	var groups [][]int // index ranges [from, to) of events
	from, size := 0, 0
	for i, ev := range events {
		b, err := ev.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%w: instance %q: encode history event %d: %v", core.ErrInvalidInput, id, ev.Seq, err)
		}
		enc[i] = b
		if i > from && size+len(b)+1 > maxInlineBytes-64 {
			groups = append(groups, []int{from, i})
			from, size = i, 0
		}
		size += len(b) + 1
	}
	if len(events) > from {
		groups = append(groups, []int{from, len(events)})
	}
	merged := len(groups) > maxBatchOps-8
	if merged {
		groups = [][]int{{0, len(events)}}
	}
	rows := make([]*dataRow, len(groups))
	for i, g := range groups {
		run := events[g[0]:g[1]]
		rows[i] = &dataRow{rk: historyKey(id, exec, run[0].Seq), kind: "history", data: encodeEventRun(enc[g[0]:g[1]]),
			props: historyProps(run), action: aztables.TransactionTypeAdd}
		if merged {
			rows[i].spill(id)
		}
	}
	return rows, nil
}

// encodeEventRun puts encoded events together as core.EncodeEvents does
// (TestEncodeEventRunMatchesCore checks that the bytes are the same).
func encodeEventRun(enc [][]byte) []byte {
	n := 32
	for _, b := range enc {
		n += len(b) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, `{"v":`...)
	out = strconv.AppendInt(out, core.EventFormatVersion, 10)
	out = append(out, `,"events":[`...)
	for i, b := range enc {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, "]}"...)
}

func historyProps(events []*core.Event) func(e *entity) {
	first, n := events[0].Seq, len(events)
	return func(e *entity) {
		e.i64("First", first)
		e.i64("Count", int64(n))
	}
}
