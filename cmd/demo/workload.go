package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/cluster"
)

// progress is what one poll of the task hub saw.
type progress struct {
	done      int
	failed    int // ended Failed or Terminated (some samples fail on purpose)
	latencies []time.Duration
	last      time.Time // latest completion
}

func runWorkload(ctx context.Context, c config, client *core.Client, cl *cluster.Cluster) error {
	w, err := samples.NewWorkload(samples.WorkloadOptions{Seed: c.seed, Instances: c.instances, IDPrefix: "demo-", MaxFanOut: 20})
	if err != nil {
		return err
	}
	planned := make(map[string]bool, len(w.Instances))
	mix := map[string]int{}
	for _, p := range w.Instances {
		planned[p.ID] = true
		mix[p.Orchestration]++
	}
	fmt.Printf("        mix: %s\n", formatMix(mix))

	began := time.Now()
	startErr := make(chan error, 1)
	go func() {
		if err := w.Start(ctx, client); err != nil {
			startErr <- err
			return
		}
		startErr <- w.RaiseEvents(ctx, client)
	}()

	var (
		killed     *cluster.Host
		killedAt   time.Time
		failover   time.Duration
		lastOwners map[string][]int
		p          progress
	)
	tty := isTerminal()
	lastShown, lastShownAt := -1, time.Time{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for p.done < len(planned) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-startErr:
			if err != nil {
				return err
			}
		case <-tick.C:
		}
		np, err := poll(ctx, client, planned)
		if err != nil {
			fmt.Printf("\n        (query failed, retrying: %v)\n", err)
			continue
		}
		p = np
		owners := cl.Ownership(ctx)
		lastOwners = owners
		if killed != nil && failover == 0 && ownedOnce(owners, c.partitions) {
			failover = time.Since(killedAt)
			clearLine(tty)
			fmt.Printf("==> fail-over: the partitions of %s are owned by the other hosts again, %.1f s after the kill\n", killed.ID, failover.Seconds())
			printOwnership(owners, c.partitions)
		}
		if tty || p.done != lastShown || time.Since(lastShownAt) >= 5*time.Second {
			render(tty, p, len(planned), began, owners)
			lastShown, lastShownAt = p.done, time.Now()
		}
		if killed == nil && c.killAt > 0 && len(cl.Hosts()) > 1 && float64(p.done) >= c.killAt*float64(len(planned)) {
			killed = cl.Hosts()[1]
			victim := owners[killed.ID]
			killed.Kill()
			killedAt = time.Now()
			clearLine(tty)
			fmt.Printf("==> killed %s with SIGKILL (it owned partitions %v); the others take them over when its leases expire\n", killed.ID, victim)
		}
	}
	elapsed := p.last.Sub(began)
	clearLine(tty)
	render(tty, p, len(planned), began, lastOwners)
	fmt.Println()

	step("verifying every instance's result")
	results, verr := w.Verify(ctx, client)
	wrong := 0
	for _, r := range results {
		if r.Err != nil {
			wrong++
		}
	}

	step("summary")

	fmt.Printf("        instances       %d completed (%d ended failed or terminated on purpose), %d with a wrong result\n", p.done, p.failed, wrong)
	fmt.Printf("        wall time       %.1f s from the first start to the last completion\n", elapsed.Seconds())
	fmt.Printf("        throughput      %.1f orchestrations/s\n", float64(p.done)/elapsed.Seconds())
	fmt.Printf("        latency         p50 %s  p95 %s  (start to completion; includes timers, approvals and the fail-over)\n",
		percentile(p.latencies, 0.50), percentile(p.latencies, 0.95))
	if killed != nil {
		if failover > 0 {
			fmt.Printf("        fail-over       %s killed; its partitions were owned again after %.1f s\n", killed.ID, failover.Seconds())
		} else {
			fmt.Printf("        fail-over       %s killed; its partitions were not all owned again yet\n", killed.ID)
		}
	}
	fmt.Println("        partitions per host at the end:")
	printOwnership(cl.Ownership(ctx), c.partitions)
	if ops := storageOps(ctx, cl); ops > 0 {
		fmt.Printf("        storage ops     %d by the running hosts (%.1f per orchestration)\n", ops, float64(ops)/float64(p.done))
	}
	if verr != nil {
		return fmt.Errorf("%d instances did not end as expected: %w", wrong, verr)
	}
	if c.hold {
		step("holding: browse " + dashboardURL + " ; Ctrl-C stops everything")
		<-ctx.Done()
	}
	return nil
}

// poll counts the planned instances that have ended.
func poll(ctx context.Context, client *core.Client, planned map[string]bool) (progress, error) {
	var p progress
	q := core.InstanceQuery{
		Statuses:         []core.Status{core.StatusCompleted, core.StatusFailed, core.StatusTerminated},
		InstanceIDPrefix: "demo-",
		PageSize:         1000,
	}
	for {
		page, err := client.Query(ctx, q)
		if err != nil {
			return p, err
		}
		for _, st := range page.Instances {
			if !planned[st.InstanceID] {
				continue // a child instance
			}
			p.done++
			if st.Status != core.StatusCompleted {
				p.failed++
			}
			if !st.CompletedAt.IsZero() {
				p.latencies = append(p.latencies, st.CompletedAt.Sub(st.CreatedAt))
				if st.CompletedAt.After(p.last) {
					p.last = st.CompletedAt
				}
			}
		}
		if page.Continuation == "" {
			return p, nil
		}
		q.Continuation = page.Continuation
	}
}

func render(tty bool, p progress, total int, began time.Time, owners map[string][]int) {
	const width = 30
	filled := width * p.done / total
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	rate := float64(p.done) / time.Since(began).Seconds()
	ids := make([]string, 0, len(owners))
	for id := range owners {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	hosts := make([]string, len(ids))
	for i, id := range ids {
		hosts[i] = fmt.Sprintf("%s:%d", id, len(owners[id]))
	}
	line := fmt.Sprintf("        [%s] %4d/%d %3d%%  %6.1f/s  partitions %s", bar, p.done, total, 100*p.done/total, rate, strings.Join(hosts, " "))
	if tty {
		fmt.Printf("\r%s\033[K", line)
	} else {
		fmt.Println(line)
	}
}

func clearLine(tty bool) {
	if tty {
		fmt.Print("\r\033[K")
	}
}

func isTerminal() bool {
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func percentile(d []time.Duration, q float64) string {
	if len(d) == 0 {
		return "-"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)].Round(time.Millisecond).String()
}

func formatMix(mix map[string]int) string {
	names := make([]string, 0, len(mix))
	for n := range mix {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, mix[n])
	}
	return strings.Join(parts, ", ")
}

func storageOps(ctx context.Context, cl *cluster.Cluster) int64 {
	var n int64
	for _, h := range cl.Hosts() {
		if s, err := h.Status(ctx); err == nil {
			for _, v := range s.Storage {
				n += v
			}
		}
	}
	return n
}
