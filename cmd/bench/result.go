package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one run measured.
type Result struct {
	Workload   string `json:"workload"`
	Provider   string `json:"provider"`
	Hosts      int    `json:"hosts"` // 0: one host in the bench process
	Offload    bool   `json:"offload"`
	Partitions int    `json:"partitions"`
	Size       int    `json:"size"`
	Latency    bool   `json:"oneAtATime"`
	Seed       uint64 `json:"seed"`

	Seconds        float64 `json:"seconds"`
	Orchestrations int     `json:"orchestrations"`
	Activities     int64   `json:"activities"`
	Events         int     `json:"events"`
	OrchPerSec     float64 `json:"orchestrationsPerSec"`
	ActPerSec      float64 `json:"activitiesPerSec"`
	EventsPerSec   float64 `json:"eventsPerSec,omitempty"`
	P50Ms          float64 `json:"p50Ms"`
	P95Ms          float64 `json:"p95Ms"`
	P99Ms          float64 `json:"p99Ms"`

	// Ops are the storage operations of the hosts and the client per
	// orchestration, by kind, without the empty dequeues of idle polling
	// (EmptyPolls). With an in-process host the client's starts, raised
	// events and completion reads are among them.
	Ops         map[string]float64 `json:"opsPerOrchestration"`
	OpsTotal    float64            `json:"opsPerOrchestrationTotal"`
	OpsPerAct   float64            `json:"opsPerActivity,omitempty"`
	OpsPerEvent float64            `json:"opsPerEvent,omitempty"`
	OpsPerSec   float64            `json:"opsPerSec"`
	EmptyPolls  int64              `json:"emptyPolls"`
	// ObserverOps are the bench's own completion polls, not counted above.
	ObserverOps int64 `json:"observerOps"`
	// IdleOpsPerSec is the hosts' storage traffic while nothing ran.
	IdleOpsPerSec map[string]float64 `json:"idleOpsPerSec,omitempty"`

	CalibrationC float64 `json:"calibrationOpsPerSec,omitempty"`
	ShareOfC     float64 `json:"shareOfC,omitempty"`

	Episodes    int64       `json:"episodes"`
	CacheMisses int64       `json:"cacheMisses"`
	Processes   []ProcUsage `json:"processes"`
	Machine     string      `json:"machine"` // CPU model and core count
	LoadBefore  float64     `json:"load1Before"`
	LoadAfter   float64     `json:"load1After"`
	Targets     []Target    `json:"targets,omitempty"`
}

// ProcUsage is one process's share of a run.
type ProcUsage struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUPercent float64 `json:"cpuPercent"` // of one core, over the run
	PeakRSSMiB float64 `json:"peakRssMiB"`
}

// Target is one of the targets, checked against this run.
type Target struct {
	What string `json:"what"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

func (r *Result) fill(ph *phase, before, after *snapshot) {
	first := slices.MinFunc(ph.started, func(a, b time.Time) int { return a.Compare(b) })
	elapsed := ph.end.Sub(first)
	if elapsed <= 0 {
		elapsed = time.Microsecond
	}
	r.Seconds = elapsed.Seconds()
	r.Orchestrations = len(ph.units)
	for _, u := range ph.units {
		r.Events += len(u.events)
	}
	r.Activities = activities(after.runtime) - activities(before.runtime)
	r.Episodes = after.runtime.Episodes - before.runtime.Episodes
	r.CacheMisses = after.runtime.CacheMisses - before.runtime.CacheMisses
	r.OrchPerSec = float64(r.Orchestrations) / r.Seconds
	r.ActPerSec = float64(r.Activities) / r.Seconds
	if r.Events > 0 {
		r.EventsPerSec = float64(r.Events) / r.Seconds
	}
	lat := slices.Clone(ph.latency)
	slices.Sort(lat)
	r.P50Ms, r.P95Ms, r.P99Ms = ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99))

	ops := after.host.sub(before.host)
	ops.add(after.client.sub(before.client))
	r.EmptyPolls = ops["queue.get-empty"]
	delete(ops, "queue.get-empty")
	// A dequeue that found nothing is idle polling: take it out of queue.get too.
	if ops["queue.get"] -= r.EmptyPolls; ops["queue.get"] <= 0 {
		delete(ops, "queue.get")
	}
	r.ObserverOps = after.observer.sub(before.observer).total()
	n := float64(r.Orchestrations)
	r.Ops = map[string]float64{}
	for k, v := range ops {
		r.Ops[k] = float64(v) / n
	}
	r.OpsTotal = float64(ops.total()) / n
	if r.Activities > 0 {
		r.OpsPerAct = float64(ops.total()) / float64(r.Activities)
	}
	if r.Events > 0 {
		r.OpsPerEvent = float64(ops.total()) / float64(r.Events)
	}
	r.OpsPerSec = float64(ops.total()) / r.Seconds

	wall := after.at.Sub(before.at)
	for _, name := range slices.Sorted(maps.Keys(after.usage)) {
		a, b := after.usage[name], before.usage[name]
		cpu := (a.CPU - b.CPU).Seconds()
		r.Processes = append(r.Processes, ProcUsage{Name: name, PID: a.PID, CPUSeconds: cpu,
			CPUPercent: 100 * cpu / wall.Seconds(), PeakRSSMiB: float64(a.PeakRSS) / (1 << 20)})
	}
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// checkTargets adds the targets that apply to this run.
func (r *Result) checkTargets() {
	add := func(what string, got float64, format string, met bool) {
		r.Targets = append(r.Targets, Target{What: what, Got: fmt.Sprintf(format, got), Met: met})
	}
	c := r.CalibrationC
	share := func(k float64) {
		if c > 0 {
			add(fmt.Sprintf("ops/s ≥ %.2f·C (%.0f)", k, k*c), r.OpsPerSec, "%.0f ops/s", r.OpsPerSec >= k*c)
		}
	}
	// budget is the same share of C read as throughput at the target's ops
	// budget per unit (the "about 150 orchestrations/s" is 0.75·C ÷
	// 10 ops with C near 2,000): ops/s × fewer ops per unit falls as the
	// ops fall, while this rises with throughput.
	budget := func(k, ops float64, unit string, got float64) {
		if c > 0 {
			add(fmt.Sprintf("%s ≥ %.2f·C ÷ %g ops (%.0f)", unit, k, ops, k*c/ops), got, "%.0f/s", got >= k*c/ops)
		}
	}
	switch {
	case r.Provider == "azurite" && r.Latency && r.Workload == "hello":
		add("p50 ≤ 50 ms", r.P50Ms, "%.1f ms", r.P50Ms <= 50)
		add("p95 ≤ 150 ms", r.P95Ms, "%.1f ms", r.P95Ms <= 150)
	case r.Provider == "azurite" && r.Workload == "hello" && !r.Offload:
		add("≤ 10 ops/orchestration", r.OpsTotal, "%.1f", r.OpsTotal <= 10)
		share(0.75)
		budget(0.75, 10, "orch/s", r.OrchPerSec)
	case r.Provider == "azurite" && r.Workload == "hello":
		add("≤ 32 ops/orchestration", r.OpsTotal, "%.1f", r.OpsTotal <= 32)
		share(0.75)
		budget(0.75, 32, "orch/s", r.OrchPerSec)
	case r.Provider == "azurite" && r.Workload == "fanout":
		add("≤ 1.5 ops/activity", r.OpsPerAct, "%.2f", r.OpsPerAct <= 1.5)
		share(0.75)
		budget(0.75, 1.5, "act/s", r.ActPerSec)
	case r.Provider == "azurite" && r.Workload == "chain":
		add("≤ 1.5 ops/activity", r.OpsPerAct, "%.2f", r.OpsPerAct <= 1.5)
		share(0.6)
		budget(0.6, 1.5, "act/s", r.ActPerSec)
	case r.Provider == "azurite" && r.Workload == "events":
		share(0.6)
	case r.Provider == "memory" && r.Latency && r.Workload == "hello":
		add("p50 ≤ 2 ms", r.P50Ms, "%.2f ms", r.P50Ms <= 2)
	case r.Provider == "memory" && r.Workload == "hello":
		add("≥ 5,000 orchestrations/s", r.OrchPerSec, "%.0f/s", r.OrchPerSec >= 5000)
	case r.Provider == "memory" && r.Workload == "fanout":
		add("≥ 10,000 activities/s", r.ActPerSec, "%.0f/s", r.ActPerSec >= 10000)
	case r.Provider == "memory" && r.Workload == "chain":
		add("≥ 5,000 activities/s", r.ActPerSec, "%.0f/s", r.ActPerSec >= 5000)
	}
}

func (r *Result) hostsLabel() string {
	h := "in process"
	if r.Hosts > 0 {
		h = strconv.Itoa(r.Hosts) + " proc"
	}
	if r.Offload {
		h += ", offload"
	}
	return h
}

func (r *Result) name() string {
	s := fmt.Sprintf("%s %d", r.Workload, r.Size)
	if r.Latency {
		s += " (one at a time)"
	}
	return s
}

func opsLine(m map[string]float64) string {
	var parts []string
	for _, k := range slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Compare(m[b], m[a]) }) {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// writeTable prints the results for people.
func writeTable(w io.Writer, rs []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tprovider\thosts\tseconds\torch/s\tact/s\tevents/s\tp50 ms\tp95 ms\tp99 ms\tops/orch\tops/act\tops/s\tload\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2f\t\n",
			r.name(), r.Provider, r.hostsLabel(), r.Seconds, r.OrchPerSec, r.ActPerSec, r.EventsPerSec,
			r.P50Ms, r.P95Ms, r.P99Ms, r.OpsTotal, r.OpsPerAct, r.OpsPerSec, r.LoadBefore)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rs {
		fmt.Fprintf(w, "\n%s, %s, %s:\n", r.name(), r.Provider, r.hostsLabel())
		fmt.Fprintf(w, "  storage ops per orchestration: %s\n", opsLine(r.Ops))
		fmt.Fprintf(w, "  apart: %d empty dequeues (idle polling), %d completion polls of the bench\n", r.EmptyPolls, r.ObserverOps)
		if len(r.IdleOpsPerSec) > 0 {
			fmt.Fprintf(w, "  idle traffic of the hosts, per second: %s\n", opsLine(r.IdleOpsPerSec))
		}
		fmt.Fprintf(w, "  episodes %d (replays %d), load average %.2f → %.2f on %s\n", r.Episodes, r.CacheMisses, r.LoadBefore, r.LoadAfter, r.Machine)
		for _, p := range r.Processes {
			fmt.Fprintf(w, "  %-24s pid %-7d cpu %6.2fs (%5.1f%% of a core)  peak RSS %6.1f MiB\n", p.Name, p.PID, p.CPUSeconds, p.CPUPercent, p.PeakRSSMiB)
		}
		if r.CalibrationC > 0 {
			fmt.Fprintf(w, "  calibration C = %.0f table inserts/s; this run: %.0f ops/s = %.2f·C\n", r.CalibrationC, r.OpsPerSec, r.ShareOfC)
		}
		for _, t := range r.Targets {
			mark := "MET"
			if !t.Met {
				mark = "MISSED"
			}
			fmt.Fprintf(w, "  target %-30s %-14s %s\n", t.What, t.Got, mark)
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeCSV(w io.Writer, rs []*Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"workload", "size", "one_at_a_time", "provider", "hosts", "offload", "seconds", "orchestrations_per_sec",
		"activities_per_sec", "events_per_sec", "p50_ms", "p95_ms", "p99_ms", "ops_per_orchestration", "ops_per_activity",
		"ops_per_sec", "calibration_c", "share_of_c", "empty_polls", "observer_ops", "load1"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, r := range rs {
		_ = cw.Write([]string{r.Workload, strconv.Itoa(r.Size), strconv.FormatBool(r.Latency), r.Provider, strconv.Itoa(r.Hosts),
			strconv.FormatBool(r.Offload), f(r.Seconds), f(r.OrchPerSec), f(r.ActPerSec), f(r.EventsPerSec), f(r.P50Ms), f(r.P95Ms),
			f(r.P99Ms), f(r.OpsTotal), f(r.OpsPerAct), f(r.OpsPerSec), f(r.CalibrationC), f(r.ShareOfC),
			strconv.FormatInt(r.EmptyPolls, 10), strconv.FormatInt(r.ObserverOps, 10), f(r.LoadBefore)})
	}
	cw.Flush()
	return cw.Error()
}
