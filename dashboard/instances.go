package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// listFilter is the instance list's form, as the page shows it back.
type listFilter struct {
	Statuses map[string]bool
	Name     string
	Prefix   string
	From, To string
	Size     int
}

type statusChoice struct {
	Name    string
	Checked bool
}

type instancesData struct {
	Filter   listFilter
	Choices  []statusChoice
	Error    string
	Rows     []instanceRow
	NextURL  string
	FirstURL string
	Paged    bool // not the first page
}

type instanceRow struct {
	*core.InstanceState
	Partition int
}

// timeLayouts are the forms a created-range bound may take; all are UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

func parseUTC(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is not a time: use 2006-01-02T15:04 (UTC) or RFC 3339", field, s)
}

// parseFilter reads the instance list's query parameters into a query.
func parseFilter(q url.Values) (listFilter, core.InstanceQuery, error) {
	f := listFilter{Statuses: map[string]bool{}, Name: strings.TrimSpace(q.Get("name")), Prefix: q.Get("prefix"),
		From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), Size: defaultPageSize}
	iq := core.InstanceQuery{Name: f.Name, InstanceIDPrefix: f.Prefix, Continuation: q.Get("page")}
	for _, s := range q["status"] {
		st, err := core.ParseStatus(s)
		if err != nil {
			return f, iq, err
		}
		if !f.Statuses[st.String()] {
			f.Statuses[st.String()] = true
			iq.Statuses = append(iq.Statuses, st)
		}
	}
	if s := q.Get("size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return f, iq, fmt.Errorf("page size %q: use a number from 1 to %d", s, maxPageSize)
		}
		f.Size = n
	}
	iq.PageSize = f.Size
	var err error
	if iq.CreatedFrom, err = parseUTC("created from", f.From); err != nil {
		return f, iq, err
	}
	if iq.CreatedTo, err = parseUTC("created to", f.To); err != nil {
		return f, iq, err
	}
	if !iq.CreatedFrom.IsZero() && !iq.CreatedTo.IsZero() && !iq.CreatedFrom.Before(iq.CreatedTo) {
		return f, iq, fmt.Errorf("created from (%s) must be before created to (%s)", f.From, f.To)
	}
	return f, iq, nil
}

func (h *handler) instances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, iq, err := parseFilter(q)
	d := instancesData{Filter: f}
	for _, s := range core.AllStatuses {
		d.Choices = append(d.Choices, statusChoice{Name: s.String(), Checked: f.Statuses[s.String()]})
	}
	if err != nil {
		d.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, "instances", "Instances", "instances", d)
		return
	}
	page, err := h.hub.Client.Query(r.Context(), iq)
	if err != nil {
		h.failErr(w, r, "List instances", err)
		return
	}
	for _, st := range page.Instances {
		d.Rows = append(d.Rows, instanceRow{InstanceState: st, Partition: h.hub.Provider.PartitionOf(st.InstanceID)})
	}
	q.Del("page")
	q.Del("done")
	d.FirstURL = "instances?" + q.Encode()
	d.Paged = iq.Continuation != ""
	if page.Continuation != "" {
		q.Set("page", page.Continuation)
		d.NextURL = "instances?" + q.Encode()
	}
	h.render(w, r, http.StatusOK, "instances", "Instances", "instances", d)
}

type instanceData struct {
	State     *core.InstanceState
	Partition int
	Gantt     *gantt
	History   []*core.Event
	// Actions the state allows (shown to operators only).
	CanControl, CanSuspend, CanResume, CanPurge bool
}

func (h *handler) instance(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	ctx := r.Context()
	st, err := h.hub.Client.GetInstance(ctx, id, true)
	if err != nil {
		h.failErr(w, r, fmt.Sprintf("Instance %q", id), err)
		return
	}
	hist, err := h.hub.Client.History(ctx, id)
	if err != nil {
		h.failErr(w, r, fmt.Sprintf("History of instance %q", id), err)
		return
	}
	d := instanceData{State: st, Partition: h.hub.Provider.PartitionOf(id), History: hist,
		Gantt:      layoutGantt(ops.Timeline(hist), h.now()),
		CanControl: !st.Status.IsTerminal(), CanPurge: st.Status.IsTerminal(),
		CanSuspend: slices.Contains([]core.Status{core.StatusPending, core.StatusRunning}, st.Status),
		CanResume:  st.Status == core.StatusSuspended}
	h.render(w, r, http.StatusOK, "instance", "Instance "+id, "instances", d)
}
