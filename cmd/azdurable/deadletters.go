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

func (a *app) deadLettersCommand() *cobra.Command {
	c := group(&cobra.Command{
		Use:     "deadletters",
		Aliases: []string{"deadletter", "dl"},
		Short:   "List, show, replay or discard poison messages",
		Long: `Dead letters are control messages and activity work items that could not be
decoded or failed too often. They wait here, with the reason, until an
operator replays them (sends them back to their queue) or discards them.`,
	})
	c.AddCommand(a.deadLetterListCommand(), a.deadLetterShowCommand(),
		a.deadLetterActionCommand("replay", "Send a dead letter back to the queue it came from and remove it",
			"Replayed dead letter %s to its queue.", (*ops.Hub).ReplayDeadLetter),
		a.deadLetterActionCommand("discard", "Delete a dead letter for good",
			"Discarded dead letter %s.", (*ops.Hub).DiscardDeadLetter))
	return c
}

func (a *app) deadLetterListCommand() *cobra.Command {
	var (
		pageSize int
		cont     string
		all      bool
	)
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List dead letters, oldest first",
		Args:    positional(),
	}
	c.Flags().IntVar(&pageSize, "page-size", 100, "dead letters per page, 1..1000")
	c.Flags().StringVar(&cont, "continuation", "", "continue a listing from the token a previous page printed")
	c.Flags().BoolVar(&all, "all", false, "list every page, not just one")
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		if pageSize < 1 || pageSize > 1000 {
			return usagef("--page-size %d is outside 1..1000", pageSize)
		}
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		var list []*core.DeadLetter
		for {
			page, err := h.Provider.ListDeadLetters(ctx, pageSize, cont)
			if err != nil {
				return err
			}
			list = append(list, page.DeadLetters...)
			cont = page.Continuation
			if !all || cont == "" {
				break
			}
		}
		if a.output == outputJSON {
			v := struct {
				DeadLetters  []*deadLetterView `json:"deadLetters"`
				Continuation string            `json:"continuation,omitempty"`
			}{DeadLetters: []*deadLetterView{}, Continuation: cont}
			for _, d := range list {
				v.DeadLetters = append(v.DeadLetters, deadLetterJSON(d))
			}
			return writeJSON(a.stdout, v)
		}
		if len(list) == 0 {
			fmt.Fprintln(a.stderr, "No dead letters.")
		} else {
			t := newTable(a.stdout, "ID", "QUEUE", "INSTANCE", "WHAT", "AT", "DEQUEUES", "REASON")
			for _, d := range list {
				t.row(d.ID, queueText(d.Partition), d.InstanceID, deadLetterWhat(d), timeText(d.At), strconv.Itoa(d.DequeueCount), cut(d.Reason, 60))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if cont != "" {
			fmt.Fprintf(a.stderr, "More dead letters: add --continuation %s (or --all for every page).\n", cont)
		}
		return nil
	})
	return c
}

func (a *app) deadLetterShowCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "show ID",
		Short: "Show a dead letter: its reason and the message it holds",
		Args:  positional("ID"),
	}
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		d, err := h.DeadLetter(ctx, args[0])
		if err != nil {
			return err
		}
		if a.output == outputJSON {
			return writeJSON(a.stdout, deadLetterJSON(d))
		}
		t := newTable(a.stdout)
		t.row("Dead letter:", d.ID)
		t.row("Queue:", queueText(d.Partition))
		if d.InstanceID != "" {
			t.row("Instance:", d.InstanceID)
		}
		t.row("What:", deadLetterWhat(d))
		t.row("At:", timeText(d.At))
		t.row("Dequeues:", strconv.Itoa(d.DequeueCount))
		t.row("Reason:", d.Reason)
		switch {
		case d.Message != nil && d.Message.Event != nil:
			t.row("Message id:", d.Message.ID)
			if len(d.Message.Event.Data) > 0 {
				t.row("Data:", payloadText(d.Message.Event.Data, 0))
			}
		case d.Activity != nil:
			t.row("Task:", strconv.FormatInt(d.Activity.TaskID, 10))
			if len(d.Activity.Input) > 0 {
				t.row("Input:", payloadText(d.Activity.Input, 0))
			}
		case len(d.Raw) > 0:
			t.row("Raw:", payloadText(d.Raw, 0))
		}
		return t.flush()
	})
	return c
}

func (a *app) deadLetterActionCommand(use, short, doneText string, do func(*ops.Hub, context.Context, string) error) *cobra.Command {
	c := &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  positional("ID"),
	}
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, args []string) error {
		id := args[0]
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		if err := do(h, ctx, id); err != nil {
			return err
		}
		return a.done(map[string]string{"id": id, "done": use}, doneText, id)
	})
	return c
}

// queueText names the queue a dead letter came from.
func queueText(partition int) string {
	if partition < 0 {
		return "work items"
	}
	return "control " + strconv.Itoa(partition)
}

// deadLetterWhat says what a dead letter holds.
func deadLetterWhat(d *core.DeadLetter) string {
	switch {
	case d.Message != nil && d.Message.Event != nil:
		s := d.Message.Event.Kind.String()
		if d.Message.Event.Name != "" {
			s += " " + strconv.Quote(d.Message.Event.Name)
		}
		return s
	case d.Activity != nil:
		return "activity " + strconv.Quote(d.Activity.Name)
	}
	return "undecodable"
}

// deadLetterView is a dead letter in JSON output.
type deadLetterView struct {
	ID           string    `json:"id"`
	Partition    int       `json:"partition"`
	Reason       string    `json:"reason"`
	InstanceID   string    `json:"instanceId,omitempty"`
	At           time.Time `json:"at"`
	DequeueCount int       `json:"dequeueCount"`
	What         string    `json:"what"`
	// Message, Activity or Raw: what it holds.
	Message  *core.Message      `json:"message,omitempty"`
	Activity *core.ActivityTask `json:"activity,omitempty"`
	Raw      any                `json:"raw,omitempty"`
}

func deadLetterJSON(d *core.DeadLetter) *deadLetterView {
	return &deadLetterView{ID: d.ID, Partition: d.Partition, Reason: d.Reason, InstanceID: d.InstanceID, At: d.At,
		DequeueCount: d.DequeueCount, What: deadLetterWhat(d), Message: d.Message, Activity: d.Activity, Raw: payload(d.Raw)}
}
