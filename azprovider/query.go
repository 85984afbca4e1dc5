package azprovider

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// Queries read RowKey ranges of every partition in parallel: X|<status>|
// ranges when the query filters by status or creation time (one range per
// status and partition, narrowed by the time bounds), else the I| range
// (narrowed to I|<escaped prefix> for a prefix). A page takes rows from the
// ranges in order; the continuation records, per range, where to resume: an
// opaque, compressed base64 JSON document.

const (
	defaultPageSize = 100
	maxPageSize     = 1000
	queryFormat     = 1
)

type queryCursor struct {
	P     int    `json:"p"`
	R     int    `json:"r"`           // range within the partition: the status index on the X path
	After string `json:"a,omitempty"` // resume after this key
	// The service's continuation, where it stopped scanning (opaque: Azurite
	// and Azure encode it), when the last page was taken whole.
	NextPK string `json:"np,omitempty"`
	NextRK string `json:"nr,omitempty"`
}

type queryToken struct {
	V       int           `json:"v"`
	Q       string        `json:"q"` // fingerprint of the query the token belongs to
	Cursors []queryCursor `json:"c"`
}

// queryPlan is a query turned into ranges and filters.
type queryPlan struct {
	q        core.InstanceQuery
	index    bool          // X| ranges, else I|
	statuses []core.Status // X path: one range per status
	filter   string        // extra server-side filter
}

func (p *Provider) planQuery(q core.InstanceQuery) *queryPlan {
	qp := &queryPlan{q: q}
	if len(q.Statuses) > 0 || !q.CreatedFrom.IsZero() || !q.CreatedTo.IsZero() {
		qp.index = true
		qp.statuses = q.Statuses
		if len(qp.statuses) == 0 {
			qp.statuses = core.AllStatuses
		}
		qp.statuses = slices.Clone(qp.statuses)
		slices.Sort(qp.statuses)
		qp.statuses = slices.Compact(qp.statuses)
	}
	if q.Name != "" {
		qp.filter = "Name eq " + odataString(q.Name)
	}
	return qp
}

func (qp *queryPlan) nranges() int {
	if qp.index {
		return len(qp.statuses)
	}
	return 1
}

// bounds is the key range [lo, hi) of range r.
func (qp *queryPlan) bounds(r int) (lo, hi string) {
	if !qp.index {
		lo = "I|" + escapeKey(qp.q.InstanceIDPrefix)
		return lo, prefixEnd(lo)
	}
	prefix := indexStatusPrefix(qp.statuses[r])
	lo, hi = prefix, prefixEnd(prefix)
	if !qp.q.CreatedFrom.IsZero() {
		lo = prefix + timeKey(qp.q.CreatedFrom)
	}
	if !qp.q.CreatedTo.IsZero() {
		hi = prefix + timeKey(qp.q.CreatedTo)
	}
	return lo, hi
}

// fingerprint identifies the query, so a continuation is not used with another.
func (qp *queryPlan) fingerprint(n int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d|%v|%q|%q|%d|%d|%v", n, qp.statuses, qp.q.Name, qp.q.InstanceIDPrefix,
		qp.q.CreatedFrom.UnixNano(), qp.q.CreatedTo.UnixNano(), qp.index)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// matches checks a state against the query (the ranges can be supersets).
func (qp *queryPlan) matches(st *core.InstanceState) bool {
	q := qp.q
	switch {
	case q.Name != "" && st.Name != q.Name,
		!strings.HasPrefix(st.InstanceID, q.InstanceIDPrefix),
		!q.CreatedFrom.IsZero() && st.CreatedAt.Before(storedTime(q.CreatedFrom)),
		!q.CreatedTo.IsZero() && !st.CreatedAt.Before(storedTime(q.CreatedTo)),
		len(q.Statuses) > 0 && !slices.Contains(q.Statuses, st.Status):
		return false
	}
	return true
}

func encodeToken(t *queryToken) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}

func decodeToken(s string) (*queryToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 16<<20))
	if err != nil {
		return nil, err
	}
	var t queryToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// QueryInstances lists instances matching the query, one page at a time.
func (p *Provider) QueryInstances(ctx context.Context, q core.InstanceQuery) (*core.InstancePage, error) {
	qp := p.planQuery(q)
	pageSize := q.PageSize
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	pageSize = min(pageSize, maxPageSize)
	fp := qp.fingerprint(p.n)
	var cursors []queryCursor
	if q.Continuation == "" {
		for part := range p.n {
			for r := range qp.nranges() {
				cursors = append(cursors, queryCursor{P: part, R: r})
			}
		}
	} else {
		t, err := decodeToken(q.Continuation)
		if err != nil || t.V != queryFormat || t.Q != fp {
			return nil, fmt.Errorf("%w: malformed continuation token, or a token of another query", core.ErrInvalidInput)
		}
		for _, c := range t.Cursors {
			if c.P < 0 || c.P >= p.n || c.R < 0 || c.R >= qp.nranges() {
				return nil, fmt.Errorf("%w: malformed continuation token", core.ErrInvalidInput)
			}
		}
		cursors = t.Cursors
	}

	sel := ""
	if !qp.index && !q.WithPayloads {
		sel = stateColumns
	}
	var picked []row
	remaining := pageSize
	done := make([]bool, len(cursors))
	next := 0 // cursors before next are done or were read this page
	for remaining > 0 && next < len(cursors) {
		batch := make([]int, 0, maxParallel)
		for i := next; i < len(cursors) && len(batch) < maxParallel; i++ {
			if !done[i] {
				batch = append(batch, i)
			}
		}
		if len(batch) == 0 {
			break
		}
		per := min(max((remaining+len(batch)-1)/len(batch), 1), maxPageSize)
		type result struct {
			rows           []row
			nextPK, nextRK string
		}
		results := make([]result, len(batch))
		err := parallel(len(batch), maxParallel, func(k int) error {
			c := cursors[batch[k]]
			rows, npk, nrk, err := p.readCursor(ctx, qp, c, per, sel)
			results[k] = result{rows, npk, nrk}
			return err
		})
		if err != nil {
			return nil, err
		}
		for k, i := range batch {
			res := results[k]
			take := min(len(res.rows), remaining)
			picked = append(picked, res.rows[:take]...)
			remaining -= take
			c := &cursors[i]
			switch {
			case take == 0 && len(res.rows) > 0:
				// The page is full: resume this cursor where it was.
			case take == len(res.rows) && res.nextPK == "" && res.nextRK == "":
				done[i] = true
			case take == len(res.rows):
				if take > 0 {
					c.After = res.rows[take-1].rowKey()
				}
				c.NextPK, c.NextRK = res.nextPK, res.nextRK
			default:
				c.After, c.NextPK, c.NextRK = res.rows[take-1].rowKey(), "", ""
			}
		}
		// The cursors of this round are resumed next round only if they still have rows.
		for next < len(cursors) && done[next] {
			next++
		}
	}

	states, err := p.pageStates(ctx, qp, picked)
	if err != nil {
		return nil, err
	}
	page := &core.InstancePage{Instances: states}
	var rest []queryCursor
	for i, c := range cursors {
		if !done[i] {
			rest = append(rest, c)
		}
	}
	if len(rest) > 0 {
		tok, err := encodeToken(&queryToken{V: queryFormat, Q: fp, Cursors: rest})
		if err != nil {
			return nil, err
		}
		page.Continuation = tok
	}
	return page, nil
}

// readCursor reads one page of up to top rows of a cursor's range, and
// returns the service's continuation ("" when the range is exhausted).
func (p *Provider) readCursor(ctx context.Context, qp *queryPlan, c queryCursor, top int, sel string) ([]row, string, string, error) {
	lo, hi := qp.bounds(c.R)
	filter := rangeFilter(p.pk(c.P), lo, hi)
	if c.After != "" {
		filter += " and RowKey gt " + odataString(c.After)
	}
	if qp.filter != "" {
		filter += " and (" + qp.filter + ")"
	}
	t := int32(top)
	opts := &aztables.ListEntitiesOptions{Filter: &filter, Top: &t}
	if sel != "" {
		opts.Select = &sel
	}
	if c.NextPK != "" || c.NextRK != "" {
		opts.NextPartitionKey, opts.NextRowKey = &c.NextPK, &c.NextRK
	}
	page, err := p.table.NewListEntitiesPager(opts).NextPage(ctx)
	if err != nil {
		return nil, "", "", p.storageErr("query instances", p.tableResource(c.P, ""), err)
	}
	rows := make([]row, 0, len(page.Entities))
	for _, b := range page.Entities {
		r, err := parseRow(b)
		if err != nil {
			return nil, "", "", err
		}
		rows = append(rows, r)
	}
	return rows, deref(page.NextPartitionKey), deref(page.NextRowKey), nil
}

// pageStates turns the rows of a page into instance states: on the X path
// by reading the instance rows.
func (p *Provider) pageStates(ctx context.Context, qp *queryPlan, rows []row) ([]*core.InstanceState, error) {
	states := make([]*core.InstanceState, len(rows))
	err := parallel(len(rows), maxParallel, func(i int) error {
		r := rows[i]
		if qp.index {
			id := r.str("InstanceID")
			if !strings.HasPrefix(id, qp.q.InstanceIDPrefix) {
				return nil
			}
			ir, err := p.readInstanceRow(ctx, p.PartitionOf(id), id)
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			r = ir
		}
		st, err := p.decodeState(ctx, r, qp.q.WithPayloads)
		if err != nil {
			return err
		}
		if qp.matches(st) {
			states[i] = st
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := states[:0]
	for _, st := range states {
		if st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// PurgeInstances purges every terminal instance matching the filter and
// returns how many it purged.
func (p *Provider) PurgeInstances(ctx context.Context, filter core.InstanceQuery) (int, error) {
	var statuses []core.Status
	for _, s := range core.AllStatuses {
		if s.IsTerminal() && (len(filter.Statuses) == 0 || slices.Contains(filter.Statuses, s)) {
			statuses = append(statuses, s)
		}
	}
	if len(statuses) == 0 {
		return 0, nil
	}
	q := filter
	q.Statuses, q.PageSize, q.Continuation, q.WithPayloads = statuses, maxPageSize, "", false
	purged := 0
	for {
		page, err := p.QueryInstances(ctx, q)
		if err != nil {
			return purged, err
		}
		counts := make([]bool, len(page.Instances))
		err = parallel(len(page.Instances), maxParallel, func(i int) error {
			err := p.PurgeInstance(ctx, page.Instances[i].InstanceID)
			switch {
			case err == nil:
				counts[i] = true
			case isNotFound(err), errors.Is(err, core.ErrNotTerminal):
			default:
				return err
			}
			return nil
		})
		for _, ok := range counts {
			if ok {
				purged++
			}
		}
		if err != nil {
			return purged, err
		}
		if page.Continuation == "" {
			return purged, nil
		}
		q.Continuation = page.Continuation
	}
}
