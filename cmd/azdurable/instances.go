package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

func (a *app) instancesCommand() *cobra.Command {
	c := group(&cobra.Command{
		Use:     "instances",
		Aliases: []string{"instance", "i"},
		Short:   "List, inspect and control orchestration instances",
	})
	c.AddCommand(a.listCommand(), a.showCommand(), a.historyCommand(), a.startCommand())
	c.AddCommand(a.instanceActions()...)
	return c
}

// instanceActions are the commands that act on instances; they live under
// 'instances' and, as shortcuts, at the top level.
func (a *app) instanceActions() []*cobra.Command {
	return []*cobra.Command{a.raiseCommand(), a.terminateCommand(), a.suspendCommand(), a.resumeCommand(),
		a.restartCommand(), a.purgeCommand()}
}

// instanceFilter is the filter flags shared by list and purge.
type instanceFilter struct {
	statuses              []string
	name, prefix          string
	createdAfter, created string
}

func (f *instanceFilter) register(c *cobra.Command, statusHelp string) {
	fl := c.Flags()
	fl.StringSliceVar(&f.statuses, "status", nil, statusHelp)
	fl.StringVar(&f.name, "name", "", "only instances of this orchestration")
	fl.StringVar(&f.prefix, "prefix", "", "only instances whose id starts with this")
	fl.StringVar(&f.createdAfter, "created-after", "", "only instances created at or after this time (RFC 3339, date, or duration ago: 24h)")
	fl.StringVar(&f.created, "created-before", "", "only instances created before this time (RFC 3339, date, or duration ago: 24h)")
	_ = c.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statusNames(), cobra.ShellCompDirectiveNoFileComp))
}

func statusNames() []string {
	var out []string
	for _, s := range core.AllStatuses {
		out = append(out, s.String())
	}
	return out
}

// set reports whether any filter flag was given.
func (f *instanceFilter) set() bool {
	return len(f.statuses) > 0 || f.name != "" || f.prefix != "" || f.createdAfter != "" || f.created != ""
}

func (f *instanceFilter) query(now time.Time) (core.InstanceQuery, error) {
	var q core.InstanceQuery
	var err error
	if q.Statuses, err = parseStatuses(f.statuses); err != nil {
		return q, err
	}
	q.Name, q.InstanceIDPrefix = f.name, f.prefix
	if f.name != "" {
		if err := core.ValidateName("--name", f.name); err != nil {
			return q, &usageError{err}
		}
	}
	if f.createdAfter != "" {
		if q.CreatedFrom, err = parsePastTime("created-after", f.createdAfter, now); err != nil {
			return q, err
		}
	}
	if f.created != "" {
		if q.CreatedTo, err = parsePastTime("created-before", f.created, now); err != nil {
			return q, err
		}
	}
	if !q.CreatedFrom.IsZero() && !q.CreatedTo.IsZero() && !q.CreatedFrom.Before(q.CreatedTo) {
		return q, usagef("--created-after (%s) must be before --created-before (%s)", timeText(q.CreatedFrom), timeText(q.CreatedTo))
	}
	return q, nil
}

func (a *app) listCommand() *cobra.Command {
	var (
		filter   instanceFilter
		pageSize int
		cont     string
		all      bool
	)
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List instances, with filters and paging",
		Args:    positional(),
	}
	filter.register(c, "only instances in these statuses (repeat or comma-separate): "+fmt.Sprint(statusNames()))
	c.Flags().IntVar(&pageSize, "page-size", 100, "instances per page, 1..1000")
	c.Flags().StringVar(&cont, "continuation", "", "continue a listing from the token a previous page printed")
	c.Flags().BoolVar(&all, "all", false, "list every page, not just one")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		q, err := filter.query(time.Now())
		if err != nil {
			return err
		}
		if pageSize < 1 || pageSize > 1000 {
			return usagef("--page-size %d is outside 1..1000", pageSize)
		}
		q.PageSize, q.Continuation = pageSize, cont
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		var list []*core.InstanceState
		for {
			page, err := h.Client.Query(ctx, q)
			if err != nil {
				return err
			}
			list = append(list, page.Instances...)
			q.Continuation = page.Continuation
			if !all || q.Continuation == "" {
				break
			}
		}
		return a.printInstances(list, q.Continuation)
	})
	return c
}

// listView is the JSON output of a listing.
type listView struct {
	Instances    []*instanceView `json:"instances"`
	Continuation string          `json:"continuation,omitempty"`
}

func (a *app) printInstances(list []*core.InstanceState, continuation string) error {
	if a.output == outputJSON {
		v := listView{Instances: []*instanceView{}, Continuation: continuation}
		for _, st := range list {
			v.Instances = append(v.Instances, instanceJSON(st))
		}
		return writeJSON(a.stdout, v)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stderr, "No instances found.")
	} else {
		t := newTable(a.stdout, "INSTANCE", "NAME", "VERSION", "STATUS", "CREATED", "UPDATED")
		for _, st := range list {
			t.row(st.InstanceID, st.Name, st.Version, st.Status.String(), timeText(st.CreatedAt), timeText(st.UpdatedAt))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if continuation != "" {
		fmt.Fprintf(a.stderr, "More instances: add --continuation %s (or --all for every page).\n", continuation)
	}
	return nil
}

// instanceView is an instance in JSON output.
type instanceView struct {
	InstanceID    string       `json:"instanceId"`
	Name          string       `json:"name"`
	Version       string       `json:"version,omitempty"`
	Status        string       `json:"status"`
	ExecutionID   string       `json:"executionId"`
	CreatedAt     time.Time    `json:"createdAt"`
	UpdatedAt     time.Time    `json:"updatedAt"`
	CompletedAt   time.Time    `json:"completedAt,omitzero"`
	Input         any          `json:"input,omitempty"`
	Output        any          `json:"output,omitempty"`
	CustomStatus  any          `json:"customStatus,omitempty"`
	Failure       *failureView `json:"failure,omitempty"`
	Parent        *parentView  `json:"parent,omitempty"`
	HistoryEvents int          `json:"historyEvents"`
	HistoryBytes  int64        `json:"historyBytes"`
}

type parentView struct {
	InstanceID  string `json:"instanceId"`
	ExecutionID string `json:"executionId"`
	TaskID      int64  `json:"taskId"`
	Name        string `json:"name,omitempty"`
}

func instanceJSON(st *core.InstanceState) *instanceView {
	v := &instanceView{InstanceID: st.InstanceID, Name: st.Name, Version: st.Version, Status: st.Status.String(),
		ExecutionID: st.ExecutionID, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt, CompletedAt: st.CompletedAt,
		Input: payload(st.Input), Output: payload(st.Output), CustomStatus: payload(st.CustomStatus),
		Failure: failureJSON(st.Failure), HistoryEvents: st.HistoryEvents, HistoryBytes: st.HistoryBytes}
	if p := st.Parent; p != nil {
		v.Parent = &parentView{InstanceID: p.InstanceID, ExecutionID: p.ExecutionID, TaskID: p.TaskID, Name: p.Name}
	}
	return v
}

func (a *app) showCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "show ID",
		Aliases: []string{"get"},
		Short:   "Show an instance's status, input, output and failure",
		Args:    positional("ID"),
	}
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
		id := args[0]
		h, err := a.instanceHub(ctx, id)
		if err != nil {
			return err
		}
		st, err := h.Client.GetInstance(ctx, id, true)
		if err != nil {
			return err
		}
		if a.output == outputJSON {
			return writeJSON(a.stdout, instanceJSON(st))
		}
		t := newTable(a.stdout)
		t.row("Instance:", st.InstanceID)
		t.row("Name:", st.Name)
		if st.Version != "" {
			t.row("Version:", st.Version)
		}
		t.row("Status:", st.Status.String())
		t.row("Execution:", st.ExecutionID)
		t.row("Created:", timeText(st.CreatedAt))
		t.row("Updated:", timeText(st.UpdatedAt))
		if !st.CompletedAt.IsZero() {
			t.row("Completed:", timeText(st.CompletedAt))
		}
		if p := st.Parent; p != nil {
			t.row("Parent:", fmt.Sprintf("%s (task %d of %s)", p.InstanceID, p.TaskID, p.Name))
		}
		t.row("History:", fmt.Sprintf("%d events, %d bytes", st.HistoryEvents, st.HistoryBytes))
		for _, f := range []struct {
			label string
			b     []byte
		}{{"Input:", st.Input}, {"Output:", st.Output}, {"Custom status:", st.CustomStatus}} {
			if len(f.b) > 0 {
				t.row(f.label, payloadText(f.b, 0))
			}
		}
		if st.Failure != nil {
			t.row("Failure:", failureText(st.Failure))
		}
		return t.flush()
	})
	return c
}

func (a *app) historyCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "history ID",
		Short: "Show the history of an instance's current execution as a timeline",
		Long: `Show the history of an instance's current execution as a timeline: one line
per activity, timer, sub-orchestration, external event and detached start,
with its start (as an offset from the start of the execution), its duration,
its status and its result, failure or child instance.`,
		Args: positional("ID"),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the spans as JSON (same as --output json)")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
		id := args[0]
		h, err := a.instanceHub(ctx, id)
		if err != nil {
			return err
		}
		st, err := h.Client.GetInstance(ctx, id, false)
		if err != nil {
			return err
		}
		history, err := h.Client.History(ctx, id)
		if err != nil {
			return err
		}
		spans := ops.Timeline(history)
		if asJSON || a.output == outputJSON {
			return writeJSON(a.stdout, timelineJSON(st, spans))
		}
		return printTimeline(a, st, spans)
	})
	return c
}

// spanView is a span in JSON output, with its offset from the start of the
// execution.
type spanView struct {
	Kind       string       `json:"kind"`
	Name       string       `json:"name,omitempty"`
	TaskID     int64        `json:"taskId"`
	Start      time.Time    `json:"start"`
	End        time.Time    `json:"end,omitzero"`
	OffsetMs   float64      `json:"offsetMs"`
	DurationMs float64      `json:"durationMs"`
	Status     string       `json:"status"`
	Input      any          `json:"input,omitempty"`
	Output     any          `json:"output,omitempty"`
	Failure    *failureView `json:"failure,omitempty"`
	ChildID    string       `json:"childId,omitempty"`
	FireAt     time.Time    `json:"fireAt,omitzero"`
}

type timelineView struct {
	InstanceID  string     `json:"instanceId"`
	Name        string     `json:"name"`
	ExecutionID string     `json:"executionId"`
	Status      string     `json:"status"`
	Spans       []spanView `json:"spans"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func timelineJSON(st *core.InstanceState, spans []ops.Span) timelineView {
	v := timelineView{InstanceID: st.InstanceID, Name: st.Name, ExecutionID: st.ExecutionID, Status: st.Status.String(), Spans: []spanView{}}
	origin := timelineOrigin(spans)
	for _, s := range spans {
		v.Spans = append(v.Spans, spanView{Kind: s.Kind, Name: s.Name, TaskID: s.TaskID, Start: s.Start, End: s.End,
			OffsetMs: ms(s.Start.Sub(origin)), DurationMs: ms(s.Duration()), Status: s.Status,
			Input: payload(s.Input), Output: payload(s.Output), Failure: failureJSON(s.Failure), ChildID: s.ChildID, FireAt: s.FireAt})
	}
	return v
}

func timelineOrigin(spans []ops.Span) time.Time {
	if len(spans) == 0 {
		return time.Time{}
	}
	return spans[0].Start
}

func printTimeline(a *app, st *core.InstanceState, spans []ops.Span) error {
	fmt.Fprintf(a.stdout, "Instance %s (%s), execution %s: %s\n", st.InstanceID, st.Name, st.ExecutionID, st.Status)
	if len(spans) == 0 {
		fmt.Fprintln(a.stdout, "No history yet: the instance has not started running.")
		return nil
	}
	origin := timelineOrigin(spans)
	fmt.Fprintf(a.stdout, "Started %s; offsets are from then.\n\n", timeText(origin))
	t := newTable(a.stdout, "KIND", "NAME", "TASK", "START", "DURATION", "STATUS", "DETAIL")
	for _, s := range spans {
		task := "-"
		if s.Kind != ops.KindExecution && !(s.Kind == ops.KindEvent && s.ChildID == "") {
			task = strconv.FormatInt(s.TaskID, 10)
		}
		dur := "-"
		if !s.End.IsZero() && s.Kind != ops.KindEvent && s.Kind != ops.KindDetached {
			dur = durationText(s.Duration())
		}
		t.row(s.Kind, s.Name, task, "+"+durationText(s.Start.Sub(origin)), dur, s.Status, spanDetail(s))
	}
	return t.flush()
}

// spanDetail is the most telling fact about a span: its failure, its child,
// its result or its data.
func spanDetail(s ops.Span) string {
	const width = 60
	switch {
	case s.Failure != nil:
		return cut(failureText(s.Failure), width)
	case s.Kind == ops.KindEvent && s.ChildID != "":
		return cut("sent to "+s.ChildID+" "+payloadText(s.Input, 0), width)
	case s.Kind == ops.KindEvent:
		return cut("data "+payloadText(s.Input, 0), width)
	case s.ChildID != "":
		return cut("child "+s.ChildID, width)
	case s.Kind == ops.KindTimer && !s.FireAt.IsZero():
		if s.Status == ops.StatusPending {
			return "fires " + timeText(s.FireAt)
		}
		return "due " + timeText(s.FireAt)
	case len(s.Output) > 0:
		return "→ " + payloadText(s.Output, width)
	case (s.Kind == ops.KindActivity || s.Kind == ops.KindSubOrchestration) && len(s.Input) > 0:
		return "← " + payloadText(s.Input, width)
	}
	return ""
}

func (a *app) startCommand() *cobra.Command {
	var id, input, version, startAt string
	c := &cobra.Command{
		Use:   "start NAME",
		Short: "Start an instance of an orchestration",
		Args:  positional("NAME"),
	}
	c.Flags().StringVar(&id, "id", "", "instance id (default: a random UUID)")
	c.Flags().StringVar(&input, "input", "", "input as JSON, for example '{\"n\":3}' or '\"text\"'")
	c.Flags().StringVar(&version, "version", "", "orchestration version (default: the latest the hosts have)")
	c.Flags().StringVar(&startAt, "start-at", "", "start later: an RFC 3339 time, or a duration from now (10m)")
	c.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		name := args[0]
		if err := core.ValidateName("orchestration name", name); err != nil {
			return &usageError{err}
		}
		var opts []core.StartOption
		if cmd.Flags().Changed("id") {
			if err := checkInstanceID(id); err != nil {
				return &usageError{fmt.Errorf("--id: %w", err)}
			}
			opts = append(opts, core.WithInstanceID(id))
		}
		if cmd.Flags().Changed("input") {
			b, err := parseJSONFlag("input", input)
			if err != nil {
				return err
			}
			opts = append(opts, core.WithInput(core.RawPayload(b)))
		}
		if version != "" {
			opts = append(opts, core.WithVersion(version))
		}
		if startAt != "" {
			t, err := parseFutureTime("start-at", startAt, time.Now())
			if err != nil {
				return err
			}
			opts = append(opts, core.WithStartAt(t))
		}
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		a.warnIfUnregistered(ctx, h, name, version)
		started, err := h.Client.Start(ctx, name, opts...)
		if err != nil {
			return err
		}
		if a.output == outputJSON {
			return writeJSON(a.stdout, map[string]string{"instanceId": started})
		}
		fmt.Fprintln(a.stdout, started)
		return nil
	})
	return c
}

// warnIfUnregistered warns when live hosts exist and none of them has the
// orchestration: the start would wait in its queue until a host has it.
func (a *app) warnIfUnregistered(ctx context.Context, h *ops.Hub, name, version string) {
	hosts, err := h.Client.Hosts(ctx)
	if err != nil || len(hosts) == 0 {
		return
	}
	for _, host := range hosts {
		for _, o := range host.Orchestrations {
			if o.Name == name && (version == "" || o.Version == version) {
				return
			}
		}
	}
	what := fmt.Sprintf("orchestration %q", name)
	if version != "" {
		what += fmt.Sprintf(" version %q", version)
	}
	fmt.Fprintf(a.stderr, "warning: none of the %d live hosts has registered %s ('azdurable hosts' lists what they have): the start waits in the queue, and the instance does not exist, until a host that has it runs it\n", len(hosts), what)
}
