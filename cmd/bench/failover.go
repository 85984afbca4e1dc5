package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/azdurable/azdurable/test/cluster"
)

// FailoverResult is how long ownership takes to settle after each event,
// with worker processes at their default lease settings.
type FailoverResult struct {
	Partitions int `json:"partitions"`
	// Seconds by event, in the order they are run.
	Events []FailoverEvent `json:"events"`
}

// FailoverEvent is one measured event.
type FailoverEvent struct {
	Event   string  `json:"event"`
	Seconds float64 `json:"seconds"`
}

// failover starts worker processes (default settings) on a task hub of its
// own and times: a lone host taking every partition; a second host joining
// it once it is steady; a third joining two; a SIGTERM of the third (from
// its exit until the others own everything); a kill -9 of the second (until
// the first owns everything: a lease expiry).
func (e *env) failover(ctx context.Context, partitions int, prog *progress) (*FailoverResult, error) {
	cl, err := cluster.New(ctx, cluster.Options{ConnectionString: e.conn, TaskHub: "benchfailover", Partitions: partitions})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	res := &FailoverResult{Partitions: partitions}
	owned := func(h *cluster.Host) int {
		s, err := h.Status(ctx)
		if err != nil {
			return -1
		}
		return len(s.Owned)
	}
	measure := func(event string, since time.Time, cond func() bool) error {
		prog.printf("failover: %s", event)
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		for !cond() {
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return fmt.Errorf("failover: %s: %w", event, ctx.Err())
			}
		}
		res.Events = append(res.Events, FailoverEvent{Event: event, Seconds: time.Since(since).Seconds()})
		return nil
	}
	start := func(id string) (*cluster.Host, time.Time, error) {
		at := time.Now()
		h, err := cl.StartHost(ctx, id)
		return h, at, err
	}
	h1, at, err := start("h1")
	if err != nil {
		return nil, err
	}
	if err := measure("a lone host owns every partition (from its start)", at, func() bool { return owned(h1) == partitions }); err != nil {
		return nil, err
	}
	// A lone host is steady after a scan that changes nothing; the steady
	// scan interval plus a margin makes sure the next host meets a steady one.
	if !sleepCtx(ctx, 20*time.Second) {
		return nil, ctx.Err()
	}
	h2, at, err := start("h2")
	if err != nil {
		return nil, err
	}
	half := partitions / 2
	if err := measure("a second host joins a steady lone host: balanced", at, func() bool {
		return owned(h1) == partitions-half && owned(h2) == half
	}); err != nil {
		return nil, err
	}
	h3, at, err := start("h3")
	if err != nil {
		return nil, err
	}
	third := partitions / 3
	if err := measure("a third host joins two: balanced", at, func() bool {
		return owned(h3) >= third && owned(h1)+owned(h2)+owned(h3) == partitions && max(owned(h1), owned(h2)) <= partitions-2*third
	}); err != nil {
		return nil, err
	}
	if err := h3.Stop(time.Minute); err != nil {
		return nil, fmt.Errorf("failover: stop h3: %w", err)
	}
	if err := measure("SIGTERM of the third: the others own everything (from its exit)", h3.ExitedAt(), func() bool {
		return owned(h1)+owned(h2) == partitions
	}); err != nil {
		return nil, err
	}
	h2.Kill()
	if err := measure("kill -9 of the second: the first owns everything (from the kill)", time.Now(), func() bool {
		return owned(h1) == partitions
	}); err != nil {
		return nil, err
	}
	return res, nil
}

func writeFailover(w io.Writer, r *FailoverResult, format string) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "failover: worker processes at their default lease settings, %d partitions\n", r.Partitions)
	for _, ev := range r.Events {
		fmt.Fprintf(w, "  %-70s %6.1f s\n", ev.Event, ev.Seconds)
	}
	return nil
}
