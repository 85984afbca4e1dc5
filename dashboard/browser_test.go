package dashboard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/dashboard"
	"github.com/azdurable/azdurable/leases"
	"github.com/azdurable/azdurable/ops"
	"github.com/azdurable/azdurable/partition"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
)

const (
	hostID        = "dash-host-a"
	operatorToken = "test-operator-token-0123456789"
	testPartitons = 4
)

// Instances of the fixture.
const (
	fanID     = "fan-1"
	failID    = "fail-1"
	envID     = "env-1"
	approveID = "appr-1"
	stopID    = "appr-2"
	suspendID = "appr-3"
	// escapeID and escapeName must come out as text, never as markup.
	escapeID   = `xss<script>alert(1)</script>"'&`
	escapeName = `<img src=x onerror=alert(1)>`
	// poisonedID is dead-lettered on the idle task hub.
	poisonedID = "poisoned"
)

// fixture is a live task hub on Azurite with a runtime that runs the
// samples, and three dashboards on loopback: read-only, with an operator
// token, and read-only on a second task hub that no host serves.
type fixture struct {
	connStr string
	prov    *azprovider.Provider
	client  *core.Client
	// dead letters made at the start, oldest first.
	deadLetters []string
	// roURL, opURL and idleURL end with a slash.
	roURL, opURL, idleURL string
	idleHub               string
	logs                  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func hubName(prefix string) string { return fmt.Sprintf("%s%08x", prefix, rand.Uint32()) }

// newHub creates a task hub, deleted when the test ends.
func newHub(t *testing.T, ctx context.Context, connStr, name string, partitions int) *azprovider.Provider {
	t.Helper()
	prov, err := azprovider.New(ctx, azprovider.Options{ConnectionString: connStr, TaskHub: name, Partitions: partitions, CreateIfMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := prov.DeleteTaskHub(dctx); err != nil {
			t.Errorf("delete task hub %s: %v", name, err)
		}
	})
	return prov
}

// serve serves a dashboard of the task hub on a loopback port until the test ends.
func serve(t *testing.T, ctx context.Context, connStr, hub string, opts dashboard.Options) string {
	t.Helper()
	h, err := ops.Open(ctx, connStr, hub)
	if err != nil {
		t.Fatal(err)
	}
	opts.Hub = h
	handler, err := dashboard.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dashboard.Serve(sctx, ln, handler) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard.Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

func newFixture(t *testing.T, ctx context.Context, connStr string) *fixture {
	t.Helper()
	f := &fixture{connStr: connStr, logs: &syncBuffer{}}
	hub := hubName("dash")
	f.prov = newHub(t, ctx, f.connStr, hub, testPartitons)

	// A host: the samples, with partitions leased in blobs.
	reg := core.NewRegistry()
	if err := samples.Register(reg); err != nil {
		t.Fatal(err)
	}
	own, err := partition.New(partition.Options{Store: leases.NewBlobStore(f.prov.LeaseContainer()), HostID: hostID,
		Partitions: testPartitons, LeaseDuration: 15 * time.Second, RenewInterval: 3 * time.Second,
		AcquireInterval: 300 * time.Millisecond, DrainTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := core.NewRuntime(core.Options{Provider: f.prov, Registry: reg, HostID: hostID, Ownership: own,
		PollMaxInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := rt.Shutdown(sctx); err != nil {
			t.Errorf("runtime shutdown: %v", err)
		}
	})
	f.client = rt.Client()

	start := func(id string, orch any, input any) {
		t.Helper()
		if _, err := f.client.Start(ctx, orch, core.WithInstanceID(id), core.WithInput(input)); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
	}
	start(fanID, samples.FanOutFanIn, 5)
	start(failID, samples.FanOutFanIn, -1)
	start(envID, samples.ProvisionEnvironment, samples.EnvironmentRequest{Name: "dev1", VMs: 1, PollInterval: 20 * time.Millisecond})
	start(escapeID, samples.HelloSequence, []string{escapeName})
	for _, id := range []string{approveID, stopID, suspendID} {
		start(id, samples.Approval, samples.ApprovalRequest{ID: "req-" + id, Requester: "team-a", Amount: 100})
	}
	for _, id := range []string{fanID, failID, envID, escapeID} {
		if _, err := f.client.WaitForCompletion(ctx, id); err != nil {
			t.Fatalf("wait for %s: %v", id, err)
		}
	}
	for _, id := range []string{approveID, stopID, suspendID} {
		waitStatus(t, ctx, f.client, id, core.StatusRunning)
	}

	// Two messages the provider cannot decode: they become dead letters.
	for p, name := range []string{"one", "<script>alert('dl')</script>"} {
		q, err := azqueue.NewQueueClientFromConnectionString(f.connStr, fmt.Sprintf("%s-control-%02d", hub, p), nil)
		if err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf(`{"v":99,"id":"poison-%d","inst":"nobody","event":{"seq":-1,"kind":"EventRaised","name":%q}}`, p, name)
		if _, err := q.EnqueueMessage(ctx, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.deadLetters = waitDeadLetters(t, ctx, f.prov, 2)

	// A task hub nobody serves: its messages wait in the control queues.
	f.idleHub = hubName("idle")
	idle := newHub(t, ctx, f.connStr, f.idleHub, 2)
	deadLetterDecoded(t, ctx, idle)
	for i := range 3 {
		if _, err := core.NewClient(idle).Start(ctx, "HelloSequence", core.WithInstanceID(fmt.Sprintf("waiting-%d", i))); err != nil {
			t.Fatal(err)
		}
	}

	log := zerolog.New(io.MultiWriter(f.logs, zerolog.NewTestWriter(t)))
	f.roURL = serve(t, ctx, f.connStr, hub, dashboard.Options{Logger: &log})
	f.opURL = serve(t, ctx, f.connStr, hub, dashboard.Options{Logger: &log, OperatorToken: operatorToken})
	f.idleURL = serve(t, ctx, f.connStr, f.idleHub, dashboard.Options{Logger: &log})
	return f
}

// deadLetterDecoded makes two dead letters on a task hub that no host
// serves, as a runtime does with poison: a start message and an activity
// work item.
func deadLetterDecoded(t *testing.T, ctx context.Context, p *azprovider.Provider) {
	t.Helper()
	if _, err := core.NewClient(p).Start(ctx, "FanOutFanIn", core.WithInstanceID(poisonedID), core.WithInput(3)); err != nil {
		t.Fatal(err)
	}
	part := p.PartitionOf(poisonedID)
	msgs, err := p.FetchMessages(ctx, part, 32, time.Minute)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch the start of %s: %d messages, %v", poisonedID, len(msgs), err)
	}
	if err := p.DeadLetterMessages(ctx, part, msgs, "poison: failed 5 times"); err != nil {
		t.Fatal(err)
	}
	task := &core.ActivityTask{Partition: part, InstanceID: poisonedID, ExecutionID: "e1", TaskID: 7, Name: "Square",
		Input: []byte("7"), ScheduledAt: time.Now().UTC()}
	if err := p.EnqueueActivities(ctx, []*core.ActivityTask{task}); err != nil {
		t.Fatal(err)
	}
	item, err := p.FetchActivity(ctx, time.Minute)
	if err != nil || item == nil {
		t.Fatalf("fetch the work item: %v, %v", item, err)
	}
	if err := p.DeadLetterActivity(ctx, item, "poison: the activity failed 5 times"); err != nil {
		t.Fatal(err)
	}
}

// poll calls cond until it holds, backing off from 10ms to 200ms, and
// fails the test when ctx ends first.
func poll(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	delay := 10 * time.Millisecond
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached (%s)", what, last)
		case <-time.After(delay):
			delay = min(2*delay, 200*time.Millisecond)
		}
	}
}

func waitStatus(t *testing.T, ctx context.Context, c *core.Client, id string, want core.Status) {
	t.Helper()
	poll(t, ctx, fmt.Sprintf("instance %s %s", id, want), func() (bool, string) {
		st, err := c.GetInstance(ctx, id, false)
		if err != nil {
			return false, err.Error()
		}
		return st.Status == want, st.Status.String()
	})
}

func waitDeadLetters(t *testing.T, ctx context.Context, p *azprovider.Provider, n int) []string {
	t.Helper()
	var ids []string
	poll(t, ctx, fmt.Sprintf("%d dead letters", n), func() (bool, string) {
		page, err := p.ListDeadLetters(ctx, 100, "")
		if err != nil {
			return false, err.Error()
		}
		ids = ids[:0]
		for _, dl := range page.DeadLetters {
			ids = append(ids, dl.ID)
		}
		return len(ids) >= n, fmt.Sprint(ids)
	})
	return ids
}

// chromium finds the browser: $CHROMIUM, else Debian's /usr/bin/chromium.
// A missing browser fails the test: the dashboard must not go untested.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("the dashboard tests need Chromium and found none at /usr/bin/chromium: install it with " +
		"`apt-get update && apt-get install -y --no-install-recommends chromium` (Debian), or set CHROMIUM to a Chromium binary")
	return ""
}

// browser is a headless Chromium tab. Every page it opens is checked for
// secrets.
type browser struct {
	t       *testing.T
	ctx     context.Context
	secrets []string
}

// startBrowser launches Chromium in the background, so that it starts while
// the task hub is prepared, and returns a func that waits for it.
func startBrowser(t *testing.T, ctx context.Context, secrets ...string) func() *browser {
	t.Helper()
	path := chromium(t)
	out := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.CombinedOutput(out),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx)
	// Registered after TempDir, so it runs first: the browser stops before
	// its profile folder is removed.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx) }()
	return func() *browser {
		t.Helper()
		if err := <-started; err != nil {
			t.Fatalf("start Chromium (%s): %v\n%s", path, err, out.String())
		}
		return &browser{t: t, ctx: bctx, secrets: secrets}
	}
}

func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// open loads a page, checks that it holds no secret and no script, and
// returns its HTML.
func (b *browser) open(u string) string {
	b.t.Helper()
	b.run("open "+u, chromedp.Navigate(u))
	return b.checkPage()
}

func (b *browser) checkPage() string {
	b.t.Helper()
	loc := evalJS[string](b, `location.href`)
	html := evalJS[string](b, `document.documentElement.outerHTML`)
	for _, s := range b.secrets {
		if strings.Contains(html, s) {
			b.t.Fatalf("page %s shows a secret (%.12s…)", loc, s)
		}
	}
	if n := evalJS[int](b, `document.querySelectorAll('script, img, iframe, object, embed').length`); n != 0 {
		b.t.Fatalf("page %s has %d script, img or embedded elements; the dashboard has none", loc, n)
	}
	return html
}

// evalJS evaluates a JavaScript expression in the page and decodes its value.
func evalJS[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) texts(selector string) []string {
	b.t.Helper()
	return evalJS[[]string](b, fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.trim())`, selector))
}

func (b *browser) count(selector string) int {
	b.t.Helper()
	return evalJS[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, selector))
}

func (b *browser) text(selector string) string {
	b.t.Helper()
	ts := b.texts(selector)
	if len(ts) != 1 {
		b.t.Fatalf("%d elements match %s, want 1: %q", len(ts), selector, ts)
	}
	return ts[0]
}

// submit clicks a form's button and waits for the page it leads to.
func (b *browser) submit(button, awaited string) string {
	b.t.Helper()
	b.run("click "+button, chromedp.Click(button), chromedp.WaitVisible(awaited))
	return b.checkPage()
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func instanceURL(base, id string) string { return base + "instance?" + url.Values{"id": {id}}.Encode() }

// TestDashboardInChromium loads every page of the dashboard in headless
// Chromium against a live task hub and checks what it shows, then runs
// every action as an operator.
func TestDashboardInChromium(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connStr := azurite.ForTest(t)
	browserStarted := startBrowser(t, ctx, connStr, azurite.AccountKey)
	f := newFixture(t, ctx, connStr)
	b := browserStarted()

	t.Run("InstanceList", func(t *testing.T) { testInstanceList(t, b.with(t), f) })
	t.Run("InstanceTimeline", func(t *testing.T) { testInstanceTimeline(t, b.with(t), f) })
	t.Run("ChildrenAndTree", func(t *testing.T) { testChildrenAndTree(t, b.with(t), f) })
	t.Run("Escaping", func(t *testing.T) { testEscaping(t, b.with(t), f) })
	t.Run("Partitions", func(t *testing.T) { testPartitions(t, b.with(t), f) })
	t.Run("DeadLetters", func(t *testing.T) { testDeadLetters(t, b.with(t), f) })
	t.Run("ReadOnly", func(t *testing.T) { testReadOnly(t, b.with(t), f) })
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, ctx, f) })
	t.Run("OperatorActions", func(t *testing.T) { testOperatorActions(t, ctx, b.with(t), f) })
	t.Run("IdleHub", func(t *testing.T) { testIdleHub(t, ctx, b.with(t), f) })

	for _, s := range []string{f.connStr, azurite.AccountKey} {
		if strings.Contains(f.logs.String(), s) {
			t.Fatalf("the dashboard's logs show a secret (%.12s…)", s)
		}
	}
}

// with returns the browser reporting to a subtest.
func (b *browser) with(t *testing.T) *browser { return &browser{t: t, ctx: b.ctx, secrets: b.secrets} }

func testInstanceList(t *testing.T, b *browser, f *fixture) {
	b.open(f.roURL)
	ids := b.texts("#instances tr.instance-row td.id")
	for _, id := range []string{fanID, failID, envID, approveID, stopID, suspendID, escapeID} {
		if !slices.Contains(ids, id) {
			t.Errorf("the instance list lacks %q: %q", id, ids)
		}
	}
	// The children of env-1 are instances too, with their parent.
	if n := b.count(`#instances tr.instance-row td:last-child a`); n != 3 {
		t.Errorf("%d rows link to a parent, want the 3 children of %s", n, envID)
	}

	b.open(f.roURL + "instances?status=Failed")
	if got := b.texts("#instances td.id"); !slices.Equal(got, []string{failID}) {
		t.Errorf("status Failed lists %q, want only %s", got, failID)
	}
	if n := b.count(`input[name=status][value=Failed]:checked`); n != 1 {
		t.Error("the Failed box is not checked after filtering on it")
	}
	// Filters through the form: a name and an id prefix.
	b.open(f.roURL)
	b.run("fill the filters", chromedp.SendKeys(chromedp.CSS("#f-name"), "Approval"), chromedp.SendKeys(chromedp.CSS("#f-prefix"), "appr-"))
	b.submit("#f-submit", "#instances")
	approvals := []string{approveID, stopID, suspendID}
	if got := sorted(b.texts("#instances td.id")); !slices.Equal(got, approvals) {
		t.Errorf("Approval instances with prefix appr- are %q", got)
	}
	// Paging: two per page, then the next page.
	b.open(f.roURL + "instances?prefix=appr-&size=2")
	first := b.texts("#instances td.id")
	b.submit("#next", "#first")
	second := b.texts("#instances td.id")
	if len(first) != 2 || !slices.Equal(sorted(append(first, second...)), approvals) {
		t.Errorf("pages %q then %q", first, second)
	}
	if b.count("#next") != 0 {
		t.Error("the last page has a next link")
	}
	// The created range: nothing was created in the future.
	b.open(f.roURL + "instances?from=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")))
	if b.count("#instances") != 0 || b.count("#empty") != 1 {
		t.Error("instances created in the future are listed")
	}
	b.open(f.roURL + "instances?from=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)))
	if n := b.count("#instances tr.instance-row"); n < 10 {
		t.Errorf("%d instances created in the last hour, want every one", n)
	}
	b.open(f.roURL + "instances?from=yesterday")
	if msg := b.text("#error"); !strings.Contains(msg, "not a time") {
		t.Errorf("a bad time shows %q", msg)
	}
}

func testInstanceTimeline(t *testing.T, b *browser, f *fixture) {
	b.open(instanceURL(f.roURL, fanID))
	if s := b.text("#status"); s != "Completed" {
		t.Fatalf("status %q", s)
	}
	if out := b.text("#output"); out != "55" {
		t.Errorf("output %q, want 55 (the sum of the squares of 1..5)", out)
	}
	// The Gantt: the execution, then one bar per activity of the fan-out.
	bars := evalJS[[]struct {
		Kind, Name, Status, Input, Output string
		Width                             float64
	}](b, `Array.from(document.querySelectorAll('#gantt details.span')).map(d => ({
		Kind: d.dataset.kind, Name: d.dataset.name, Status: d.dataset.status,
		Input: (d.querySelector('.span-input') || {}).textContent || '',
		Output: (d.querySelector('.span-output') || {}).textContent || '',
		Width: d.querySelector('rect.bar').getBoundingClientRect().width }))`)
	if len(bars) != 6 || bars[0].Kind != "execution" || bars[0].Name != "FanOutFanIn" {
		t.Fatalf("Gantt rows %+v, want the execution and 5 activities", bars)
	}
	var inputs []string
	for _, bar := range bars[1:] {
		if bar.Kind != "activity" || bar.Name != "Square" || bar.Status != "completed" || bar.Width <= 0 {
			t.Errorf("activity bar %+v", bar)
		}
		inputs = append(inputs, bar.Input+"→"+bar.Output)
	}
	slices.Sort(inputs)
	if want := []string{"1→1", "2→4", "3→9", "4→16", "5→25"}; !slices.Equal(inputs, want) {
		t.Errorf("activity inputs and outputs %q, want %q", inputs, want)
	}
	// Hovering a row names the span; clicking it opens its details.
	tip := evalJS[string](b, `document.querySelector('#gantt details.activity summary').title`)
	if !strings.HasPrefix(tip, "activity Square #") || !strings.Contains(tip, "completed") {
		t.Errorf("hover text %q", tip)
	}
	b.run("open a span", chromedp.Click(chromedp.CSS("#gantt details.activity summary")),
		chromedp.WaitVisible(chromedp.CSS("#gantt details.activity[open] .span-input")))

	b.open(instanceURL(f.roURL, failID))
	if b.text("#status") != "Failed" || b.text("#failure .ftype") != core.FailureTypeInvalidInput {
		t.Errorf("failed instance shows %q %q", b.text("#status"), b.text("#failure .ftype"))
	}
	if msg := b.text("#failure .fmsg"); !strings.Contains(msg, "fan-out of -1") {
		t.Errorf("failure message %q", msg)
	}

	// A running instance: the timer it waits on is pending.
	b.open(instanceURL(f.roURL, approveID))
	if n := b.count(`#gantt details.timer.pending`); n != 1 {
		t.Errorf("%d pending timers drawn for a waiting approval, want 1", n)
	}

	b.open(instanceURL(f.roURL, "no-such-instance"))
	if msg := b.text("#error"); !strings.Contains(msg, "no such instance") {
		t.Errorf("a missing instance shows %q", msg)
	}
}

func testChildrenAndTree(t *testing.T, b *browser, f *fixture) {
	b.open(instanceURL(f.roURL, envID))
	children := b.texts(`#gantt details.suborchestration a.child`)
	if len(children) != 3 {
		t.Fatalf("sub-orchestration links %q, want network, database and vm-1", children)
	}
	names := evalJS[[]string](b, `Array.from(document.querySelectorAll('#gantt details.suborchestration')).map(d => d.dataset.name)`)
	if slices.ContainsFunc(names, func(n string) bool { return n != "ProvisionResource" }) {
		t.Errorf("sub-orchestration names %q", names)
	}
	// Follow a child link: the child links back to its parent.
	b.run("follow a child link", chromedp.Click(chromedp.CSS(`#gantt details.suborchestration summary`)),
		chromedp.Click(chromedp.CSS(`#gantt details.suborchestration[open] a.child`)),
		chromedp.WaitVisible(chromedp.CSS("#parent-link")))
	b.checkPage()
	child := b.text("#instance-id")
	if !slices.Contains(children, child) || b.text("#parent-link") != envID {
		t.Fatalf("child page of %q links to parent %q", child, b.text("#parent-link"))
	}
	// The tree of a child starts at its root and marks the child.
	b.submit("#tree-link", "#tree")
	nodes := evalJS[[]string](b, `Array.from(document.querySelectorAll('#tree li.node')).map(li => li.dataset.id)`)
	if len(nodes) != 4 || nodes[0] != envID {
		t.Fatalf("tree nodes %q, want %s and its three children", nodes, envID)
	}
	if cur := b.texts("#tree li.current > a"); !slices.Equal(cur, []string{child}) {
		t.Errorf("current node %q, want %q", cur, child)
	}
	if n := b.count(`#tree li.node > .status.completed`); n != 4 {
		t.Errorf("%d completed nodes, want 4", n)
	}
}

func testEscaping(t *testing.T, b *browser, f *fixture) {
	// checkPage already fails on any script or img element.
	b.open(f.roURL + "instances?prefix=xss")
	if got := b.texts("#instances td.id"); !slices.Equal(got, []string{escapeID}) {
		t.Fatalf("list shows %q, want %q as text", got, escapeID)
	}
	b.open(instanceURL(f.roURL, escapeID))
	if got := b.text("#instance-id"); got != escapeID {
		t.Errorf("instance id shown as %q", got)
	}
	if out := b.text("#output"); !strings.Contains(out, "Hello, "+escapeName+"!") {
		t.Errorf("output %q does not show the greeting as text", out)
	}
	b.open(f.roURL + "tree?id=" + url.QueryEscape(escapeID))
	if got := b.texts("#tree li.current > a"); !slices.Equal(got, []string{escapeID}) {
		t.Errorf("tree shows %q", got)
	}
}

func testPartitions(t *testing.T, b *browser, f *fixture) {
	b.open(f.roURL + "partitions")
	rows := evalJS[[][]string](b, `Array.from(document.querySelectorAll('#partitions tr.partition-row')).map(tr => Array.from(tr.cells).map(c => c.textContent.trim()))`)
	if len(rows) != testPartitons {
		t.Fatalf("%d partition rows, want %d", len(rows), testPartitons)
	}
	for i, r := range rows {
		if r[0] != fmt.Sprint(i) || r[1] != hostID || r[2] != ops.LeaseLeased || r[3] == "0" {
			t.Errorf("partition row %q, want partition %d leased by %s with an epoch", r, i, hostID)
		}
	}
	if q := b.texts("#queues td:first-child"); !slices.Equal(q, []string{f.prov.TaskHub() + "-workitems"}) {
		t.Errorf("shared queues %q", q)
	}
	if hosts := b.texts("#hosts td.host-id"); !slices.Equal(hosts, []string{hostID}) {
		t.Fatalf("live hosts %q", hosts)
	}
	regs := b.texts("#hosts td.registrations")
	if !strings.Contains(regs[0], "FanOutFanIn") || !strings.Contains(regs[1], "Square") {
		t.Errorf("registrations %q", regs)
	}
}

func testDeadLetters(t *testing.T, b *browser, f *fixture) {
	b.open(f.roURL + "deadletters")
	if ids := b.texts("#deadletters td.id"); !slices.Equal(ids, f.deadLetters) {
		t.Fatalf("dead letters %q, want %q", ids, f.deadLetters)
	}
	for _, r := range b.texts("#deadletters td.reason") {
		if !strings.Contains(r, "unsupported format version 99") {
			t.Errorf("reason %q", r)
		}
	}
	// One per page.
	b.open(f.roURL + "deadletters?size=1")
	first := b.texts("#deadletters td.id")
	b.submit("#next", "#first")
	if second := b.texts("#deadletters td.id"); !slices.Equal(append(first, second...), f.deadLetters) || b.count("#next") != 0 {
		t.Errorf("pages of one: %q then %q, want %q", first, second, f.deadLetters)
	}
	// Each dead letter's page shows its undecodable text, as text.
	var raws []string
	for _, id := range f.deadLetters {
		b.open(f.roURL + "deadletter?id=" + url.QueryEscape(id))
		if b.text("#deadletter-id") != id {
			t.Errorf("dead letter %s shows %q", id, b.text("#deadletter-id"))
		}
		raws = append(raws, b.text("#raw"))
	}
	if !slices.ContainsFunc(raws, func(r string) bool { return strings.Contains(r, `"name": "<script>alert('dl')</script>"`) }) {
		t.Errorf("raw texts %q: none shows the script as text", raws)
	}
	gone := f.deadLetters[0][:len(f.deadLetters[0])-1] + "0"
	if gone == f.deadLetters[0] {
		gone = gone[:len(gone)-1] + "1"
	}
	b.open(f.roURL + "deadletter?id=" + url.QueryEscape(gone))
	if msg := b.text("#error"); !strings.Contains(msg, "no such dead letter") {
		t.Errorf("a missing dead letter shows %q", msg)
	}
	b.open(f.roURL + "deadletter?id=nope")
	if msg := b.text("#error"); !strings.Contains(msg, "invalid") {
		t.Errorf("a malformed dead-letter id shows %q", msg)
	}
}

// testReadOnly checks that a dashboard without a token shows no action
// anywhere and refuses them all.
func testReadOnly(t *testing.T, b *browser, f *fixture) {
	for _, page := range []string{instanceURL(f.roURL, approveID), instanceURL(f.roURL, fanID), f.roURL + "deadletters",
		f.roURL + "deadletter?id=" + url.QueryEscape(f.deadLetters[0])} {
		b.open(page)
		if n := b.count(`#actions, form[method=post], button.replay, button.discard, #signin`); n != 0 {
			t.Errorf("%s shows %d actions or sign-in links to a read-only visitor", page, n)
		}
		if b.text("#mode") != "read-only" {
			t.Errorf("%s does not say it is read-only", page)
		}
	}
	for _, action := range []string{"terminate", "suspend", "resume", "raise", "purge", "replay", "discard", "signin"} {
		form := url.Values{"id": {approveID}, "token": {operatorToken}, "name": {"approval"}}
		if code := post(t, f.roURL+action, form, http.Header{"Authorization": {"Bearer " + operatorToken}}); code != http.StatusForbidden {
			t.Errorf("read-only POST %s: %d, want 403", action, code)
		}
	}
	if st, _ := f.client.GetInstance(context.Background(), approveID, false); st.Status != core.StatusRunning {
		t.Fatalf("a refused action changed %s: %s", approveID, st.Status)
	}
}

// post sends a form without following redirects and returns the status.
func post(t *testing.T, u string, form url.Values, hd http.Header) int {
	t.Helper()
	resp := postResp(t, u, form, hd)
	resp.Body.Close()
	return resp.StatusCode
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func postResp(t *testing.T, u string, form url.Values, hd http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hd.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// testCredentials checks the operator dashboard's checks on every POST:
// the token, the session and its CSRF token, and the origin.
func testCredentials(t *testing.T, ctx context.Context, f *fixture) {
	terminate := f.opURL + "terminate"
	form := url.Values{"id": {approveID}, "reason": {"must not happen"}}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for what, hd := range map[string]http.Header{
		"no credentials":   nil,
		"a wrong token":    bearer(operatorToken + "x"),
		"a short token":    bearer(operatorToken[:10]),
		"a cross-site":     {"Authorization": {"Bearer " + operatorToken}, "Sec-Fetch-Site": {"cross-site"}},
		"a foreign Origin": {"Authorization": {"Bearer " + operatorToken}, "Origin": {"http://evil.example"}},
		"a forged cookie":  {"Cookie": {"azdurable_operator=1." + strings.Repeat("ab", 32)}},
	} {
		if code := post(t, terminate, form, hd); code != http.StatusForbidden {
			t.Errorf("terminate with %s: %d, want 403", what, code)
		}
	}
	// A wrong token does not sign in.
	resp := postResp(t, f.opURL+"signin", url.Values{"token": {"wrong-token-0123456789"}}, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("sign-in with a wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// The right one does; the session alone, without its CSRF token, cannot act.
	resp = postResp(t, f.opURL+"signin", url.Values{"token": {operatorToken}, "next": {"https://evil.example/"}}, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "instances" || len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in: %d to %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	c := resp.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, operatorToken) {
		t.Errorf("session cookie %+v", c)
	}
	withCookie := http.Header{"Cookie": {c.Name + "=" + c.Value}}
	for _, csrf := range []string{"", "0123"} {
		if code := post(t, terminate, url.Values{"id": {approveID}, "csrf": {csrf}}, withCookie); code != http.StatusForbidden {
			t.Errorf("terminate with a session and CSRF token %q: %d, want 403", csrf, code)
		}
	}
	if st, _ := f.client.GetInstance(ctx, approveID, false); st.Status != core.StatusRunning {
		t.Fatalf("a refused action changed %s: %s", approveID, st.Status)
	}
	// A script with the token in a header may act.
	resp = postResp(t, f.opURL+"suspend", url.Values{"id": {suspendID}, "reason": {"by script"}}, bearer(operatorToken))
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "instance?") {
		t.Fatalf("suspend with the token: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	waitStatus(t, ctx, f.client, suspendID, core.StatusSuspended)
	// GET never acts.
	resp, err := noRedirects.Get(f.opURL + "terminate?id=" + approveID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET terminate: %d", resp.StatusCode)
	}
}

func testOperatorActions(t *testing.T, ctx context.Context, b *browser, f *fixture) {
	// Before signing in, the operator's dashboard is read-only too.
	b.open(instanceURL(f.opURL, approveID))
	if b.count("#actions") != 0 || b.count("#signin") != 1 {
		t.Fatal("the operator dashboard shows actions before sign-in, or no sign-in link")
	}
	b.submit("#signin", "#token")
	b.run("type a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token-0000000"))
	if msg := b.submit("#signin-submit", "#error"); !strings.Contains(msg, "not the operator token") {
		t.Fatal("a wrong token was not refused")
	}
	b.run("type the token", chromedp.SendKeys(chromedp.CSS("#token"), operatorToken))
	b.submit("#signin-submit", "#actions")
	if b.text("#instance-id") != approveID || b.text("#mode") != "operator" {
		t.Fatal("sign-in did not return to the instance as an operator")
	}

	// Raise the approval event: the instance completes, approved.
	b.run("fill the event", chromedp.SendKeys(chromedp.CSS("#raise-name"), samples.ApprovalEvent),
		chromedp.SetValue(chromedp.CSS("#raise-data"), `{"approved": true, "approver": "ops-<b>"}`))
	if flash := b.submit("#raise", "#flash"); !strings.Contains(flash, "Event sent") {
		t.Error("no note after raising the event")
	}
	res, err := core.WaitForResult[samples.ApprovalResult](ctx, f.client, approveID)
	if err != nil || res.Outcome != samples.OutcomeApproved || res.Approver != "ops-<b>" {
		t.Fatalf("approval after the raised event: %+v, %v", res, err)
	}
	b.open(instanceURL(f.opURL, approveID))
	if b.count("#gantt details.event[data-name=approval]") != 1 || b.count("#raise, #terminate") != 0 || b.count("#purge") != 1 {
		t.Error("a completed instance shows no received event, or offers the actions of a running one")
	}

	// Terminate, then purge.
	b.open(instanceURL(f.opURL, stopID))
	b.run("give a reason", chromedp.SetValue(chromedp.CSS("#terminate-reason"), "stopped from the dashboard"))
	b.submit("#terminate", "#flash")
	st, err := f.client.WaitForCompletion(ctx, stopID)
	if err != nil || st.Status != core.StatusTerminated {
		t.Fatalf("after terminate: %+v, %v", st, err)
	}
	b.open(instanceURL(f.opURL, stopID))
	if b.text("#status") != "Terminated" {
		t.Errorf("status %q after terminate", b.text("#status"))
	}
	b.submit("#purge", "#flash")
	if _, err := f.client.GetInstance(ctx, stopID, false); !errors.Is(err, core.ErrInstanceNotFound) {
		t.Fatalf("after purge: %v", err)
	}

	// Resume the instance the script suspended.
	b.open(instanceURL(f.opURL, suspendID))
	if b.text("#status") != "Suspended" || b.count("#suspend") != 0 {
		t.Fatal("a suspended instance is not shown as such")
	}
	b.submit("#resume", "#flash")
	waitStatus(t, ctx, f.client, suspendID, core.StatusRunning)

	// Dead letters: discard one from the list, replay the other from its page.
	b.open(f.opURL + "deadletters")
	if b.count("button.replay") != 2 || b.count("button.discard") != 2 {
		t.Fatal("dead-letter actions are missing for the operator")
	}
	b.submit("#deadletters tr.deadletter-row button.discard", "#flash")
	b.open(f.opURL + "deadletter?id=" + url.QueryEscape(f.deadLetters[1]))
	b.submit("#replay", "#flash")
	b.open(f.opURL + "deadletters")
	for _, id := range b.texts("#deadletters td.id") {
		if slices.Contains(f.deadLetters, id) {
			t.Errorf("dead letter %s is still listed after discard and replay", id)
		}
	}

	// Signing out ends the session.
	b.submit("#signout", "#signin")
	b.open(instanceURL(f.opURL, suspendID))
	if b.count("#actions") != 0 || b.text("#mode") != "read-only" {
		t.Error("actions are shown after signing out")
	}
}

// testIdleHub reads a task hub that no host serves: no lease, no host, the
// start messages waiting in the control queues, and the dead letters.
func testIdleHub(t *testing.T, ctx context.Context, b *browser, f *fixture) {
	var depth, age []string
	poll(t, ctx, "the oldest message has waited a second", func() (bool, string) {
		b.open(f.idleURL + "partitions")
		depth, age = b.texts("#partitions tr.partition-row td:nth-child(5)"), b.texts("#partitions tr.partition-row td:nth-child(6)")
		return slices.ContainsFunc(age, func(a string) bool { return a != "—" }), fmt.Sprintf("depths %q ages %q", depth, age)
	})
	total := 0
	for _, d := range depth {
		var n int
		fmt.Sscan(d, &n)
		total += n
	}
	if total != 3 {
		t.Errorf("queue depths %q, want 3 messages in all", depth)
	}
	if got := b.texts("#partitions tr.partition-row td:nth-child(3)"); !slices.Equal(got, []string{ops.LeaseFree, ops.LeaseFree}) {
		t.Errorf("lease states %q, want free", got)
	}
	if b.count("#no-hosts") != 1 || !strings.Contains(b.text("#summary"), "3 messages waiting") {
		t.Errorf("summary %q", b.text("#summary"))
	}
	if b.text("#taskhub") != f.idleHub {
		t.Errorf("task hub shown as %q", b.text("#taskhub"))
	}

	// Its dead letters were decoded: a start message and a work item.
	b.open(f.idleURL + "deadletters")
	rows := evalJS[[][]string](b, `Array.from(document.querySelectorAll('#deadletters tr.deadletter-row')).map(tr => Array.from(tr.cells).map(c => c.textContent.trim()))`)
	if len(rows) != 2 || rows[0][2] == "work items" || rows[1][2] != "work items" || rows[0][3] != poisonedID || rows[1][3] != poisonedID {
		t.Fatalf("dead letters %q, want the start message of %s, then its work item", rows, poisonedID)
	}
	b.submit("#deadletters tr.deadletter-row td.id a", "#event-kind")
	if b.text("#event-kind") != "ExecutionStarted" || b.text("#reason") != "poison: failed 5 times" {
		t.Errorf("dead start message shows %q, %q", b.text("#event-kind"), b.text("#reason"))
	}
	if data := b.texts("pre.payload"); !slices.Equal(data, []string{"3"}) {
		t.Errorf("dead start message data %q, want the input 3", data)
	}
	b.open(f.idleURL + "deadletters")
	b.submit("#deadletters tr.deadletter-row:nth-child(2) td.id a", "#activity-name")
	if b.text("#activity-name") != "Square" || !slices.Equal(b.texts("pre.payload"), []string{"7"}) {
		t.Errorf("dead work item shows %q with input %q", b.text("#activity-name"), b.texts("pre.payload"))
	}
}
