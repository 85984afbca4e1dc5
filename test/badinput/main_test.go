package badinput

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
)

func TestMain(m *testing.M) { azurite.Main(m) }

// hubName returns a task hub name unique to the test.
func hubName(t testing.TB) string {
	var b strings.Builder
	b.WriteString("bi")
	for _, r := range strings.ToLower(t.Name()) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if len(name) > 24 {
		name = name[:24]
	}
	return fmt.Sprintf("%s%08x", name, rand.Uint32())
}

// testCtx bounds a test's storage calls.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newProvider creates a fresh task hub of two partitions, deleted when the
// test ends.
func newProvider(t testing.TB, connStr string) *azprovider.Provider {
	t.Helper()
	hub := hubName(t)
	p, err := azprovider.New(testCtx(t), azprovider.Options{ConnectionString: connStr, TaskHub: hub, Partitions: 2, CreateIfMissing: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.DeleteTaskHub(ctx); err != nil {
			t.Errorf("DeleteTaskHub: %v", err)
		}
	})
	return p
}

// Echo returns its input unchanged, byte for byte.
func Echo(_ *core.OrchestrationContext, in core.RawPayload) (core.RawPayload, error) { return in, nil }

// EchoEvent waits for the event "item" and returns its data unchanged.
func EchoEvent(ctx *core.OrchestrationContext, _ core.Void) (core.RawPayload, error) {
	return core.WaitForEvent[core.RawPayload](ctx, "item").Await(ctx)
}

// startRuntime runs the samples, Echo and EchoEvent on p until the test
// ends and returns its client.
func startRuntime(t testing.TB, p *azprovider.Provider) *core.Client {
	t.Helper()
	reg := core.NewRegistry()
	for _, err := range []error{
		samples.Register(reg),
		core.RegisterOrchestration(reg, Echo),
		core.RegisterOrchestration(reg, EchoEvent),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	rt := runRuntime(t, p, reg)
	t.Cleanup(func() { shutdown(t, rt) })
	return rt.Client()
}

// runRuntime starts a runtime of reg on p, owning every partition. The
// caller shuts it down.
func runRuntime(t testing.TB, p *azprovider.Provider, reg *core.Registry) *core.Runtime {
	t.Helper()
	rt, err := core.NewRuntime(core.Options{Provider: p, Registry: reg, PollMaxInterval: 50 * time.Millisecond, HostID: "badinput-" + core.NewID()[:8]})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rt
}

func shutdown(t testing.TB, rt *core.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// nothingWritten fails the test unless the task hub has no instance and no
// queued message.
func nothingWritten(t testing.TB, p *azprovider.Provider, what string) {
	t.Helper()
	ctx := testCtx(t)
	page, err := p.QueryInstances(ctx, core.InstanceQuery{})
	if err != nil {
		t.Fatalf("%s: query instances: %v", what, err)
	}
	if len(page.Instances) != 0 {
		t.Errorf("%s: %d instance rows written, first %q", what, len(page.Instances), page.Instances[0].InstanceID)
	}
	stats, err := p.QueueStats(ctx)
	if err != nil {
		t.Fatalf("%s: queue stats: %v", what, err)
	}
	for _, s := range stats {
		if s.ApproximateCount != 0 {
			t.Errorf("%s: queue %s holds %d messages", what, s.Name, s.ApproximateCount)
		}
	}
}
