package badinput

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
)

const kib = 1 << 10

// jsonString is a JSON string payload of exactly n bytes (n >= 2), of
// text that needs escaping nowhere.
func jsonString(n int) core.RawPayload {
	b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	b[0], b[n-1] = '"', '"'
	return b
}

// Every call refused by the client matches its sentinel, names the
// offending value and writes nothing to the task hub.
func TestClientRefusesBadInput(t *testing.T) {
	p := newProvider(t, azurite.ForTest(t))
	c := core.NewClient(p)
	ctx := testCtx(t)
	maxPayload := p.Limits().MaxPayloadBytes
	if maxPayload != 50<<20 {
		t.Fatalf("default MaxPayloadBytes is %d, want 50 MiB", maxPayload)
	}
	long := strings.Repeat("x", kib)
	start := func(id string, name any, in any) func() error {
		return func() error {
			_, err := c.Start(ctx, name, core.WithInstanceID(id), core.WithInput(in))
			return err
		}
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		want  error
		names string // the error text must contain it
	}{
		{"start/id 1 KiB", start(long, samples.HelloSequence, nil), core.ErrInvalidInput, "1024 bytes"},
		{"start/id 257 bytes", start(strings.Repeat("é", 128)+"x", samples.HelloSequence, nil), core.ErrInvalidInput, "257 bytes"},
		{"start/id not UTF-8", start("bad\xffid", samples.HelloSequence, nil), core.ErrInvalidInput, "not valid UTF-8"},
		{"start/id NUL", start("a\x00b", samples.HelloSequence, nil), core.ErrInvalidInput, "U+0000"},
		{"start/id newline", start("a\nb", samples.HelloSequence, nil), core.ErrInvalidInput, "U+000A"},
		{"start/id U+001F", start("a\x1fb", samples.HelloSequence, nil), core.ErrInvalidInput, "U+001F"},
		{"start/id DEL", start("a\x7fb", samples.HelloSequence, nil), core.ErrInvalidInput, "U+007F"},
		{"start/id U+0085", start("a\u0085b", samples.HelloSequence, nil), core.ErrInvalidInput, "U+0085"},
		{"start/id U+009F", start("a\u009fb", samples.HelloSequence, nil), core.ErrInvalidInput, "U+009F"},
		{"start/name empty", start("ok-id", "", nil), core.ErrInvalidInput, "orchestration name is empty"},
		{"start/name control", start("ok-id", "Hello\tSequence", nil), core.ErrInvalidInput, "orchestration name"},
		{"start/name 1 KiB", start("ok-id", long, nil), core.ErrInvalidInput, "orchestration name is 1024 bytes"},
		{"start/not a function", start("ok-id", 42, nil), core.ErrInvalidInput, "not int"},
		{"start/input not encodable", start("ok-id", samples.HelloSequence, make(chan int)), core.ErrInvalidInput, "chan int"},
		{"start/input limit+1", start("big-in", samples.HelloSequence, jsonString(maxPayload+1)), core.ErrPayloadTooLarge, `input of instance "big-in" is 52428801 bytes`},
		{"raise/id empty", func() error { return c.RaiseEvent(ctx, "", "go", nil) }, core.ErrInvalidInput, "instance id is empty"},
		{"raise/id control", func() error { return c.RaiseEvent(ctx, "a\rb", "go", nil) }, core.ErrInvalidInput, "U+000D"},
		{"raise/name empty", func() error { return c.RaiseEvent(ctx, "some-id", "", nil) }, core.ErrInvalidInput, "event name is empty"},
		{"raise/name control", func() error { return c.RaiseEvent(ctx, "some-id", "a\x00", nil) }, core.ErrInvalidInput, "event name"},
		{"raise/data limit+1", func() error { return c.RaiseEvent(ctx, "some-id", "go", jsonString(maxPayload+1)) }, core.ErrPayloadTooLarge, `event "go" for instance "some-id"`},
		{"raise/unknown instance", func() error { return c.RaiseEvent(ctx, "no-such-instance", "go", "x") }, core.ErrInstanceNotFound, "no-such-instance"},
		{"terminate/unknown instance", func() error { return c.Terminate(ctx, "no-such-instance", "r", false) }, core.ErrInstanceNotFound, "no-such-instance"},
		{"suspend/unknown instance", func() error { return c.Suspend(ctx, "no-such-instance", "r") }, core.ErrInstanceNotFound, "no-such-instance"},
		{"resume/id 1 KiB", func() error { return c.Resume(ctx, long, "r") }, core.ErrInvalidInput, "instance id is 1024 bytes"},
		{"restart/unknown instance", func() error { _, err := c.Restart(ctx, "no-such-instance", true); return err }, core.ErrInstanceNotFound, "no-such-instance"},
		{"get/id empty", func() error { _, err := c.GetInstance(ctx, "", false); return err }, core.ErrInvalidInput, "instance id is empty"},
		{"get/unknown instance", func() error { _, err := c.GetInstance(ctx, "no-such-instance", false); return err }, core.ErrInstanceNotFound, "no-such-instance"},
		{"history/id control", func() error { _, err := c.History(ctx, "a\x1bb"); return err }, core.ErrInvalidInput, "U+001B"},
		{"purge/unknown instance", func() error { return c.Purge(ctx, "no-such-instance") }, core.ErrInstanceNotFound, "no-such-instance"},
		{"query/page size", func() error { _, err := c.Query(ctx, core.InstanceQuery{PageSize: 1001}); return err }, core.ErrInvalidInput, "page size 1001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if core.IsRetryable(err) {
				t.Errorf("bad input is retryable: %v", err)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("err = %q, want it to name %q", err, tc.names)
			}
			if len(err.Error()) > 2*kib {
				t.Errorf("error text is %d bytes long", len(err.Error()))
			}
			nothingWritten(t, p, tc.name)
		})
	}
}

// Legal ids, including those table keys cannot hold unescaped, and legal
// payloads, including those that must spill to blobs, work end to end.
func TestLegalInputWorksEndToEnd(t *testing.T) {
	p := newProvider(t, azurite.ForTest(t))
	c := startRuntime(t, p)
	ctx := testCtx(t)

	t.Run("ids", func(t *testing.T) {
		for _, id := range []string{
			"a/b", "a#b", "a?b", `a\b`, `/\#?`, "emoji 🎉✨", "日本語のインスタンス", "quote ' % + & < > \" space",
			"\u200b zero width and \ufeff BOM", "U+00A0\u00a0and U+2028\u2028",
			strings.Repeat("/", core.MaxInstanceIDLength),
			strings.Repeat("🎉", core.MaxInstanceIDLength/4),
		} {
			got, err := c.Start(ctx, samples.HelloSequence, core.WithInstanceID(id), core.WithInput([]string{id}))
			if err != nil {
				t.Errorf("start %q: %v", id, err)
				continue
			}
			if got != id {
				t.Errorf("start %q returned id %q", id, got)
			}
			out, err := core.WaitForResult[[]string](ctx, c, id)
			if err != nil {
				t.Errorf("instance %q: %v", id, err)
				continue
			}
			if want := []string{samples.Greeting(id)}; !slices.Equal(out, want) {
				t.Errorf("instance %q: output %q, want %q", id, out, want)
			}
			st, err := c.GetInstance(ctx, id, false)
			if err != nil || st.InstanceID != id {
				t.Errorf("instance %q read back as %+v, %v", id, st, err)
			}
		}
	})

	t.Run("payloads", func(t *testing.T) {
		unicode := core.RawPayload(`{"text":"` + strings.Repeat(`é🎉\u0000\n\"\\`, 4*kib) + `"}`)
		for _, tc := range []struct {
			name string
			in   core.RawPayload
		}{
			{"0 bytes", core.RawPayload{}},
			{"64 KiB-1", jsonString(64*kib - 1)},
			{"64 KiB", jsonString(64 * kib)},
			{"64 KiB+1", jsonString(64*kib + 1)},
			{"escapes and unicode", unicode},
			{"1 MiB", jsonString(kib * kib)},
		} {
			id := "payload " + tc.name
			if _, err := c.Start(ctx, Echo, core.WithInstanceID(id), core.WithInput(tc.in)); err != nil {
				t.Errorf("%s: start: %v", tc.name, err)
				continue
			}
			st, err := c.WaitForCompletion(ctx, id)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if st.Status != core.StatusCompleted {
				t.Errorf("%s: status %s, failure %+v", tc.name, st.Status, st.Failure)
				continue
			}
			if !bytes.Equal(st.Input, tc.in) || !bytes.Equal(st.Output, tc.in) {
				t.Errorf("%s: sent %d bytes, read back input of %d and output of %d bytes, or different bytes", tc.name, len(tc.in), len(st.Input), len(st.Output))
			}
		}
	})

	t.Run("event payload 1 MiB", func(t *testing.T) {
		id := "event-payload"
		if _, err := c.Start(ctx, EchoEvent, core.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
		// An event needs the instance row, which the runtime writes.
		if _, err := c.WaitForStart(ctx, id); err != nil {
			t.Fatal(err)
		}
		data := jsonString(kib * kib)
		if err := c.RaiseEvent(ctx, id, "item", data); err != nil {
			t.Fatal(err)
		}
		st, err := c.WaitForCompletion(ctx, id)
		if err != nil || st.Status != core.StatusCompleted {
			t.Fatalf("status %v, err %v", st, err)
		}
		if !bytes.Equal(st.Output, data) {
			t.Errorf("sent an event of %d bytes, read back an output of %d bytes, or different bytes", len(data), len(st.Output))
		}
	})
}

// MaxPayloadBytes is inclusive: a payload of exactly the limit (50 MiB by
// default) is accepted and sent, one byte more is refused before anything is
// written (TestClientRefusesBadInput). No runtime runs here: a 50 MiB
// round trip through a runtime takes minutes under the race detector, and
// the spilling path is the one the 1 MiB case takes end to end.
func TestPayloadLimitIsInclusive(t *testing.T) {
	p := newProvider(t, azurite.ForTest(t))
	c := core.NewClient(p)
	ctx := testCtx(t)
	limit := p.Limits().MaxPayloadBytes
	if _, err := c.Start(ctx, Echo, core.WithInstanceID("payload-at-limit"), core.WithInput(jsonString(limit))); err != nil {
		t.Fatalf("a payload of exactly MaxPayloadBytes (%d) was refused: %v", limit, err)
	}
	stats, err := p.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range stats {
		n += s.ApproximateCount
	}
	if n != 1 {
		t.Errorf("the start left %d messages, want 1", n)
	}
}

// Duplicate starts, unknown orchestrations, and events and commands to
// completed instances.
func TestInstanceLifecycleMisuse(t *testing.T) {
	p := newProvider(t, azurite.ForTest(t))
	c := startRuntime(t, p)
	ctx := testCtx(t)

	id := "done/once"
	if _, err := c.Start(ctx, samples.HelloSequence, core.WithInstanceID(id), core.WithInput([]string{"a"})); err != nil {
		t.Fatal(err)
	}
	first, err := c.WaitForCompletion(ctx, id)
	if err != nil || first.Status != core.StatusCompleted {
		t.Fatalf("status %v, err %v", first, err)
	}
	queuesEmpty := func(what string) {
		t.Helper()
		stats, err := p.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stats {
			if s.ApproximateCount != 0 {
				t.Errorf("%s: queue %s holds %d messages", what, s.Name, s.ApproximateCount)
			}
		}
	}
	waitQueuesEmpty(t, p)

	for _, tc := range []struct {
		name  string
		call  func() error
		want  error
		names string
	}{
		{"duplicate start", func() error {
			_, err := c.Start(ctx, samples.HelloSequence, core.WithInstanceID(id), core.WithInput([]string{"b"}))
			return err
		}, core.ErrInstanceExists, `instance "done/once" is Completed`},
		{"raise to completed", func() error { return c.RaiseEvent(ctx, id, "go", "x") }, core.ErrInstanceCompleted, `instance "done/once"`},
		{"terminate completed", func() error { return c.Terminate(ctx, id, "r", false) }, core.ErrInstanceCompleted, `instance "done/once"`},
		{"suspend completed", func() error { return c.Suspend(ctx, id, "r") }, core.ErrInstanceCompleted, `instance "done/once"`},
	} {
		err := tc.call()
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("%s: err = %v, want %v naming %q", tc.name, err, tc.want, tc.names)
		}
		queuesEmpty(tc.name)
		st, err := c.GetInstance(ctx, id, true)
		if err != nil || st.ExecutionID != first.ExecutionID || !bytes.Equal(st.Output, first.Output) {
			t.Errorf("%s: the completed instance changed: %+v, %v", tc.name, st, err)
		}
	}

	// ReplaceIfTerminal is the documented way to reuse the id.
	if _, err := c.Start(ctx, samples.HelloSequence, core.WithInstanceID(id), core.WithInput([]string{"b"}), core.WithIfExists(core.ReplaceIfTerminal)); err != nil {
		t.Fatalf("replace a completed instance: %v", err)
	}
	// Until the runtime starts the new execution, the instance still reads
	// as the old, completed one.
	replaced := waitFor(t, func() bool {
		st, err := c.GetInstance(ctx, id, true)
		return err == nil && st.ExecutionID != first.ExecutionID && st.Status.IsTerminal()
	})
	if !replaced {
		t.Fatal("the replacing execution did not complete")
	}
	out, err := core.WaitForResult[[]string](ctx, c, id)
	if err != nil || !slices.Equal(out, []string{samples.Greeting("b")}) {
		t.Fatalf("replaced instance: %q, %v", out, err)
	}

	// An event nobody waits for is accepted by a running instance, which
	// then completes normally.
	waiter := "waits-for-item"
	if _, err := c.Start(ctx, EchoEvent, core.WithInstanceID(waiter)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStart(ctx, waiter); err != nil {
		t.Fatal(err)
	}
	if err := c.RaiseEvent(ctx, waiter, "nobody-waits-for-this", "x"); err != nil {
		t.Fatalf("unknown event name: %v", err)
	}
	if err := c.RaiseEvent(ctx, waiter, "item", "x"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.WaitForCompletion(ctx, waiter); err != nil || st.Status != core.StatusCompleted {
		t.Fatalf("status %v, err %v", st, err)
	}
}

// waitQueuesEmpty waits until every queue of the hub is empty: the runtime
// deletes a message after the commit that a waiter sees.
func waitQueuesEmpty(t *testing.T, p *azprovider.Provider) {
	t.Helper()
	ctx := testCtx(t)
	empty := waitFor(t, func() bool {
		stats, err := p.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stats {
			if s.ApproximateCount != 0 {
				return false
			}
		}
		return true
	})
	if !empty {
		t.Fatal("the queues are not empty")
	}
}

// waitFor polls cond, backing off, until it holds or a minute passes; the
// storage state it reads has no notification to await.
func waitFor(t *testing.T, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}

// An orchestration no host registers is accepted by the client, which needs
// no registry, and then waits in its control queue (docs/operations.md):
// no instance row, never poison, until a host that has it runs it.
func TestUnknownOrchestrationWaitsForADeploy(t *testing.T) {
	p := newProvider(t, azurite.ForTest(t))
	ctx := testCtx(t)
	old := runRuntime(t, p, core.NewRegistry())
	c := old.Client()
	id := "unknown-orchestration"
	if _, err := c.Start(ctx, "NoSuchOrchestration", core.WithInstanceID(id), core.WithInput(core.RawPayload(`"x"`))); err != nil {
		t.Fatalf("start unknown orchestration: %v", err)
	}
	// The host without it sends the message again, 2 s later, at least once.
	if !waitFor(t, func() bool { return p.Stats()["queue.put"] >= 2 }) {
		t.Fatalf("the start message was not put back; provider stats %v", p.Stats())
	}
	if _, err := c.GetInstance(ctx, id, false); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("instance of an unknown orchestration: %v, want ErrInstanceNotFound", err)
	}
	shutdown(t, old)

	reg := core.NewRegistry()
	if err := core.RegisterOrchestration(reg, Echo, core.WithName("NoSuchOrchestration")); err != nil {
		t.Fatal(err)
	}
	c = runRuntime(t, p, reg).Client()
	st, err := c.WaitForCompletion(ctx, id)
	if err != nil || st.Status != core.StatusCompleted || string(st.Output) != `"x"` {
		t.Fatalf("after the deploy: %+v, %v", st, err)
	}
}
