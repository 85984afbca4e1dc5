package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

// TestInstancesAzurite drives instances through the CLI against a task hub
// that a runtime serves: start, raise, suspend, resume, terminate, restart,
// show, history, list with filters and paging, and purge.
func TestInstancesAzurite(t *testing.T) {
	h := newTestHub(t, 4)
	h.serve(t)

	// Start and finish a sequence and a fan-out.
	if out := h.ok("instances", "start", "HelloSequence", "--id", "hello-1", "--input", `["Ann", "Bob"]`); out != "hello-1\n" {
		t.Fatalf("start printed %q, want the instance id", out)
	}
	var started map[string]string
	h.json(&started, "instances", "start", "FanOutFanIn", "--id", "fan-1", "--input", "3")
	if started["instanceId"] != "fan-1" {
		t.Fatalf("start -o json printed %v", started)
	}
	if st := h.waitDone(t, "hello-1"); st.Status != core.StatusCompleted || string(st.Output) != `["Hello, Ann!","Hello, Bob!"]` {
		t.Fatalf("hello-1 ended %s with %s", st.Status, st.Output)
	}
	if st := h.waitDone(t, "fan-1"); st.Status != core.StatusCompleted || string(st.Output) != "14" {
		t.Fatalf("fan-1 ended %s with %s", st.Status, st.Output)
	}

	// An approval decided by an event raised from the CLI.
	approval := `{"id":"r1","requester":"ann","amount":5}`
	h.ok("instances", "start", "Approval", "--id", "approval-1", "--input", approval)
	h.waitStatus(t, "approval-1", core.StatusRunning)
	out := h.ok("instances", "raise", "approval-1", "approval", "--data", `{"approved": true, "approver": "bob"}`)
	contains(t, "raise", out, `Raised event "approval" on instance approval-1`)
	if st := h.waitDone(t, "approval-1"); !strings.Contains(string(st.Output), `"outcome":"approved"`) {
		t.Fatalf("approval-1 ended %s with %s", st.Status, st.Output)
	}

	// Suspend holds the event until resume; the top-level shortcuts work too.
	h.ok("instances", "start", "Approval", "--id", "approval-3", "--input", approval)
	h.waitStatus(t, "approval-3", core.StatusRunning)
	contains(t, "suspend", h.ok("suspend", "approval-3", "--reason", "audit"), "Suspending instance approval-3")
	h.waitStatus(t, "approval-3", core.StatusSuspended)
	h.ok("raise", "approval-3", "approval", "--data", `{"approved":false,"approver":"eve"}`)
	if st, _ := h.client.GetInstance(testContext(t), "approval-3", false); st.Status != core.StatusSuspended {
		t.Fatalf("approval-3 is %s after an event while suspended", st.Status)
	}
	contains(t, "resume", h.ok("instances", "resume", "approval-3"), "Resuming instance approval-3")
	if st := h.waitDone(t, "approval-3"); !strings.Contains(string(st.Output), `"outcome":"rejected"`) {
		t.Fatalf("approval-3 ended %s with %s", st.Status, st.Output)
	}

	// Terminate.
	h.ok("instances", "start", "Approval", "--id", "approval-2", "--input", approval)
	h.waitStatus(t, "approval-2", core.StatusRunning)
	contains(t, "terminate", h.ok("terminate", "approval-2", "--reason", "not needed", "--recursive"), "Terminating instance approval-2")
	if st := h.waitDone(t, "approval-2"); st.Status != core.StatusTerminated || string(st.Output) != `"not needed"` {
		t.Fatalf("approval-2 ended %s with %s", st.Status, st.Output)
	}

	// One that keeps running, and one delayed by --start-at.
	h.ok("instances", "start", "Approval", "--id", "approval-4", "--input", approval)
	h.waitStatus(t, "approval-4", core.StatusRunning)
	h.ok("instances", "start", "HelloSequence", "--id", "later-1", "--start-at", "1h")
	h.waitFor(t, "later-1", "its start timer is set", func(st *core.InstanceState) bool { return st.HistoryEvents > 0 })

	t.Run("show", func(t *testing.T) {
		h := h.in(t)
		out := h.ok("instances", "show", "hello-1")
		contains(t, "show", out, "Instance:", "hello-1", "HelloSequence", "Completed", `["Hello, Ann!","Hello, Bob!"]`, `["Ann","Bob"]`)
		var v instanceView
		h.json(&v, "instances", "show", "approval-2")
		if v.Status != "Terminated" || v.Name != "Approval" || v.InstanceID != "approval-2" {
			t.Fatalf("show -o json: %+v", v)
		}
		jsonEqual(t, "output", v.Output, `"not needed"`)
		jsonEqual(t, "input", v.Input, approval)
		contains(t, "show", h.ok("instances", "show", "later-1"), "Pending")
	})

	t.Run("history", func(t *testing.T) {
		h := h.in(t)
		out := h.ok("instances", "history", "hello-1")
		contains(t, "history", out, "Instance hello-1 (HelloSequence)", "KIND", "DURATION", "execution", "activity", "SayHello", "completed", `"Hello, Ann!"`)
		var tl timelineView
		h.json(&tl, "instances", "history", "approval-1")
		kinds := map[string][]string{}
		for _, s := range tl.Spans {
			kinds[s.Kind] = append(kinds[s.Kind], s.Name+"/"+s.Status)
		}
		if len(tl.Spans) == 0 || tl.Spans[0].Kind != ops.KindExecution || tl.Spans[0].Status != ops.StatusCompleted {
			t.Fatalf("history of approval-1: first span is not the completed execution: %+v", tl.Spans)
		}
		if !slices.Equal(kinds[ops.KindActivity], []string{"RequestApproval/completed", "ProcessApproval/completed"}) ||
			!slices.Equal(kinds[ops.KindTimer], []string{"/canceled"}) || !slices.Equal(kinds[ops.KindEvent], []string{"approval/completed"}) {
			t.Fatalf("history of approval-1: spans %v", kinds)
		}
		for _, s := range tl.Spans {
			if s.OffsetMs < 0 || s.DurationMs < 0 {
				t.Fatalf("span %+v has a negative offset or duration", s)
			}
		}
		// --json is the same as --output json.
		var again timelineView
		if err := jsonUnmarshal(h.ok("instances", "history", "approval-1", "--json"), &again); err != nil || len(again.Spans) != len(tl.Spans) {
			t.Fatalf("history --json: %v, %d spans, want %d", err, len(again.Spans), len(tl.Spans))
		}
		contains(t, "history of a delayed start", h.ok("instances", "history", "later-1"), "timer", ops.ScheduledStartTimer, "pending", "fires ")
	})

	t.Run("list", func(t *testing.T) {
		h := h.in(t)
		all := []string{"approval-1", "approval-2", "approval-3", "approval-4", "fan-1", "hello-1", "later-1"}
		ids := func(args ...string) []string {
			var v listView
			h.json(&v, append([]string{"instances", "list"}, args...)...)
			var out []string
			for _, i := range v.Instances {
				out = append(out, i.InstanceID)
			}
			slices.Sort(out)
			return out
		}
		out := h.ok("instances", "list")
		contains(t, "list", out, append([]string{"INSTANCE", "STATUS"}, all...)...)
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{nil, all},
			{[]string{"--status", "Completed"}, []string{"approval-1", "approval-3", "fan-1", "hello-1"}},
			{[]string{"--status", "terminated,running"}, []string{"approval-2", "approval-4"}},
			{[]string{"--name", "FanOutFanIn"}, []string{"fan-1"}},
			{[]string{"--prefix", "approval-"}, []string{"approval-1", "approval-2", "approval-3", "approval-4"}},
			{[]string{"--prefix", "approval-", "--name", "HelloSequence"}, nil},
			{[]string{"--created-after", "1h"}, all},
			{[]string{"--created-before", "1h"}, nil},
			{[]string{"--status", "Pending", "--created-after", "2000-01-01"}, []string{"later-1"}},
		} {
			if got := ids(tc.args...); !slices.Equal(got, tc.want) {
				t.Errorf("list %q = %v, want %v", tc.args, got, tc.want)
			}
		}
		_, errOut, _ := h.run("instances", "list", "--created-before", "1h")
		contains(t, "empty list", errOut, "No instances found.")

		// Paging: pages of 3 cover everything once.
		var seen []string
		cont := ""
		for pages := 0; ; pages++ {
			if pages > len(all) {
				t.Fatal("paging does not end")
			}
			args := []string{"instances", "list", "--page-size", "3"}
			if cont != "" {
				args = append(args, "--continuation", cont)
			}
			var v listView
			h.json(&v, args...)
			if len(v.Instances) > 3 {
				t.Fatalf("page of %d instances with --page-size 3", len(v.Instances))
			}
			for _, i := range v.Instances {
				seen = append(seen, i.InstanceID)
			}
			if cont = v.Continuation; cont == "" {
				break
			}
		}
		slices.Sort(seen)
		if !slices.Equal(seen, all) {
			t.Fatalf("pages listed %v, want %v", seen, all)
		}
		if got := ids("--page-size", "2", "--all"); !slices.Equal(got, all) {
			t.Fatalf("list --all = %v, want %v", got, all)
		}
		_, errOut, _ = h.run("instances", "list", "--page-size", "2")
		contains(t, "a first page", errOut, "More instances: add --continuation ")
	})

	t.Run("restart", func(t *testing.T) {
		h := h.in(t)
		newID := strings.TrimSpace(h.ok("instances", "restart", "hello-1", "--new-id"))
		if newID == "" || newID == "hello-1" {
			t.Fatalf("restart --new-id printed %q", newID)
		}
		if st := h.waitDone(t, newID); string(st.Output) != `["Hello, Ann!","Hello, Bob!"]` {
			t.Fatalf("restarted instance ended %s with %s", st.Status, st.Output)
		}
		h.ok("instances", "purge", newID)

		before, err := h.client.GetInstance(testContext(t), "fan-1", false)
		if err != nil {
			t.Fatal(err)
		}
		if out := h.ok("restart", "fan-1"); out != "fan-1\n" {
			t.Fatalf("restart printed %q", out)
		}
		st := h.waitFor(t, "fan-1", "a new execution completes", func(st *core.InstanceState) bool {
			return st.ExecutionID != before.ExecutionID && st.Status == core.StatusCompleted
		})
		if string(st.Output) != "14" {
			t.Fatalf("fan-1 restarted ended with %s", st.Output)
		}
		h.fail(exitFailed, []string{`instance "approval-4" is Running`, "terminate"}, "instances", "restart", "approval-4")
	})

	t.Run("purge", func(t *testing.T) {
		h := h.in(t)
		completed := []string{"approval-1", "approval-3", "fan-1", "hello-1"}
		out := h.ok("instances", "purge", "--status", "Completed", "--dry-run")
		contains(t, "purge --dry-run", out, append(completed, "Dry run: 4 instances would be purged; nothing was deleted.")...)
		for _, id := range completed {
			h.ok("instances", "show", id)
		}
		var dry struct {
			DryRun bool `json:"dryRun"`
			Count  int  `json:"count"`
		}
		h.json(&dry, "purge", "--created-after", "1h", "--dry-run")
		if !dry.DryRun || dry.Count != 5 { // the four completed ones and approval-2 (terminated)
			t.Fatalf("purge --dry-run -o json: %+v, want 5 instances", dry)
		}
		out = h.ok("instances", "purge", "approval-2", "--dry-run")
		contains(t, "purge ID --dry-run", out, "approval-2", "would be purged", "nothing was deleted")
		h.ok("instances", "show", "approval-2")

		// A running instance is never purged; the others named are.
		errOut := h.fail(exitFailed, []string{`instance "approval-4" is Running`}, "instances", "purge", "approval-2", "approval-4")
		contains(t, "purge hint", errOut, "hint: ")
		h.ok("instances", "show", "approval-4")
		h.fail(exitFailed, []string{`"approval-2"`, "not found"}, "instances", "show", "approval-2")

		contains(t, "purge", h.ok("instances", "purge", "--status", "Completed"), "Purged 4 instances.")
		_, errOut, _ = h.run("instances", "list", "--status", "Completed")
		contains(t, "list after purge", errOut, "No instances found.")
	})
}

// TestInstancesBadInputAzurite checks that bad input gets a clear error and
// the right exit code, and writes nothing.
func TestInstancesBadInputAzurite(t *testing.T) {
	h := newTestHub(t, 2)
	h.serve(t)
	h.ok("instances", "start", "FanOutFanIn", "--id", "done-1", "--input", "2")
	h.waitDone(t, "done-1")
	nothingWritten := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			if _, err := h.client.GetInstance(testContext(t), id, false); !strings.Contains(errText(err), "not found") {
				t.Fatalf("instance %q: %v; want it not to exist", id, err)
			}
		}
		var v listView
		h.json(&v, "instances", "list")
		if len(v.Instances) != 1 {
			t.Fatalf("the task hub has %d instances, want only done-1", len(v.Instances))
		}
	}

	for _, tc := range []struct {
		name  string
		code  int
		wants []string
		args  []string
	}{
		{"invalid id", exitUsage, []string{"instance id", "control character"}, []string{"instances", "show", "bad\tid"}},
		{"empty id", exitUsage, []string{"instance id is empty"}, []string{"instances", "history", ""}},
		{"invalid --id", exitUsage, []string{"--id", "control character"}, []string{"instances", "start", "HelloSequence", "--id", "x\x01y"}},
		{"malformed --input", exitUsage, []string{"--input is not valid JSON", "quotes"}, []string{"instances", "start", "HelloSequence", "--id", "json-bad", "--input", "{bad"}},
		{"bare word --input", exitUsage, []string{"--input is not valid JSON"}, []string{"instances", "start", "HelloSequence", "--id", "json-bad", "--input", "Ann"}},
		{"malformed --data", exitUsage, []string{"--data is not valid JSON"}, []string{"instances", "raise", "done-1", "ev", "--data", "{"}},
		{"unknown instance", exitFailed, []string{`"nosuch"`, "not found", "hint: check the instance id"}, []string{"instances", "show", "nosuch"}},
		{"history of unknown instance", exitFailed, []string{`"nosuch"`, "not found"}, []string{"instances", "history", "nosuch"}},
		{"raise to unknown instance", exitFailed, []string{`"nosuch"`, "not found"}, []string{"raise", "nosuch", "approval"}},
		{"terminate unknown instance", exitFailed, []string{`"nosuch"`, "not found"}, []string{"terminate", "nosuch"}},
		{"suspend unknown instance", exitFailed, []string{`"nosuch"`, "not found"}, []string{"suspend", "nosuch"}},
		{"restart unknown instance", exitFailed, []string{`"nosuch"`, "not found"}, []string{"restart", "nosuch"}},
		{"purge unknown instance", exitFailed, []string{`"nosuch"`, "not found"}, []string{"purge", "nosuch"}},
		{"raise to completed instance", exitFailed, []string{`instance "done-1" is Completed`, "restart"}, []string{"raise", "done-1", "approval"}},
		{"terminate completed instance", exitFailed, []string{`instance "done-1" is Completed`}, []string{"terminate", "done-1"}},
		{"start with a taken id", exitFailed, []string{`instance "done-1"`, "another --id"}, []string{"instances", "start", "FanOutFanIn", "--id", "done-1"}},
		{"invalid event name", exitUsage, []string{"event name", "control character"}, []string{"raise", "done-1", "a\nb"}},
		{"missing argument", exitUsage, []string{"missing ID", "usage: azdurable instances show ID"}, []string{"instances", "show"}},
		{"extra argument", exitUsage, []string{`unexpected argument "b"`}, []string{"instances", "show", "a", "b"}},
		{"unknown flag", exitUsage, []string{"unknown flag: --bogus"}, []string{"instances", "list", "--bogus"}},
		{"unknown command", exitUsage, []string{`unknown command "bogus"`}, []string{"bogus"}},
		{"unknown subcommand", exitUsage, []string{`unknown command "bogus" for "azdurable instances"`}, []string{"instances", "bogus"}},
		{"bad --output", exitUsage, []string{`--output "yaml"`, "table or json"}, []string{"instances", "list", "-o", "yaml"}},
		{"bad --status", exitUsage, []string{"--status", `unknown status "Done"`}, []string{"instances", "list", "--status", "Done"}},
		{"bad --page-size", exitUsage, []string{"--page-size 0 is outside 1..1000"}, []string{"instances", "list", "--page-size", "0"}},
		{"bad --created-before", exitUsage, []string{`--created-before "yesterday" is not a time`}, []string{"instances", "list", "--created-before", "yesterday"}},
		{"bad time range", exitUsage, []string{"--created-after", "must be before --created-before"}, []string{"instances", "list", "--created-after", "1h", "--created-before", "2h"}},
		{"bad continuation", exitUsage, []string{"continuation"}, []string{"instances", "list", "--continuation", "garbage!"}},
		{"bad --start-at", exitUsage, []string{`--start-at "soon" is not a time`}, []string{"instances", "start", "HelloSequence", "--id", "soon-1", "--start-at", "soon"}},
		{"purge without ids or filter", exitUsage, []string{"purge needs instance ids"}, []string{"purge"}},
		{"purge with ids and filter", exitUsage, []string{"not both"}, []string{"purge", "done-1", "--status", "Completed"}},
		{"purge running instances", exitUsage, []string{"--status Running", "only ended instances"}, []string{"purge", "--status", "Running"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.in(t).fail(tc.code, tc.wants, tc.args...)
		})
	}
	nothingWritten("json-bad", "soon-1", "nosuch")
	if st, err := h.client.GetInstance(testContext(t), "done-1", false); err != nil || st.Status != core.StatusCompleted {
		t.Fatalf("done-1: %v, %v", st, err)
	}

	t.Run("unregistered orchestration", func(t *testing.T) {
		h := h.in(t)
		_, errOut, code := h.run("instances", "start", "NoSuchOrchestration", "--id", "unreg-1")
		if code != exitOK {
			t.Fatalf("start of an unregistered orchestration: exit %d: %s", code, errOut)
		}
		contains(t, "start warning", errOut, "warning: none of the 1 live hosts has registered orchestration \"NoSuchOrchestration\"")
		// The start waits for a host that has the orchestration.
		h.fail(exitFailed, []string{`"unreg-1"`, "not found"}, "instances", "show", "unreg-1")
		var v struct {
			Partitions []partitionView `json:"partitions"`
		}
		h.json(&v, "partitions")
		if p := v.Partitions[h.prov.PartitionOf("unreg-1")]; p.QueueDepth < 1 {
			t.Fatalf("partition %+v: the start of unreg-1 is not queued", p)
		}
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
