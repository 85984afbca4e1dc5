package azurite

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

const wantExplicitDefault = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;" +
	"QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

func TestConnectionString(t *testing.T) {
	if got := ConnectionString(10000, 10001, 10002); got != wantExplicitDefault {
		t.Fatalf("ConnectionString(defaults) =\n%s\nwant\n%s", got, wantExplicitDefault)
	}
	got := ConnectionString(1, 22, 333)
	for _, want := range []string{
		"BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;",
		"QueueEndpoint=http://127.0.0.1:22/devstoreaccount1;",
		"TableEndpoint=http://127.0.0.1:333/devstoreaccount1;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ConnectionString(1, 22, 333) = %q, missing %q", got, want)
		}
	}
}

func TestExpand(t *testing.T) {
	other := "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
	tests := []struct{ in, want string }{
		{"UseDevelopmentStorage=true", wantExplicitDefault},
		{"UseDevelopmentStorage=true;", wantExplicitDefault},
		{" usedevelopmentstorage = TRUE ; ", wantExplicitDefault},
		{"UseDevelopmentStorage=false", "UseDevelopmentStorage=false"},
		{"UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://proxy", "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://proxy"},
		{other, other},
		{wantExplicitDefault, wantExplicitDefault},
		{"", ""},
		{"garbage", "garbage"},
	}
	for _, tt := range tests {
		if got := Expand(tt.in); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestServerLifecycle starts Azurite, checks each service answers, writes a
// table, restarts (SIGTERM) and checks the table survived, kills (SIGKILL)
// and restarts, and stops, checking ports are closed and data removed.
func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t0 := time.Now()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %v: pid %d, ports %d/%d/%d, data %s",
		time.Since(t0).Round(time.Millisecond), s.PID(), s.BlobPort(), s.QueuePort(), s.TablePort(), s.Location())
	defer s.Stop()

	ports := []int{s.BlobPort(), s.QueuePort(), s.TablePort()}
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Fatalf("ports not distinct: %v", ports)
	}
	if s.PID() <= 0 {
		t.Fatalf("PID() = %d", s.PID())
	}
	if fi, err := os.Stat(s.Location()); err != nil || !fi.IsDir() {
		t.Fatalf("data folder %s: %v", s.Location(), err)
	}
	checkServices(t, s)

	conn := s.ConnectionString()
	tableURL := endpoint(t, conn, "TableEndpoint")
	table := fmt.Sprintf("lifecycle%d", time.Now().UnixNano()%1e9)
	createTable(t, tableURL, table)
	if !hasTable(t, tableURL, table) {
		t.Fatalf("table %s not listed right after create", table)
	}

	// Restart (SIGTERM): same ports, same data, new process.
	oldPID := s.PID()
	t0 = time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted in %v", time.Since(t0).Round(time.Millisecond))
	if s.PID() == oldPID || s.PID() <= 0 {
		t.Fatalf("PID after restart = %d, before %d", s.PID(), oldPID)
	}
	if got := []int{s.BlobPort(), s.QueuePort(), s.TablePort()}; fmt.Sprint(got) != fmt.Sprint(ports) {
		t.Fatalf("ports changed on restart: %v -> %v", ports, got)
	}
	if s.ConnectionString() != conn {
		t.Fatalf("connection string changed on restart")
	}
	checkServices(t, s)
	if !hasTable(t, tableURL, table) {
		t.Fatalf("table %s lost across SIGTERM restart", table)
	}

	// Kill (SIGKILL): ports close, Restart brings it back.
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Fatalf("PID after Kill = %d", s.PID())
	}
	checkClosed(t, ports)
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	checkServices(t, s)

	// Stop: ports close, data folder removed, Stop idempotent.
	pid := s.PID()
	t0 = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(t0).Round(time.Millisecond))
	checkClosed(t, ports)
	if _, err := os.Stat(s.Location()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data folder %s still there after Stop: %v", s.Location(), err)
	}
	if err := processExists(pid); err == nil {
		t.Fatalf("process %d still exists after Stop", pid)
	}
	if s.PID() != 0 {
		t.Fatalf("PID after Stop = %d", s.PID())
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Restart(ctx); err == nil {
		t.Fatal("Restart after Stop succeeded")
	}
}

// TestKeepDataAndFixedPorts starts on an explicit folder with one fixed port
// and KeepData; Stop must leave the folder.
func TestKeepDataAndFixedPorts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	port := freePort(t)
	s, err := Start(context.Background(), Options{Location: dir, TablePort: port, KeepData: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.TablePort() != port || s.Location() != dir {
		t.Fatalf("table port %d location %s, want %d %s", s.TablePort(), s.Location(), port, dir)
	}
	checkServices(t, s)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, []int{s.BlobPort(), s.QueuePort(), s.TablePort()})
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("data folder %s after Stop with KeepData: %v entries, err %v", dir, len(entries), err)
	}
}

// TestPortInUse: Azurite exiting with EADDRINUSE must fail Start quickly with
// its output, not wait for the timeout nor mistake our listener for Azurite.
func TestPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	// Only the blob port is fixed: the failure must not be retried with
	// other picked ports, since the busy one is the caller's.
	s, err := Start(context.Background(), Options{BlobPort: busy})
	if err == nil {
		s.Stop()
		t.Fatalf("Start on busy port %d succeeded", busy)
	}
	var inUse *addrInUseError
	if !errors.Is(err, errAddrInUse) || !errors.As(err, &inUse) || !strings.Contains(err.Error(), "EADDRINUSE") {
		t.Fatalf("Start on busy port: %v", err)
	}
	if inUse.port != busy {
		t.Fatalf("busy port parsed as %d, want %d: %v", inUse.port, busy, err)
	}
}

// TestStartEarlyExit: a binary that dies at once gives an error with its
// stderr tail.
func TestStartEarlyExit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fake-azurite")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'fake azurite: boom' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBin, bin)
	t0 := time.Now()
	s, err := Start(context.Background(), Options{})
	if err == nil {
		s.Stop()
		t.Fatal("Start with a failing binary succeeded")
	}
	if !strings.Contains(err.Error(), "fake azurite: boom") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("error lacks the stderr tail or exit status: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("early exit detected after %v", d)
	}

	t.Setenv(EnvBin, filepath.Join(t.TempDir(), "missing"))
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Fatal("Start with a missing AZURITE_BIN succeeded")
	}
}

// TestStartTimeout: a binary that never listens hits StartTimeout, and the
// process is killed.
func TestStartTimeout(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "silent-azurite")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho waiting\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBin, bin)
	t0 := time.Now()
	_, err := Start(context.Background(), Options{StartTimeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not ready") || !strings.Contains(err.Error(), "waiting") {
		t.Fatalf("Start with a never-ready binary: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
}

func TestForTest(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		t.Setenv(EnvTestStorage, "UseDevelopmentStorage=true")
		if got := ForTest(t); got != wantExplicitDefault {
			t.Fatalf("ForTest with %s=UseDevelopmentStorage=true: %q", EnvTestStorage, got)
		}
		other := "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=b"
		t.Setenv(EnvTestStorage, other)
		if got := ForTest(t); got != other {
			t.Fatalf("ForTest with %s set: %q", EnvTestStorage, got)
		}
	})
	t.Run("shared", func(t *testing.T) {
		conn := ForTest(t)
		if conn2 := ForTest(t); conn2 != conn {
			t.Fatalf("ForTest not shared: %q vs %q", conn, conn2)
		}
		if os.Getenv(EnvTestStorage) != "" {
			return // external storage: nothing more to check here
		}
		for _, key := range []string{"BlobEndpoint", "QueueEndpoint", "TableEndpoint"} {
			u, err := url.Parse(endpoint(t, conn, key))
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
			if err != nil {
				t.Fatalf("%s %s: %v", key, u.Host, err)
			}
			c.Close()
		}
		tableURL := endpoint(t, conn, "TableEndpoint")
		name := fmt.Sprintf("fortest%d", time.Now().UnixNano()%1e9)
		createTable(t, tableURL, name)
		if !hasTable(t, tableURL, name) {
			t.Fatalf("table %s not listed", name)
		}
	})
}

// --- helpers ---

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// checkServices checks each port answers HTTP as the right Azurite service.
func checkServices(t *testing.T, s *Server) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, svc := range []struct {
		name string
		port int
	}{{"Blob", s.BlobPort()}, {"Queue", s.QueuePort()}, {"Table", s.TablePort()}} {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/%s?comp=list", svc.port, AccountName))
		if err != nil {
			t.Fatalf("%s port %d: %v", svc.name, svc.port, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if server := resp.Header.Get("Server"); !strings.HasPrefix(server, "Azurite-"+svc.name+"/") {
			t.Fatalf("%s port %d: Server header %q", svc.name, svc.port, server)
		}
	}
}

func checkClosed(t *testing.T, ports []int) {
	t.Helper()
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second); err == nil {
			c.Close()
			t.Fatalf("port %d still accepts connections", p)
		}
	}
}

func processExists(pid int) error {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err
}

func endpoint(t *testing.T, conn, key string) string {
	t.Helper()
	for _, part := range strings.Split(conn, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && k == key {
			return v
		}
	}
	t.Fatalf("no %s in %q", key, conn)
	return ""
}

// tableRequest sends a Table service request signed with SharedKeyLite,
// proving that AccountName/AccountKey are what Azurite accepts.
func tableRequest(t *testing.T, method, tableURL, resource string, body []byte) (int, []byte) {
	t.Helper()
	u, err := url.Parse(tableURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path += "/" + resource
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	date := time.Now().UTC().Format(http.TimeFormat)
	key, err := base64.StdEncoding.DecodeString(AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(date + "\n/" + AccountName + u.Path))
	req.Header.Set("x-ms-date", date)
	req.Header.Set("x-ms-version", "2019-02-02")
	req.Header.Set("DataServiceVersion", "3.0;NetFx")
	req.Header.Set("Accept", "application/json;odata=nometadata")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "SharedKeyLite "+AccountName+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func createTable(t *testing.T, tableURL, name string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"TableName": name})
	code, resp := tableRequest(t, http.MethodPost, tableURL, "Tables", body)
	if code != http.StatusCreated && code != http.StatusNoContent {
		t.Fatalf("create table %s: %d %s", name, code, resp)
	}
}

func hasTable(t *testing.T, tableURL, name string) bool {
	t.Helper()
	code, resp := tableRequest(t, http.MethodGet, tableURL, "Tables", nil)
	if code != http.StatusOK {
		t.Fatalf("list tables: %d %s", code, resp)
	}
	var out struct {
		Value []struct{ TableName string }
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		t.Fatalf("list tables: %v: %s", err, resp)
	}
	for _, v := range out.Value {
		if v.TableName == name {
			return true
		}
	}
	return false
}
