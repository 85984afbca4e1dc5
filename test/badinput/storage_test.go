package badinput

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
)

// A transient fault on every try of one operation is retried exactly
// Retry.MaxRetries times (0: the default, 4; negative: none), then surfaces as a retryable storage error that
// names the operation and the instance.
func TestTransientStorageErrorIsBounded(t *testing.T) {
	target := azurite.ForTest(t)
	hub := newProvider(t, target).TaskHub()
	for _, maxRetries := range []int{-1, 0, 1, 3} {
		proxy, err := azurite.StartFaultProxy(target, azurite.FaultProxyOptions{
			Rules: []azurite.FaultRule{{Ops: []string{"table.read"}, Kind: azurite.FaultThrottle, Share: 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = proxy.Close() })
		p, err := azprovider.New(testCtx(t), azprovider.Options{ConnectionString: proxy.ConnectionString(), TaskHub: hub, Partitions: 2,
			Retry: azprovider.RetryOptions{MaxRetries: maxRetries, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		_, err = core.NewClient(p).GetInstance(testCtx(t), "read/me", false)
		elapsed := time.Since(began)
		tries := max(maxRetries, 0) + 1
		if maxRetries == 0 {
			tries = 5
		}
		if got := proxy.Stats().ByOp["table.read"]; got != int64(tries) {
			t.Errorf("MaxRetries %d: %d tries at the proxy, want %d", maxRetries, got, tries)
		}
		var se *core.StorageError
		if !errors.As(err, &se) || !errors.Is(err, core.ErrStorage) || !core.IsRetryable(err) {
			t.Fatalf("MaxRetries %d: err = %v, want a retryable *core.StorageError", maxRetries, err)
		}
		if se.Status != 503 || se.Code != "ServerBusy" || se.Op == "" {
			t.Errorf("MaxRetries %d: status %d, code %q, op %q", maxRetries, se.Status, se.Code, se.Op)
		}
		if msg := err.Error(); !strings.Contains(msg, se.Op) || !strings.Contains(msg, `"read/me"`) || strings.Contains(msg, azurite.AccountKey) {
			t.Errorf("MaxRetries %d: error %q must name the operation and the instance and no secret", maxRetries, msg)
		}
		t.Logf("MaxRetries %d: %d tries, gave up after %v: %v", maxRetries, tries, elapsed, err)
		_ = proxy.Close()
	}
}

// A permanent error, a wrong account key here, surfaces at once: one try,
// not retryable, naming the operation and the resource, never the key.
func TestPermanentStorageErrorSurfacesAtOnce(t *testing.T) {
	target := azurite.ForTest(t)
	hub := newProvider(t, target).TaskHub()
	wrongKey := "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc="
	proxy, err := azurite.StartFaultProxy(strings.Replace(target, azurite.AccountKey, wrongKey, 1), azurite.FaultProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	began := time.Now()
	_, err = azprovider.New(testCtx(t), azprovider.Options{ConnectionString: proxy.ConnectionString(), TaskHub: hub, Partitions: 2,
		Retry: azprovider.RetryOptions{MaxRetries: 5}})
	elapsed := time.Since(began)
	if got := proxy.Stats().Requests; got != 1 {
		t.Errorf("%d requests at the proxy, want 1", got)
	}
	var se *core.StorageError
	if !errors.As(err, &se) || core.IsRetryable(err) {
		t.Fatalf("err = %v, want a permanent *core.StorageError", err)
	}
	if se.Status != 403 || se.Op == "" || se.Resource == "" {
		t.Errorf("status %d, code %q, op %q, resource %q", se.Status, se.Code, se.Op, se.Resource)
	}
	msg := err.Error()
	if !strings.Contains(msg, se.Op) || !strings.Contains(msg, hub) {
		t.Errorf("error %q must name the operation and the task hub", msg)
	}
	for _, secret := range []string{wrongKey, azurite.AccountKey} {
		if strings.Contains(msg, secret) {
			t.Errorf("error quotes a key: %q", msg)
		}
	}
	t.Logf("gave up after %v: %v", elapsed, err)
}
