package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/core"
)

func (a *app) hostsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "hosts",
		Short: "List the live hosts and the orchestrations and activities each has registered",
		Long: `List the hosts that published a host record in the last minute, with the
partitions they run and the orchestrations and activities (with versions)
they have registered.`,
		Args: positional(),
	}
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		hosts, err := h.Client.Hosts(ctx)
		if err != nil {
			return err
		}
		if a.output == outputJSON {
			if hosts == nil {
				hosts = []core.HostInfo{}
			}
			return writeJSON(a.stdout, map[string]any{"hosts": hosts})
		}
		if len(hosts) == 0 {
			fmt.Fprintln(a.stderr, "No live hosts: no host has published a record in the last minute.")
			return nil
		}
		for i, host := range hosts {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			t := newTable(a.stdout)
			t.row("Host:", host.ID)
			t.row("Started:", timeText(host.StartedAt))
			t.row("Last seen:", timeText(host.LastSeen))
			t.row("Partitions:", intsText(host.Partitions))
			t.row("Orchestrations:", registrationsText(host.Orchestrations))
			t.row("Activities:", registrationsText(host.Activities))
			if err := t.flush(); err != nil {
				return err
			}
		}
		return nil
	})
	return c
}

// registrationsText lists registrations as name or name@version.
func registrationsText(regs []core.NameVersion) string {
	if len(regs) == 0 {
		return "-"
	}
	parts := make([]string, len(regs))
	for i, r := range regs {
		parts[i] = r.Name
		if r.Version != "" {
			parts[i] += "@" + r.Version
		}
	}
	return strings.Join(parts, ", ")
}

func intsText(v []int) string {
	if len(v) == 0 {
		return "-"
	}
	return strings.Trim(fmt.Sprint(v), "[]")
}
