package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
)

func TestMain(m *testing.M) { azurite.Main(m) }

// newHub returns a fresh task hub name.
func newHub(t *testing.T) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "wk" + hex.EncodeToString(b)
}

// buildWorker compiles this command into a temporary folder.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer collects a process's output.
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

// listenAddr finds the address in the worker's "listening" line.
func listenAddr(line string) string {
	var rec struct {
		Message string `json:"message"`
		Addr    string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Message != "listening" {
		return ""
	}
	return rec.Addr
}

func get(ctx context.Context, t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// parseMetrics returns each sample of a Prometheus text exposition by its
// name with labels.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestWorkerProcess builds the worker, runs it against Azurite, runs a hello
// sequence through a client of the same task hub, reads the HTTP endpoints
// and stops the worker with SIGTERM.
func TestWorkerProcess(t *testing.T) {
	cs := azurite.ForTest(t)
	bin := buildWorker(t)
	hub := newHub(t)
	const partitions = 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := exec.Command(bin, "-host-id", "worker-1", "-partitions", strconv.Itoa(partitions), "-http", "127.0.0.1:0", "-log-format", "json")
	cmd.Env = append(os.Environ(), "AZDURABLE_CONNECTION_STRING="+cs, "AZDURABLE_TASKHUB="+hub)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var output syncBuffer
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(&output, sc.Text())
			if a := listenAddr(sc.Text()); a != "" {
				addrs <- a
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("worker output:\n%s", output.String())
		}
	})

	var base string
	select {
	case a := <-addrs:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("worker exited before listening: %v", err)
	case <-ctx.Done():
		t.Fatal("worker did not report its address")
	}

	if code, body := get(ctx, t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		code, _ := get(ctx, t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("worker never became ready")
		case err := <-exited:
			t.Fatalf("worker exited: %v", err)
		case <-tick.C:
		}
	}

	// A client in this process, on the same task hub.
	prov, err := azprovider.New(ctx, azprovider.Options{ConnectionString: cs, TaskHub: hub, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	client := core.NewClient(prov)
	id, err := client.Start(ctx, samples.HelloSequence, core.WithInstanceID("hello-1"))
	if err != nil {
		t.Fatal(err)
	}
	greetings, err := core.WaitForResult[[]string](ctx, client, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Hello, Tokyo!", "Hello, Seattle!", "Hello, London!", "Hello, Cairo!", "Hello, Lima!"}
	if !slices.Equal(greetings, want) {
		t.Fatalf("greetings %q, want %q", greetings, want)
	}

	code, body := get(ctx, t, base+"/status")
	var st Status
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("/status: %d %s", code, body)
	}
	if st.HostID != "worker-1" || st.TaskHub != hub || !st.Ready || st.State != "running" ||
		!slices.Equal(st.OwnedPartitions, []int{0, 1, 2, 3}) || st.Runtime == nil || st.Runtime.Episodes < 2 ||
		st.Storage["table.batch"] < 2 {
		t.Fatalf("/status: %s", body)
	}

	code, body = get(ctx, t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	m := parseMetrics(t, body)
	for name, min := range map[string]float64{
		"azdurable_episodes_total":                               2,
		`azdurable_activities_total{source="local"}`:             5,
		`azdurable_storage_operations_total{kind="table.batch"}`: 2,
		`azdurable_storage_operations_total{kind="queue.get"}`:   1,
		"azdurable_partitions_owned":                             partitions,
		"azdurable_ownership_ready":                              1,
		`azdurable_host_info{host="worker-1"}`:                   1,
	} {
		if v, ok := m[name]; !ok || v < min {
			t.Errorf("%s = %v (present %v), want at least %v", name, v, ok, min)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exit after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("worker did not exit after SIGTERM")
	}
	out := output.String()
	if !strings.Contains(out, `"message":"stopped"`) {
		t.Errorf("no stopped line in the output:\n%s", out)
	}
	// The graceful shutdown released every lease: other hosts need not
	// wait for them to expire.
	snap, err := leases.NewBlobStore(prov.LeaseContainer()).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Leases) != partitions {
		t.Errorf("%d leases listed, want %d", len(snap.Leases), partitions)
	}
	for _, l := range snap.Leases {
		if l.State != leases.Free || l.Owner != "worker-1" {
			t.Errorf("after shutdown, partition %d's lease is %s (owner %q), want free (last owner worker-1)", l.Partition, l.State, l.Owner)
		}
	}
	if strings.Contains(out, azurite.AccountKey) {
		t.Errorf("the account key reached the log:\n%s", out)
	}
}

// A partition count that differs from the task hub's is a configuration
// error: exit code 2 and a message that says what to do.
func TestWorkerRefusesOtherPartitionCount(t *testing.T) {
	cs := azurite.ForTest(t)
	hub := newHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prov, err := azprovider.New(ctx, azprovider.Options{ConnectionString: cs, TaskHub: hub, Partitions: 2, CreateIfMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.DeleteTaskHub(context.Background())
	var out bytes.Buffer
	code := run(ctx, []string{"-taskhub", hub, "-partitions", "3"}, env(map[string]string{EnvConnectionString: cs}), &out)
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d; output:\n%s", code, exitUsage, out.String())
	}
	if !strings.Contains(out.String(), "created with 2 partitions") || strings.Contains(out.String(), azurite.AccountKey) {
		t.Fatalf("output:\n%s", out.String())
	}

	// Lease timings that the partition manager refuses are configuration
	// errors too.
	out.Reset()
	code = run(ctx, []string{"-taskhub", hub, "-partitions", "2", "-lease-duration", "10s"}, env(map[string]string{EnvConnectionString: cs}), &out)
	if code != exitUsage || !strings.Contains(out.String(), "LeaseDuration") {
		t.Fatalf("exit code %d, output:\n%s", code, out.String())
	}
}

func TestWorkerExitsOnBadConfiguration(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"-partitions", "0"}, env(map[string]string{EnvConnectionString: "AccountName=acct;AccountKey=" + secretKey}), &out)
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d", code, exitUsage)
	}
	if !strings.Contains(out.String(), "partitions is 0") || strings.Contains(out.String(), secretKey) {
		t.Fatalf("output: %s", out.String())
	}
	out.Reset()
	code = run(context.Background(), nil, env(map[string]string{EnvConnectionString: "AccountName=acct;" + secretKey}), &out)
	if code != exitUsage || strings.Contains(out.String(), secretKey) || !strings.Contains(out.String(), EnvConnectionString) {
		t.Fatalf("exit code %d, output: %s", code, out.String())
	}
	if code := run(context.Background(), []string{"-help"}, env(nil), io.Discard); code != exitOK {
		t.Fatalf("-help: exit code %d", code)
	}
}

// While storage does not answer, the worker keeps trying, is alive but not
// ready, and a signal (here: its context) still stops it cleanly.
func TestWorkerWaitsForStorage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	cs := azurite.ConnectionString(port, port, port)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"-taskhub", "unreachable", "-host-id", "w-wait"}, env(map[string]string{EnvConnectionString: cs}), pw)
		pw.Close()
	}()
	addrs, retrying := make(chan string, 1), make(chan struct{})
	var output syncBuffer
	go func() {
		sc := bufio.NewScanner(pr)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(&output, sc.Text())
			if a := listenAddr(sc.Text()); a != "" {
				addrs <- a
			}
			if !seen && strings.Contains(sc.Text(), "storage unavailable; retrying") {
				seen = true
				close(retrying)
			}
		}
	}()
	tctx, tcancel := context.WithTimeout(context.Background(), time.Minute)
	defer tcancel()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a
	case <-tctx.Done():
		t.Fatalf("no listening line:\n%s", output.String())
	}
	select {
	case <-retrying:
	case <-tctx.Done():
		t.Fatalf("no retry line:\n%s", output.String())
	}
	if code, _ := get(tctx, t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	if code, body := get(tctx, t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "connecting to storage") {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	code, body := get(tctx, t, base+"/status")
	var st Status
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Ready || st.State != "connecting to storage" || st.HostID != "w-wait" {
		t.Fatalf("/status: %d %s", code, body)
	}
	cancel()
	select {
	case code := <-exit:
		if code != exitOK {
			t.Fatalf("exit code %d; output:\n%s", code, output.String())
		}
	case <-tctx.Done():
		t.Fatal("the worker did not stop")
	}
	if strings.Contains(output.String(), azurite.AccountKey) {
		t.Fatalf("the account key reached the log:\n%s", output.String())
	}
}
