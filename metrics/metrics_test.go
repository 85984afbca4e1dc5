package metrics_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
	"github.com/azdurable/azdurable/leases"
	"github.com/azdurable/azdurable/metrics"
	"github.com/azdurable/azdurable/partition"
	"github.com/azdurable/azdurable/samples"
)

type fakeStorage map[string]int64

func (f fakeStorage) Stats() map[string]int64 { return f }

type fakeOwnership struct {
	owned []int
	ready bool
}

func (f fakeOwnership) Owned() []int { return f.owned }
func (f fakeOwnership) Ready() bool  { return f.ready }
func (f fakeOwnership) Stats() partition.Stats {
	return partition.Stats{Acquired: 5, Released: 2, Stolen: 1, HandedOver: 3, RenewFailures: 4, StorageErrors: 6, OpenFailures: 7, Scans: 40}
}

// scrape fetches the exposition and returns each sample's value by its
// name with labels, as written (`name{label="v"}`).
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsAfterARun(t *testing.T) {
	p, err := memory.New(memory.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	reg := core.NewRegistry()
	if err := samples.Register(reg); err != nil {
		t.Fatal(err)
	}
	mgr, err := partition.New(partition.Options{Store: leases.NewMemoryStore(), HostID: "metrics-test", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := core.NewRuntime(core.Options{Provider: p, Registry: reg, Ownership: mgr, HostID: "metrics-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := rt.Client()
	const hellos, fanOut = 3, 4
	var ids []string
	for range hellos {
		id, err := c.Start(ctx, samples.HelloSequence)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	id, err := c.Start(ctx, samples.FanOutFanIn, core.WithInput(fanOut))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, id)
	for _, id := range ids {
		if st, err := c.WaitForCompletion(ctx, id); err != nil || st.Status != core.StatusCompleted {
			t.Fatalf("instance %s: %+v, %v", id, st, err)
		}
	}
	// The only host takes every partition; wait until it holds them all.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(mgr.Owned()) < 4 {
		select {
		case <-ctx.Done():
			t.Fatalf("the manager owns %v", mgr.Owned())
		case <-tick.C:
		}
	}

	h, err := metrics.Handler(metrics.Sources{HostID: "metrics-test", Runtime: rt, Ownership: mgr,
		Storage: fakeStorage{"table.batch": 7, "queue.get": 3}})
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, h)
	want := func(name string, ok func(float64) bool, what string) {
		t.Helper()
		v, found := m[name]
		if !found {
			t.Errorf("%s is missing", name)
			return
		}
		if !ok(v) {
			t.Errorf("%s = %v; want %s", name, v, what)
		}
	}
	atLeast := func(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }
	equal := func(n float64) func(float64) bool { return func(v float64) bool { return v == n } }

	activities := float64(hellos*5 + fanOut)
	// Every instance commits at least twice: its start, and its completion.
	want("azdurable_episodes_total", atLeast(2*float64(len(ids))), "at least two episodes per instance")
	want(`azdurable_activities_total{source="local"}`, atLeast(activities), "every activity, run on the owner")
	want(`azdurable_activities_total{source="queue"}`, equal(0), "0: nothing was offloaded")
	want("azdurable_activities_offloaded_total", equal(0), "0")
	want("azdurable_commit_conflicts_total", equal(0), "0 with one host")
	want("azdurable_messages_dead_lettered_total", equal(0), "0")
	want("azdurable_executor_cache_hits_total", atLeast(1), "cached executors continued")
	want("azdurable_executor_cache_misses_total", atLeast(0), "present")
	want("azdurable_executor_cache_instances", atLeast(0), "present")
	want("azdurable_activities_waiting", equal(0), "0: the run is over")
	want("azdurable_messages_delivered_in_memory_total", atLeast(0), "present")
	want("azdurable_partitions_running", equal(4), "4")
	want("azdurable_partitions_owned", equal(4), "4: the only host owns every partition")
	want("azdurable_ownership_ready", equal(1), "1")
	want("azdurable_ownership_scans_total", atLeast(1), "at least the first scan")
	want(`azdurable_lease_events_total{event="acquired"}`, atLeast(4), "every partition acquired")
	want(`azdurable_lease_events_total{event="lost"}`, equal(0), "0")
	for p := range 4 {
		want(`azdurable_partition_owned{partition="`+strconv.Itoa(p)+`"}`, equal(1), "1")
	}
	want(`azdurable_host_info{host="metrics-test"}`, equal(1), "1")
	want(`azdurable_storage_operations_total{kind="table.batch"}`, equal(7), "the provider's count")
	want(`azdurable_storage_operations_total{kind="queue.get"}`, equal(3), "the provider's count")
	want("go_goroutines", atLeast(1), "Go runtime metrics")
}

func TestMetricsWithoutPartitionManager(t *testing.T) {
	p, err := memory.New(memory.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := core.NewRuntime(core.Options{Provider: p, Registry: core.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: the runtime runs no partition yet.
	h, err := metrics.Handler(metrics.Sources{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, h)
	if v, ok := m["azdurable_partitions_owned"]; !ok || v != 0 {
		t.Errorf("azdurable_partitions_owned = %v (present %v), want 0", v, ok)
	}
	if _, ok := m["azdurable_ownership_ready"]; ok {
		t.Error("azdurable_ownership_ready without a partition manager")
	}
	if v, ok := m["azdurable_episodes_total"]; !ok || v != 0 {
		t.Errorf("azdurable_episodes_total = %v (present %v), want 0", v, ok)
	}
}

func TestMetricsOwnership(t *testing.T) {
	h, err := metrics.Handler(metrics.Sources{Ownership: fakeOwnership{owned: []int{9, 2}, ready: true}})
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, h)
	for name, v := range map[string]float64{
		"azdurable_ownership_ready":                           1,
		"azdurable_partitions_owned":                          2,
		`azdurable_partition_owned{partition="2"}`:            1,
		`azdurable_partition_owned{partition="9"}`:            1,
		`azdurable_lease_events_total{event="acquired"}`:      5,
		`azdurable_lease_events_total{event="stolen"}`:        1,
		`azdurable_lease_events_total{event="lost"}`:          0,
		`azdurable_lease_events_total{event="handed_over"}`:   3,
		`azdurable_lease_events_total{event="renew_failed"}`:  4,
		`azdurable_lease_events_total{event="storage_error"}`: 6,
		`azdurable_lease_events_total{event="open_failed"}`:   7,
		`azdurable_lease_events_total{event="released"}`:      2,
		"azdurable_ownership_scans_total":                     40,
	} {
		if got, ok := m[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if _, ok := m["azdurable_episodes_total"]; ok {
		t.Error("runtime metrics without a runtime")
	}
}
