package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

// terminalStatuses are the statuses purge deletes.
var terminalStatuses = []core.Status{core.StatusCompleted, core.StatusFailed, core.StatusTerminated}

func (a *app) purgeCommand() *cobra.Command {
	var (
		filter instanceFilter
		dryRun bool
	)
	c := &cobra.Command{
		Use:   "purge [ID...]",
		Short: "Delete ended instances and their histories, by id or by filter",
		Long: `Delete ended (Completed, Failed or Terminated) instances with their
histories: the instances named, or every ended instance matching the filter
flags. Running instances are never purged. With --dry-run, list what would
be deleted and delete nothing.`,
		Args: cobra.ArbitraryArgs,
	}
	filter.register(c, "only ended instances in these statuses: Completed, Failed, Terminated (default: all three)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be purged; delete nothing")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, ids []string) error {
		switch {
		case len(ids) > 0 && filter.set():
			return usagef("give instance ids or filter flags (--status, --name, --prefix, --created-after, --created-before), not both")
		case len(ids) == 0 && !filter.set():
			return usagef("purge needs instance ids, or at least one filter flag (--status, --name, --prefix, --created-after, --created-before); '--status Completed,Failed,Terminated' selects every ended instance")
		}
		for _, id := range ids {
			if err := checkInstanceID(id); err != nil {
				return err
			}
		}
		q, err := filter.query(time.Now())
		if err != nil {
			return err
		}
		for _, s := range q.Statuses {
			if !s.IsTerminal() {
				return usagef("--status %s: purge deletes only ended instances (Completed, Failed, Terminated)", s)
			}
		}
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return a.purgeIDs(ctx, h, ids, dryRun)
		}
		if dryRun {
			return a.purgeDryRun(ctx, h, q)
		}
		n, err := h.Client.PurgeWhere(ctx, q)
		if err != nil {
			return err
		}
		return a.done(map[string]int{"purged": n}, "Purged %d instances.", n)
	})
	return c
}

// purgeDryRun lists the instances PurgeWhere would delete: the ended ones
// matching the filter.
func (a *app) purgeDryRun(ctx context.Context, h *ops.Hub, q core.InstanceQuery) error {
	if len(q.Statuses) == 0 {
		q.Statuses = terminalStatuses
	}
	q.PageSize = 1000
	var list []*core.InstanceState
	for {
		page, err := h.Client.Query(ctx, q)
		if err != nil {
			return err
		}
		list = append(list, page.Instances...)
		if q.Continuation = page.Continuation; q.Continuation == "" {
			break
		}
	}
	if a.output == outputJSON {
		v := struct {
			DryRun    bool            `json:"dryRun"`
			Count     int             `json:"count"`
			Instances []*instanceView `json:"instances"`
		}{DryRun: true, Count: len(list), Instances: []*instanceView{}}
		for _, st := range list {
			v.Instances = append(v.Instances, instanceJSON(st))
		}
		return writeJSON(a.stdout, v)
	}
	if len(list) > 0 {
		if err := a.printInstances(list, ""); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "Dry run: %d instances would be purged; nothing was deleted.\n", len(list))
	return nil
}

// purgeResult is the outcome for one instance id.
type purgeResult struct {
	InstanceID string `json:"instanceId"`
	Status     string `json:"status,omitempty"`
	// Purged (or, in a dry run, would be purged).
	Purged bool   `json:"purged"`
	Error  string `json:"error,omitempty"`
}

// purgeIDs purges each instance (or, in a dry run, checks that it could)
// and reports each; it fails when any could not be purged.
func (a *app) purgeIDs(ctx context.Context, h *ops.Hub, ids []string, dryRun bool) error {
	var (
		results []purgeResult
		failed  []error
	)
	for _, id := range ids {
		r := purgeResult{InstanceID: id}
		st, err := h.Client.GetInstance(ctx, id, false)
		switch {
		case err != nil:
		case !st.Status.IsTerminal():
			r.Status = st.Status.String()
			err = fmt.Errorf("%w: instance %q is %s", core.ErrNotTerminal, id, st.Status)
		case dryRun:
			r.Status, r.Purged = st.Status.String(), true
		default:
			r.Status = st.Status.String()
			if err = h.Client.Purge(ctx, id); err == nil {
				r.Purged = true
			}
		}
		if err != nil {
			r.Error = err.Error()
			failed = append(failed, err)
		}
		results = append(results, r)
	}
	if a.output == outputJSON {
		v := struct {
			DryRun  bool          `json:"dryRun"`
			Results []purgeResult `json:"results"`
		}{DryRun: dryRun, Results: results}
		if err := writeJSON(a.stdout, v); err != nil {
			return err
		}
	} else {
		verb := "purged"
		if dryRun {
			verb = "would be purged"
		}
		t := newTable(a.stdout, "INSTANCE", "STATUS", "RESULT")
		for _, r := range results {
			res := verb
			if r.Error != "" {
				res = "not purged: " + r.Error
			}
			t.row(r.InstanceID, r.Status, res)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if dryRun {
			fmt.Fprintln(a.stdout, "Dry run: nothing was deleted.")
		}
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return failed[0]
	}
	return fmt.Errorf("%d of %d instances were not purged: %w", len(failed), len(ids), errors.Join(failed...))
}
