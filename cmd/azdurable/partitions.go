package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/ops"
)

func (a *app) partitionsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "partitions",
		Aliases: []string{"partition", "p"},
		Short:   "Show each partition's owner, lease state and epoch, queue depth and oldest message age",
		Long: `Show each partition's lease (owner host, state, epoch) and its control
queue (approximate depth, counting locked and delayed messages, and the age
of the oldest visible message), then the shared work-item queue.

Lease states: leased (a host owns the partition), expired (its owner stopped
renewing: it is stuck or dead, and another host takes over), free (never
leased, or released).`,
		Args: positional(),
	}
	c.RunE = a.runE(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		h, err := a.openHub(ctx)
		if err != nil {
			return err
		}
		parts, queues, err := h.Partitions(ctx)
		if err != nil {
			return err
		}
		var work ops.QueueInfo
		for _, q := range queues {
			if q.Partition < 0 {
				work = q
			}
		}
		if a.output == outputJSON {
			v := struct {
				Partitions []partitionView `json:"partitions"`
				WorkItems  queueView       `json:"workItems"`
			}{Partitions: []partitionView{}, WorkItems: queueJSON(work)}
			for _, p := range parts {
				v.Partitions = append(v.Partitions, partitionView{Partition: p.Partition, Owner: p.Owner, LeaseState: p.LeaseState,
					Epoch: p.Epoch, QueueDepth: p.QueueDepth, OldestMessageAgeSeconds: p.OldestMessageAge.Seconds()})
			}
			return writeJSON(a.stdout, v)
		}
		t := newTable(a.stdout, "PARTITION", "OWNER", "LEASE", "EPOCH", "QUEUE", "OLDEST")
		for _, p := range parts {
			owner := p.Owner
			if owner == "" {
				owner = "-"
			}
			t.row(strconv.Itoa(p.Partition), owner, p.LeaseState, strconv.FormatInt(p.Epoch, 10), strconv.Itoa(p.QueueDepth), ageText(p.OldestMessageAge))
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "\nWork items (%s): %d queued, oldest %s.\n", work.Name, work.Depth, ageText(work.OldestMessageAge))
		return nil
	})
	return c
}

type partitionView struct {
	Partition               int     `json:"partition"`
	Owner                   string  `json:"owner"`
	LeaseState              string  `json:"leaseState"`
	Epoch                   int64   `json:"epoch"`
	QueueDepth              int     `json:"queueDepth"`
	OldestMessageAgeSeconds float64 `json:"oldestMessageAgeSeconds"`
}

type queueView struct {
	Name                    string  `json:"name"`
	Depth                   int     `json:"depth"`
	OldestMessageAgeSeconds float64 `json:"oldestMessageAgeSeconds"`
}

func queueJSON(q ops.QueueInfo) queueView {
	return queueView{Name: q.Name, Depth: q.Depth, OldestMessageAgeSeconds: q.OldestMessageAge.Seconds()}
}

// ageText is a message age for a table; "-" when no message is visible.
func ageText(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return durationText(d)
}
