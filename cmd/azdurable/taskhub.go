package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/ops"
)

func (a *app) taskHubCommand() *cobra.Command {
	c := group(&cobra.Command{
		Use:     "taskhub",
		Aliases: []string{"hub"},
		Short:   "Create, delete or describe the task hub",
	})
	c.AddCommand(a.taskHubCreateCommand(), a.taskHubDeleteCommand(), a.taskHubInfoCommand())
	return c
}

func (a *app) taskHubCreateCommand() *cobra.Command {
	var partitions int
	c := &cobra.Command{
		Use:   "create",
		Short: "Create the task hub's table, queues and containers",
		Long: `Create the task hub's table, queues and containers. The partition count is
fixed at creation: every host must be configured with the same count.
Creating a task hub that exists with the same count changes nothing.`,
		Args: positional(),
	}
	c.Flags().IntVar(&partitions, "partitions", 16, "partition count, 1..256; it cannot change later")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		name, err := a.hubName()
		if err != nil {
			return err
		}
		if partitions < 1 || partitions > 256 {
			return usagef("--partitions %d is outside 1..256", partitions)
		}
		opts := azprovider.Options{ConnectionString: a.connectionString(), TaskHub: name, Partitions: partitions}
		info, err := azprovider.ReadTaskHub(ctx, opts)
		switch {
		case err == nil && info.Partitions != partitions:
			return usagef("task hub %q already exists with %d partitions; the count cannot change: use --partitions %d, or delete the task hub first", name, info.Partitions, info.Partitions)
		case err == nil:
			return a.done(map[string]any{"taskHub": name, "partitions": partitions, "created": false},
				"Task hub %s already exists with %d partitions; nothing changed.", name, partitions)
		case !errors.Is(err, ops.ErrTaskHubNotFound):
			return err
		}
		opts.CreateIfMissing = true
		if _, err := azprovider.New(ctx, opts); err != nil {
			return err
		}
		return a.done(map[string]any{"taskHub": name, "partitions": partitions, "created": true},
			"Created task hub %s with %d partitions.", name, partitions)
	})
	return c
}

func (a *app) taskHubDeleteCommand() *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "delete",
		Short: "Delete the task hub with all its instances, histories, messages and dead letters",
		Args:  positional(),
	}
	c.Flags().BoolVar(&yes, "yes", false, "confirm the deletion; it cannot be undone")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		name, err := a.hubName()
		if err != nil {
			return err
		}
		if !yes {
			return usagef("deleting task hub %s deletes all its instances, histories, messages and dead letters for good: pass --yes to confirm", name)
		}
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		if hosts, err := h.Client.Hosts(ctx); err == nil && len(hosts) > 0 {
			fmt.Fprintf(a.stderr, "warning: %d hosts are still running against task hub %s; stop them, or they fail once its storage is gone\n", len(hosts), name)
		}
		if err := h.Provider.DeleteTaskHub(ctx); err != nil {
			return err
		}
		return a.done(map[string]any{"taskHub": name, "deleted": true}, "Deleted task hub %s.", name)
	})
	return c
}

// hubInfoView is the output of taskhub info.
type hubInfoView struct {
	TaskHub         string    `json:"taskHub"`
	Partitions      int       `json:"partitions"`
	CreatedAt       time.Time `json:"createdAt"`
	FormatVersion   int       `json:"formatVersion"`
	ControlMessages int       `json:"controlMessages"`
	WorkItems       int       `json:"workItems"`
	LiveHosts       int       `json:"liveHosts"`
	// DeadLetters counts up to maxDeadLetterCount; DeadLettersMore says
	// there are more.
	DeadLetters     int  `json:"deadLetters"`
	DeadLettersMore bool `json:"deadLettersMore,omitempty"`
}

const maxDeadLetterCount = 1000

func (a *app) taskHubInfoCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "info",
		Short: "Describe the task hub: partitions, creation time, queued messages, hosts, dead letters",
		Args:  positional(),
	}
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		info, err := h.Provider.TaskHubInfo(ctx)
		if err != nil {
			return err
		}
		v := hubInfoView{TaskHub: info.Name, Partitions: info.Partitions, CreatedAt: info.CreatedAt, FormatVersion: info.FormatVersion}
		queues, err := h.Queues(ctx)
		if err != nil {
			return err
		}
		for _, q := range queues {
			if q.Partition < 0 {
				v.WorkItems += q.Depth
			} else {
				v.ControlMessages += q.Depth
			}
		}
		hosts, err := h.Client.Hosts(ctx)
		if err != nil {
			return err
		}
		v.LiveHosts = len(hosts)
		dl, err := h.Provider.ListDeadLetters(ctx, maxDeadLetterCount, "")
		if err != nil {
			return err
		}
		v.DeadLetters, v.DeadLettersMore = len(dl.DeadLetters), dl.Continuation != ""
		if a.output == outputJSON {
			return writeJSON(a.stdout, v)
		}
		dead := strconv.Itoa(v.DeadLetters)
		if v.DeadLettersMore {
			dead += " or more"
		}
		t := newTable(a.stdout)
		t.row("Task hub:", v.TaskHub)
		t.row("Partitions:", strconv.Itoa(v.Partitions))
		t.row("Created:", timeText(v.CreatedAt))
		t.row("Format version:", strconv.Itoa(v.FormatVersion))
		t.row("Control messages:", strconv.Itoa(v.ControlMessages))
		t.row("Work items:", strconv.Itoa(v.WorkItems))
		t.row("Live hosts:", strconv.Itoa(v.LiveHosts))
		t.row("Dead letters:", dead)
		return t.flush()
	})
	return c
}
