package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/core"
)

// done reports a command's effect: a sentence for people, an object for scripts.
func (a *app) done(view any, format string, args ...any) error {
	if a.output == outputJSON {
		return writeJSON(a.stdout, view)
	}
	_, err := fmt.Fprintf(a.stdout, format+"\n", args...)
	return err
}

func (a *app) raiseCommand() *cobra.Command {
	var data string
	c := &cobra.Command{
		Use:   "raise ID EVENT",
		Short: "Send an external event to a running instance",
		Args:  positional("ID", "EVENT"),
	}
	c.Flags().StringVar(&data, "data", "", "event data as JSON, for example '{\"approved\":true}'")
	c.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		id, event := args[0], args[1]
		if err := core.ValidateName("event name", event); err != nil {
			return &usageError{err}
		}
		var payload core.RawPayload
		if cmd.Flags().Changed("data") {
			b, err := parseJSONFlag("data", data)
			if err != nil {
				return err
			}
			payload = b
		}
		h, err := a.instanceHub(ctx, id)
		if err != nil {
			return err
		}
		if err := h.Client.RaiseEvent(ctx, id, event, payload); err != nil {
			return err
		}
		return a.done(map[string]string{"instanceId": id, "event": event}, "Raised event %q on instance %s.", event, id)
	})
	return c
}

func (a *app) terminateCommand() *cobra.Command {
	var (
		reason    string
		recursive bool
	)
	c := &cobra.Command{
		Use:   "terminate ID",
		Short: "Terminate a running instance",
		Args:  positional("ID"),
	}
	c.Flags().StringVar(&reason, "reason", "", "why; recorded as the instance's output")
	c.Flags().BoolVar(&recursive, "recursive", false, "terminate its running sub-orchestrations too")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
		id := args[0]
		h, err := a.instanceHub(ctx, id)
		if err != nil {
			return err
		}
		if err := h.Client.Terminate(ctx, id, reason, recursive); err != nil {
			return err
		}
		return a.done(map[string]any{"instanceId": id, "recursive": recursive},
			"Terminating instance %s; it ends at its next episode.", id)
	})
	return c
}

// holdCommand builds suspend and resume.
func (a *app) holdCommand(use, short, doneText string, do func(c *core.Client, ctx context.Context, id, reason string) error) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  positional("ID"),
	}
	c.Flags().StringVar(&reason, "reason", "", "why; recorded in the history")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
		id := args[0]
		h, err := a.instanceHub(ctx, id)
		if err != nil {
			return err
		}
		if err := do(h.Client, ctx, id, reason); err != nil {
			return err
		}
		return a.done(map[string]string{"instanceId": id}, doneText, id)
	})
	return c
}

func (a *app) suspendCommand() *cobra.Command {
	return a.holdCommand("suspend", "Suspend a running instance: events it receives wait until it is resumed",
		"Suspending instance %s.", (*core.Client).Suspend)
}

func (a *app) resumeCommand() *cobra.Command {
	return a.holdCommand("resume", "Resume a suspended instance",
		"Resuming instance %s.", (*core.Client).Resume)
}

func (a *app) restartCommand() *cobra.Command {
	var newID bool
	c := &cobra.Command{
		Use:   "restart ID",
		Short: "Run an ended instance again with its original name, version and input",
		Long: `Run an ended instance again with its original name, version and input.
Without --new-id the ended instance is replaced under the same id; with
--new-id a new instance starts (the old one may still be running) and its id
is printed.`,
		Args: positional("ID"),
	}
	c.Flags().BoolVar(&newID, "new-id", false, "start a new instance with a random id instead of replacing this one")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
		id := args[0]
		h, err := a.instanceHub(ctx, id)
		if err != nil {
			return err
		}
		started, err := h.Client.Restart(ctx, id, newID)
		if err != nil {
			return err
		}
		if a.output == outputJSON {
			return writeJSON(a.stdout, map[string]string{"instanceId": started, "restartedFrom": id})
		}
		fmt.Fprintln(a.stdout, started)
		return nil
	})
	return c
}
