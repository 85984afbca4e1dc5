package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// testConfig is a tiny run on the in-memory provider.
func testConfig(t *testing.T, args ...string) *config {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-provider", "memory", "-quiet", "-idle-sample", "0", "-timer", "10ms",
		"-payload", "64", "-partitions", "4", "-timeout", "30s"}, args...), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Every workload runs and verifies its outputs; the JSON report says what ran.
func TestWorkloads(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		orchestrations int
		activities     int64
		events         int
	}{
		{[]string{"-workload", "hello", "-n", "6"}, 6, 30, 0},
		{[]string{"-workload", "hello", "-n", "3", "-latency"}, 3, 15, 0},
		{[]string{"-workload", "hello", "-n", "4", "-offload"}, 4, 20, 0},
		{[]string{"-workload", "fanout", "-n", "20"}, 1, 20, 0},
		{[]string{"-workload", "fanout", "-n", "1200"}, 1, 1200, 0}, // beyond FanOutFanIn's cap: in process only
		{[]string{"-workload", "chain", "-n", "12"}, 1, 12, 0},
		{[]string{"-workload", "events", "-n", "15"}, 1, 0, 15},
		{[]string{"-workload", "timers", "-n", "5"}, 5, -1, 0},
		{[]string{"-workload", "payload", "-n", "3"}, 3, 15, 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cfg := testConfig(t, append(tc.args, "-json")...)
			var out bytes.Buffer
			if err := run(testContext(t), cfg, &out, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			var rs []*Result
			if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
				t.Fatalf("%v\n%s", err, out.Bytes())
			}
			if len(rs) != 1 {
				t.Fatalf("%d results, want 1", len(rs))
			}
			r := rs[0]
			if r.Orchestrations != tc.orchestrations || r.Events != tc.events {
				t.Errorf("%d orchestrations and %d events, want %d and %d", r.Orchestrations, r.Events, tc.orchestrations, tc.events)
			}
			if tc.activities >= 0 && r.Activities != tc.activities {
				t.Errorf("%d activities, want %d", r.Activities, tc.activities)
			}
			if r.OpsTotal <= 0 || r.Episodes <= 0 || len(r.Processes) == 0 {
				t.Errorf("no storage calls, episodes or processes counted: %+v", r)
			}
		})
	}
}

// The table and the CSV carry the run; the seed fixes the plan.
func TestOutputs(t *testing.T) {
	var table bytes.Buffer
	if err := run(testContext(t), testConfig(t, "-workload", "hello", "-n", "2"), &table, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello 2", "memory", "in process", "storage ops per orchestration", "target ≥ 5,000 orchestrations/s"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var out bytes.Buffer
	if err := run(testContext(t), testConfig(t, "-workload", "chain", "-n", "3", "-csv"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][0] != "chain" || rows[1][1] != "3" {
		t.Fatalf("csv: %v %q", err, rows)
	}

	w, _ := findWorkload("hello")
	plan := func() []unit {
		us, err := w.plan(5, planOptions{}, newRand(7))
		if err != nil {
			t.Fatal(err)
		}
		return us
	}
	if a, b := plan(), plan(); !jsonEqual(a[4].input, b[4].input) {
		t.Errorf("the same seed planned %v and %v", a[4].input, b[4].input)
	}
}

// The idle mode counts the instances it leaves cached.
func TestIdle(t *testing.T) {
	var out bytes.Buffer
	if err := run(testContext(t), testConfig(t, "-workload", "idle", "-n", "50", "-json"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var r IdleResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Instances != 50 || r.Cached != 50 || r.HeapAfterMiB <= 0 {
		t.Errorf("idle: %+v", r)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-workload", "nope"},
		{"-n", "0"},
		{"-json", "-csv"},
		{"-hosts", "2", "-cpuprofile", "x"},
		{"-workload", "opcost", "-provider", "memory"},
		{"-workload", "failover", "-provider", "memory"},
		{"extra"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	if err := run(testContext(t), &config{Provider: "memory", Hosts: 1, Workload: "hello", N: 1}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("worker processes on the memory provider: no error")
	}
}
