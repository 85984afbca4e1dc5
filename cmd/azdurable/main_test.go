package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
)

func TestMain(m *testing.M) { azurite.Main(m) }

// cli runs the command tree in-process with its own environment.
type cli struct {
	t   *testing.T
	env map[string]string
	// secret must never appear in any output.
	secret string
}

var accountKeyRE = regexp.MustCompile(`(?i)AccountKey=([^;]+)`)

// newCLI returns a cli on the test's Azurite with a fresh task hub name
// (not created).
func newCLI(t *testing.T) *cli {
	t.Helper()
	cs := azurite.ForTest(t)
	c := &cli{t: t, env: map[string]string{envConnectionString: cs, envTaskHub: hubName(t)}}
	if m := accountKeyRE.FindStringSubmatch(cs); m != nil {
		c.secret = m[1]
	}
	return c
}

// hubName is a task hub name unique to the test.
func hubName(t *testing.T) string {
	name := "cli" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.ToLower(t.Name()))
	return fmt.Sprintf("%.24s%08x", name, rand.Uint32())
}

// in returns the cli reporting to t (a subtest).
func (c *cli) in(t *testing.T) *cli { return &cli{t: t, env: c.env, secret: c.secret} }

func (c *cli) with(key, value string) *cli {
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	env[key] = value
	return &cli{t: c.t, env: env, secret: c.secret}
}

func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, args, func(k string) string { return c.env[k] }, &out, &errOut)
	if c.secret != "" && (strings.Contains(out.String(), c.secret) || strings.Contains(errOut.String(), c.secret)) {
		c.t.Fatalf("azdurable %q printed the account key", args)
	}
	return out.String(), errOut.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != exitOK {
		c.t.Fatalf("azdurable %q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// json runs a command with --output json and decodes its stdout into v.
func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("azdurable %q: output is not JSON: %v\n%s", args, err, out)
	}
}

// fail runs a command that must exit with code and returns its stderr,
// checking that it holds every one of wants.
func (c *cli) fail(code int, wants []string, args ...string) string {
	c.t.Helper()
	out, errOut, got := c.run(args...)
	if got != code {
		c.t.Fatalf("azdurable %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, got, code, out, errOut)
	}
	for _, w := range wants {
		if !strings.Contains(errOut, w) {
			c.t.Fatalf("azdurable %q: stderr does not say %q:\n%s", args, w, errOut)
		}
	}
	return errOut
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Fatalf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

// testHub is a task hub created with the CLI, served by a runtime that runs
// the samples.
type testHub struct {
	*cli
	prov   *azprovider.Provider
	client *core.Client
}

const testHostID = "cli-test-host"

func newTestHub(t *testing.T, partitions int) *testHub {
	t.Helper()
	c := newCLI(t)
	out := c.ok("taskhub", "create", "--partitions", fmt.Sprint(partitions))
	contains(t, "taskhub create", out, "Created task hub "+c.env[envTaskHub], fmt.Sprintf("%d partitions", partitions))
	ctx := testContext(t)
	prov, err := azprovider.New(ctx, azprovider.Options{ConnectionString: c.env[envConnectionString], TaskHub: c.env[envTaskHub], Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := prov.DeleteTaskHub(ctx); err != nil {
			t.Errorf("delete task hub: %v", err)
		}
	})
	return &testHub{cli: c, prov: prov, client: core.NewClient(prov)}
}

// in returns the hub reporting to t (a subtest).
func (h *testHub) in(t *testing.T) *testHub {
	return &testHub{cli: h.cli.in(t), prov: h.prov, client: h.client}
}

// serve runs the samples on a runtime for the task hub until the test ends.
func (h *testHub) serve(t *testing.T) {
	t.Helper()
	reg := core.NewRegistry()
	if err := samples.Register(reg); err != nil {
		t.Fatal(err)
	}
	rt, err := core.NewRuntime(core.Options{Provider: h.prov, Registry: reg, HostID: testHostID,
		PollMaxInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("runtime shutdown: %v", err)
		}
	})
	h.client = rt.Client()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls the instance until ok accepts its state.
func (h *testHub) waitFor(t *testing.T, id string, what string, ok func(*core.InstanceState) bool) *core.InstanceState {
	t.Helper()
	ctx := testContext(t)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := h.client.GetInstance(ctx, id, true)
		if err == nil && ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("instance %s: gave up waiting until %s (last state %+v, error %v)", id, what, st, err)
		case <-tick.C:
		}
	}
}

func (h *testHub) waitStatus(t *testing.T, id string, want core.Status) *core.InstanceState {
	t.Helper()
	return h.waitFor(t, id, want.String(), func(st *core.InstanceState) bool { return st.Status == want })
}

func (h *testHub) waitDone(t *testing.T, id string) *core.InstanceState {
	t.Helper()
	st, err := h.client.WaitForCompletion(testContext(t), id)
	if err != nil {
		t.Fatalf("instance %s did not end: %v", id, err)
	}
	return st
}

func jsonEqual(t *testing.T, what string, got any, want string) {
	t.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("%s = %s, want %s", what, gb, wb)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
