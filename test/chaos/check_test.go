package chaos_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
	"github.com/azdurable/azdurable/test/cluster"
)

// results are what the checks counted.
type results struct {
	planned   int // top-level instances the workload started
	completed int // of those, ended with the expected output
	lost      int // of those, did not (must be 0)
	instances int // every instance on the task hub, children included
	validated int // histories that validate

	deadLetters  int         // every dead letter
	poisonCaught int         // of those, the injected poison messages
	moving       map[int]int // poisoned partition → instances that ended after the poison

	faults        azurite.FaultStats // summed over the proxies
	failed        float64            // share of storage requests that failed
	queuesIdle    time.Duration      // from the last instance's end to empty queues
	verifyTook    time.Duration      // waiting for the instances after the chaos phase
	latencies     []time.Duration    // from its wave's start to its end, per planned instance
	slowest       slowest
	historiesTook time.Duration
	conflicts     int64
}

// slowest is the planned instance that took longest.
type slowest struct {
	id, name string
	took     time.Duration
	history  []*core.Event
}

// longestPause describes the longest time between two events of the
// instance's (last execution's) history.
func (s slowest) longestPause() string {
	var gap time.Duration
	var from, to *core.Event
	for i := 1; i < len(s.history); i++ {
		if d := s.history[i].Time.Sub(s.history[i-1].Time); d > gap {
			gap, from, to = d, s.history[i-1], s.history[i]
		}
	}
	if from == nil {
		return "none"
	}
	return fmt.Sprintf("%v between event %d (%s) and event %d (%s)", gap.Round(100*time.Millisecond), from.Seq, from.Kind, to.Seq, to.Kind)
}

// check verifies the outcome: every instance ended as planned, every
// history validates, the queues are empty, and the only dead letters are
// the poison messages.
func (r *run) check() {
	t := r.t
	// Keep time to report the figures if something is stuck.
	deadline, _ := r.ctx.Deadline()
	ctx, cancel := context.WithDeadline(r.ctx, deadline.Add(-45*time.Second))
	defer cancel()

	start := time.Now()
	r.raising.Wait()
	for _, err := range r.raiseErrs {
		t.Errorf("raise events: %v", err)
	}
	for i, w := range r.waves {
		res, err := w.Verify(ctx, r.client)
		for _, x := range res {
			r.results.planned++
			if x.Err == nil {
				r.results.completed++
			} else {
				r.results.lost++
			}
		}
		if err != nil {
			t.Errorf("wave %d: %v", i, err)
		}
	}
	r.results.verifyTook = time.Since(start)
	verified := time.Now()
	r.checkQueuesEmpty(ctx, verified)
	start = time.Now()
	r.checkHistories(ctx)
	r.results.historiesTook = time.Since(start)
	r.checkDeadLetters(ctx)
	r.checkFaultShare()
	r.results.conflicts = r.mon.conflicts()
}

// checkHistories validates the history of every instance on the task hub,
// children included, and checks that each has ended.
func (r *run) checkHistories(ctx context.Context) {
	t := r.t
	moving := map[int]int{}
	q := core.InstanceQuery{PageSize: 1000}
	for {
		page, err := r.client.Query(ctx, q)
		if err != nil {
			t.Errorf("query instances: %v", err)
			return
		}
		for _, st := range page.Instances {
			r.results.instances++
			if !st.Status.IsTerminal() {
				t.Errorf("instance %q (%s) is still %s", st.InstanceID, st.Name, st.Status)
			}
			h, err := r.client.History(ctx, st.InstanceID)
			if err != nil {
				t.Errorf("history of %q: %v", st.InstanceID, err)
				continue
			}
			if err := cluster.ValidateHistory(h); err != nil {
				t.Errorf("history of %q (%s): %v", st.InstanceID, st.Name, err)
				continue
			}
			r.results.validated++
			if i := strings.LastIndex(st.InstanceID, "-"); st.Parent == nil && i > 0 {
				if start, ok := r.waveStarts[st.InstanceID[:i]]; ok {
					d := st.CompletedAt.Sub(start)
					r.results.latencies = append(r.results.latencies, d)
					if d > r.results.slowest.took {
						r.results.slowest = slowest{id: st.InstanceID, name: st.Name, took: d, history: h}
					}
				}
			}

			if p := core.PartitionFor(st.InstanceID, r.plan.partitions); slices.Contains(r.poisoned, p) && st.CompletedAt.After(r.poisonedAt) {
				moving[p]++
			}
		}
		if page.Continuation == "" {
			break
		}
		q.Continuation = page.Continuation
	}
	r.results.moving = moving
	// The poisoned partitions kept moving: instances of theirs ended after
	// the poison arrived.
	for _, p := range r.poisoned {
		if moving[p] == 0 {
			t.Errorf("no instance of poisoned partition %d ended after the poison was injected", p)
		}
	}
}

// checkQueuesEmpty waits until every control queue and the work-item queue
// are empty: duplicates and late messages are consumed, nothing is left.
func (r *run) checkQueuesEmpty(ctx context.Context, since time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var left []azprovider.QueueStat
	for {
		stats, err := r.prov.QueueStats(ctx)
		if err == nil {
			left = slices.DeleteFunc(stats, func(s azprovider.QueueStat) bool { return s.ApproximateCount == 0 })
			if len(left) == 0 {
				r.results.queuesIdle = time.Since(since)
				return
			}

		}
		select {
		case <-ctx.Done():
			r.t.Errorf("messages left in queues: %s", r.describeQueues(left))
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// describeQueues names the queues with messages and peeks at a few.
func (r *run) describeQueues(left []azprovider.QueueStat) string {
	qs, err := azqueue.NewServiceClientFromConnectionString(r.srv.ConnectionString(), nil)
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	for _, s := range left {
		fmt.Fprintf(&b, "\n  %s: %d", s.Name, s.ApproximateCount)
		n := int32(3)
		peek, err := qs.NewQueueClient(s.Name).PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: &n})
		if err != nil {
			continue
		}
		for _, m := range peek.Messages {
			text := *m.MessageText
			if len(text) > 300 {
				text = text[:300] + "…"
			}
			fmt.Fprintf(&b, "\n    %s", text)
		}
	}
	return b.String()
}

// checkDeadLetters checks that every dead letter is an injected poison
// message and that every poison message was dead-lettered.
func (r *run) checkDeadLetters(ctx context.Context) {
	t := r.t
	seen := map[string]int{}
	cont := ""
	for {
		page, err := r.prov.ListDeadLetters(ctx, 1000, cont)
		if err != nil {
			t.Errorf("list dead letters: %v", err)
			return
		}
		for _, dl := range page.DeadLetters {
			r.results.deadLetters++
			if r.poison[string(dl.Raw)] {
				seen[string(dl.Raw)]++
				r.results.poisonCaught++
				continue
			}
			what := "undecodable"
			switch {
			case dl.Message != nil:
				what = fmt.Sprintf("message %s %s", dl.Message.ID, dl.Message.Event.Kind)
			case dl.Activity != nil:
				what = fmt.Sprintf("activity %s", dl.Activity.Name)
			}
			t.Errorf("unexpected dead letter: partition %d, instance %q, %s, delivered %d times: %s",
				dl.Partition, dl.InstanceID, what, dl.DequeueCount, dl.Reason)
		}
		if page.Continuation == "" {
			break
		}
		cont = page.Continuation
	}
	for _, text := range slices.Sorted(maps.Keys(r.poison)) {
		if seen[text] == 0 {
			t.Errorf("poison message %q was not dead-lettered", text)
		}
	}
}

// checkFaultShare sums the proxies' counters and checks that enough of
// each host's storage requests failed.
func (r *run) checkFaultShare() {
	sum := azurite.FaultStats{Faults: map[azurite.FaultKind]int64{}, ByOp: map[string]int64{}}
	for _, s := range r.slots {
		st := s.proxy.Stats()
		if share := failedShare(st); share < minFailedShare {
			r.t.Errorf("only %.2f%% of host %s's %d storage requests failed; want at least %.0f%%", 100*share, s.id, st.Requests, 100*minFailedShare)
		}
		sum.Requests += st.Requests
		sum.After += st.After
		sum.Cut += st.Cut
		sum.UpstreamErrors += st.UpstreamErrors
		for k, v := range st.Faults {
			sum.Faults[k] += v
		}
		for k, v := range st.ByOp {
			sum.ByOp[k] += v
		}
	}
	r.results.faults = sum
	r.results.failed = failedShare(sum)
}

// failedShare is the share of requests that an injected fault failed.
func failedShare(s azurite.FaultStats) float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Failed()) / float64(s.Requests)
}

// report logs the figures of the run.
func (r *run) report() {
	res := r.results
	f := res.faults
	lines := []string{
		fmt.Sprintf("chaos %s run, seed %d, %d partitions, %d hosts: %v in all: setup %v, chaos phase %v, completion and checks %v",
			r.plan.name, r.seed, r.plan.partitions, hostCount, time.Since(r.begin).Round(time.Second), r.setupTook.Round(time.Second),
			r.chaosTook.Round(time.Second), (time.Since(r.begin) - r.setupTook - r.chaosTook).Round(time.Second)),
		fmt.Sprintf("storage requests through the proxies: %d; failed by injection: %d (%.2f%%), of which %d after storage applied them",
			f.Requests, f.Failed(), 100*res.failed, f.After),
		fmt.Sprintf("faults by kind: 500 %d, 503 %d, timeout %d, reset %d, latency %d; lost to the cut %d; reset because storage was down %d",
			f.Faults[azurite.FaultServerError], f.Faults[azurite.FaultThrottle], f.Faults[azurite.FaultTimeout],
			f.Faults[azurite.FaultReset], f.Faults[azurite.FaultLatency], f.Cut, f.UpstreamErrors),
		fmt.Sprintf("kills (kill -9): %d; host starts after a kill or at the end: %d; %s cut off for %v owning partitions %v; Azurite restarted once, down %v",
			r.kills, r.restarts, r.cutHost, cutFor, r.cutOwned, r.azuriteDown.Round(time.Millisecond)),
		fmt.Sprintf("instances: %d planned, %d completed as expected, %d lost; %d on the task hub with children, %d histories valid",
			res.planned, res.completed, res.lost, res.instances, res.validated),
		fmt.Sprintf("poison: %d injected into partitions %v, %d dead letters (%d of them poison); instances of those partitions that ended after it: %v",
			len(r.poison), r.poisoned, res.deadLetters, res.poisonCaught, res.moving),
		fmt.Sprintf("after the chaos phase: every instance ended within %v; queues empty %v later; %d histories read and validated in %v",
			res.verifyTook.Round(time.Millisecond), res.queuesIdle.Round(time.Millisecond), res.validated, res.historiesTook.Round(time.Millisecond)),
		fmt.Sprintf("commits rejected by their token (running hosts at the end): %d", res.conflicts),
	}
	slices.Sort(res.latencies)
	lines = append(lines, "instance latency, start to end: "+summarize(res.latencies, 0),
		fmt.Sprintf("slowest instance: %s (%s), %v; longest pause in its history: %s",
			res.slowest.id, res.slowest.name, res.slowest.took.Round(100*time.Millisecond), res.slowest.longestPause()))
	for _, kind := range []string{"kill", "cut", "rejoin", "azurite"} {
		took, pending := r.mon.recoveries(kind)
		lines = append(lines, fmt.Sprintf("recovery after %s: %s", kind, summarize(took, pending)))
	}
	for _, l := range lines {
		r.t.Log(l)
	}
}

// summarize gives the count, median and maximum of durations.
func summarize(took []time.Duration, pending int) string {
	if len(took) == 0 {
		return fmt.Sprintf("none measured, %d not recovered", pending)
	}
	s := fmt.Sprintf("%d measured, median %v, max %v", len(took),
		took[len(took)/2].Round(100*time.Millisecond), took[len(took)-1].Round(100*time.Millisecond))
	if pending > 0 {
		s += fmt.Sprintf(", %d not recovered", pending)
	}
	return s
}
