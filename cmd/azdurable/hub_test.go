package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
	"github.com/azdurable/azdurable/ops"
)

// TestTaskHubAzurite creates, describes and deletes a task hub with the CLI.
func TestTaskHubAzurite(t *testing.T) {
	c := newCLI(t)
	hub := c.env[envTaskHub]
	c.fail(exitFailed, []string{"task hub \"" + hub + "\" does not exist", "hint: create it with 'azdurable taskhub create --taskhub " + hub + "'"},
		"taskhub", "info")
	c.fail(exitUsage, []string{"--partitions 0 is outside 1..256"}, "taskhub", "create", "--partitions", "0")
	contains(t, "create", c.ok("taskhub", "create", "--partitions", "3"), "Created task hub "+hub+" with 3 partitions.")
	t.Cleanup(func() { c.run("taskhub", "delete", "--yes") })
	contains(t, "create again", c.ok("taskhub", "create", "--partitions", "3"), "already exists with 3 partitions; nothing changed")
	c.fail(exitUsage, []string{"already exists with 3 partitions", "--partitions 3"}, "taskhub", "create", "--partitions", "5")

	out := c.ok("taskhub", "info")
	contains(t, "info", out, "Task hub:", hub, "Partitions:", "3", "Live hosts:", "Dead letters:")
	var info hubInfoView
	c.json(&info, "taskhub", "info")
	if info.TaskHub != hub || info.Partitions != 3 || info.FormatVersion < 1 || info.CreatedAt.IsZero() ||
		info.ControlMessages != 0 || info.WorkItems != 0 || info.LiveHosts != 0 || info.DeadLetters != 0 {
		t.Fatalf("taskhub info -o json: %+v", info)
	}

	c.fail(exitUsage, []string{"deletes all its instances", "pass --yes"}, "taskhub", "delete")
	c.ok("taskhub", "info") // still there
	contains(t, "delete", c.ok("taskhub", "delete", "--yes"), "Deleted task hub "+hub+".")
	c.fail(exitFailed, []string{"does not exist"}, "taskhub", "info")
	c.fail(exitFailed, []string{"does not exist"}, "taskhub", "delete", "--yes")
}

// TestPartitionsAndHostsAzurite shows partitions with their leases and
// queues, and the live hosts with their registrations.
func TestPartitionsAndHostsAzurite(t *testing.T) {
	h := newTestHub(t, 4)
	h.serve(t)

	// A lease held by a host of its own, as a partition manager would.
	store := leases.NewBlobStore(h.prov.LeaseContainer())
	ctx := testContext(t)
	l, err := store.Acquire(ctx, 2, "lease-host", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Release(context.Background(), l) })

	var v struct {
		Partitions []partitionView `json:"partitions"`
		WorkItems  queueView       `json:"workItems"`
	}
	h.json(&v, "partitions")
	if len(v.Partitions) != 4 {
		t.Fatalf("partitions: %d, want 4", len(v.Partitions))
	}
	for i, p := range v.Partitions {
		want := partitionView{Partition: i, LeaseState: ops.LeaseFree}
		if i == 2 {
			want = partitionView{Partition: 2, Owner: "lease-host", LeaseState: ops.LeaseLeased, Epoch: l.Epoch}
		}
		p.QueueDepth, p.OldestMessageAgeSeconds = 0, 0 // the runtime may be moving messages
		if p != want {
			t.Fatalf("partition %d: %+v, want %+v", i, p, want)
		}
	}
	if !strings.HasSuffix(v.WorkItems.Name, "-workitems") {
		t.Fatalf("work-item queue %+v", v.WorkItems)
	}
	out := h.ok("partitions")
	contains(t, "partitions", out, "PARTITION", "OWNER", "LEASE", "EPOCH", "QUEUE", "OLDEST", "lease-host", "leased", "free", "Work items ("+v.WorkItems.Name+")")

	// The runtime publishes its host record when it starts.
	var hosts struct {
		Hosts []core.HostInfo `json:"hosts"`
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for h.json(&hosts, "hosts"); len(hosts.Hosts) == 0; h.json(&hosts, "hosts") {
		select {
		case <-ctx.Done():
			t.Fatal("the runtime's host record did not appear")
		case <-tick.C:
		}
	}
	host := hosts.Hosts[0]
	if len(hosts.Hosts) != 1 || host.ID != testHostID {
		t.Fatalf("hosts: %+v", hosts.Hosts)
	}
	has := func(regs []core.NameVersion, name string) bool {
		return slices.ContainsFunc(regs, func(r core.NameVersion) bool { return r.Name == name })
	}
	if !has(host.Orchestrations, "HelloSequence") || !has(host.Orchestrations, "Approval") || !has(host.Activities, "SayHello") || has(host.Activities, "HelloSequence") {
		t.Fatalf("host registrations: %+v / %+v", host.Orchestrations, host.Activities)
	}
	out = h.ok("hosts")
	contains(t, "hosts", out, "Host:", testHostID, "Orchestrations:", "HelloSequence", "Activities:", "SayHello", "Last seen:")
}

// TestDeadLettersAzurite lists, shows, replays and discards a poison
// message, and shows its queue in partitions.
func TestDeadLettersAzurite(t *testing.T) {
	h := newTestHub(t, 2) // no runtime: the messages stay where the test puts them
	ctx := testContext(t)
	_, errOut, _ := h.run("deadletters", "list")
	contains(t, "empty list", errOut, "No dead letters.")

	part := h.prov.PartitionOf("poison-1")
	poison := func(reason string) string {
		t.Helper()
		msg := &core.Message{ID: core.NewID(), InstanceID: "poison-1",
			Event: &core.Event{Seq: -1, Kind: core.EventEventRaised, Time: time.Now(), Name: "boom", Data: []byte(`{"x":1}`)}}
		if err := h.prov.SendMessages(ctx, []*core.Message{msg}); err != nil {
			t.Fatal(err)
		}
		got, err := h.prov.FetchMessages(ctx, part, 32, time.Minute)
		if err != nil || len(got) != 1 {
			t.Fatalf("fetch: %d messages, %v", len(got), err)
		}
		if err := h.prov.DeadLetterMessages(ctx, part, got, reason); err != nil {
			t.Fatal(err)
		}
		return msg.ID
	}
	msgID := poison("poison: failed 11 times")

	var list struct {
		DeadLetters []*deadLetterView `json:"deadLetters"`
	}
	h.json(&list, "deadletters", "list")
	if len(list.DeadLetters) != 1 {
		t.Fatalf("deadletters list: %d, want 1", len(list.DeadLetters))
	}
	d := list.DeadLetters[0]
	if d.Partition != part || d.InstanceID != "poison-1" || d.Reason != "poison: failed 11 times" || d.What != `EventRaised "boom"` || d.Message == nil || d.Message.ID != msgID {
		t.Fatalf("dead letter %+v", d)
	}
	contains(t, "deadletters list", h.ok("deadletters", "list"), "ID", "REASON", d.ID, "poison-1", "poison: failed 11 times", fmt.Sprintf("control %d", part))
	contains(t, "deadletters show", h.ok("deadletters", "show", d.ID), "Dead letter:", d.ID, "Reason:", "poison: failed 11 times", `{"x":1}`, msgID)
	var info hubInfoView
	h.json(&info, "taskhub", "info")
	if info.DeadLetters != 1 {
		t.Fatalf("taskhub info counts %d dead letters, want 1", info.DeadLetters)
	}

	// Bad ids: malformed, or of no dead letter.
	h.fail(exitUsage, []string{"not a dead-letter id"}, "deadletters", "show", "nosuch")
	for _, cmd := range []string{"show", "replay", "discard"} {
		h.fail(exitFailed, []string{"dead letter not found", "hint: check the id; 'azdurable deadletters list'"}, "deadletters", cmd, "20260101T000000|nosuch")
	}

	// Replay puts the message back on its control queue.
	contains(t, "replay", h.ok("deadletters", "replay", d.ID), "Replayed dead letter "+d.ID)
	_, errOut, _ = h.run("deadletters", "list")
	contains(t, "list after replay", errOut, "No dead letters.")
	var parts struct {
		Partitions []partitionView `json:"partitions"`
	}
	h.json(&parts, "partitions")
	for _, p := range parts.Partitions {
		want := 0
		if p.Partition == part {
			want = 1
		}
		if p.QueueDepth != want || p.OldestMessageAgeSeconds < 0 {
			t.Fatalf("partition %+v: queue depth %d, want %d", p, p.QueueDepth, want)
		}
	}

	// Dead-letter it again, then discard it for good.
	got, err := h.prov.FetchMessages(ctx, part, 32, time.Minute)
	if err != nil || len(got) != 1 || got[0].ID != msgID {
		t.Fatalf("the replayed message is not on its queue: %d messages, %v", len(got), err)
	}
	if err := h.prov.DeadLetterMessages(ctx, part, got, "again"); err != nil {
		t.Fatal(err)
	}
	h.json(&list, "deadletters", "list")
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].Reason != "again" {
		t.Fatalf("deadletters list: %+v", list.DeadLetters)
	}
	contains(t, "discard", h.ok("deadletters", "discard", list.DeadLetters[0].ID), "Discarded dead letter")
	_, errOut, _ = h.run("deadletters", "list")
	contains(t, "list after discard", errOut, "No dead letters.")
	h.json(&parts, "partitions")
	for _, p := range parts.Partitions {
		if p.QueueDepth != 0 {
			t.Fatalf("partition %+v: the discarded message is still queued", p)
		}
	}
}

// TestHubErrors covers a task hub that is missing, misnamed or unreachable.
func TestHubErrorsAzurite(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		name  string
		cli   *cli
		code  int
		wants []string
		args  []string
	}{
		{"no task hub", c.with(envTaskHub, ""), exitUsage, []string{"no task hub given", "--taskhub", envTaskHub}, []string{"instances", "list"}},
		{"invalid task hub name", c, exitUsage, []string{"--taskhub", `"Bad_Hub"`, "is invalid"}, []string{"instances", "list", "--taskhub", "Bad_Hub"}},
		{"task hub that does not exist", c, exitFailed, []string{`task hub "nosuchhub42" does not exist`, "taskhub create --taskhub nosuchhub42"}, []string{"instances", "list", "--taskhub", "nosuchhub42"}},
		{"malformed connection string", c.with(envConnectionString, "AccountName=x;AccountKey=SECRETSECRETKEY;oops"), exitUsage, []string{"connection string", "not shown"}, []string{"partitions"}},
		{"unreachable storage", c.with(envConnectionString, "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=U0VDUkVUU0VDUkVUS0VZ;"+
			"BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;TableEndpoint=http://127.0.0.1:1/devstoreaccount1;"),
			exitFailed, []string{"storage", "hint: storage did not answer", envConnectionString}, []string{"hosts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.cli.in(t)
			errOut := cl.fail(tc.code, tc.wants, tc.args...)
			for _, secret := range []string{"SECRETSECRETKEY", "U0VDUkVUU0VDUkVUS0VZ"} {
				if strings.Contains(errOut, secret) {
					t.Fatalf("the error shows the account key:\n%s", errOut)
				}
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		out := c.in(t).ok("instances")
		contains(t, "instances", out, "Available Commands:", "list", "history", "purge")
		out = c.in(t).ok("--help")
		contains(t, "help", out, "Task hub commands:", "partitions", "deadletters", "taskhub", "hosts", "Shortcuts", envConnectionString)
		contains(t, "completion", c.in(t).ok("completion", "bash"), "bash completion")
		contains(t, "help history", c.in(t).ok("help", "instances", "history"), "--json", "timeline")
	})
}
