package leases

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
)

func TestMain(m *testing.M) { azurite.Main(m) }

// newTestContainer creates a container with a unique name in the shared
// Azurite and deletes it when the test ends.
func newTestContainer(t *testing.T) *container.Client {
	t.Helper()
	name := fmt.Sprintf("leases-%08x", rand.Uint32())
	c, err := container.NewClientFromConnectionString(azurite.ForTest(t), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = c.Delete(ctx, nil)
	})
	return c
}

func TestBlobStoreContractAzurite(t *testing.T) {
	const d = 15 * time.Second
	s := NewBlobStore(newTestContainer(t), WithPrefix("ownership/"))
	// Azurite's lease clock runs on its own; a 15s lease was measured to
	// expire after 15.1-15.25s. Subtests run in parallel so that they share
	// the wait.
	testStoreContract(t, harness{store: s, d: d, expire: func() { time.Sleep(d + 1500*time.Millisecond) },
		heartbeatSlack: 5 * time.Second, parallel: true})
}

func TestBlobStoreLayoutAzurite(t *testing.T) {
	ctx := context.Background()
	c := newTestContainer(t)
	s := NewBlobStore(c)
	l := mustAcquire(t, s, 12, "host é/1", 20*time.Second)
	if l.Epoch != 1 {
		t.Fatalf("epoch %d, want 1", l.Epoch)
	}
	if err := s.PutHost(ctx, &Host{ID: "host é/1"}); err != nil {
		t.Fatal(err)
	}
	// Other blobs in the container (taskhub.json) are not leases.
	if _, err := c.NewBlockBlobClient("taskhub.json").UploadBuffer(ctx, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	pager := c.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	if want := "[hosts/host%20%C3%A9%2F1 partitions/0012 taskhub.json]"; fmt.Sprint(names) != want {
		t.Fatalf("blobs %v, want %s", names, want)
	}
	snap := mustList(t, s)
	if len(snap.Leases) != 1 || len(snap.Hosts) != 1 {
		t.Fatalf("listed %+v, want one lease and one host", snap)
	}
	if info := snap.Leases[0]; info.Owner != "host é/1" || info.State != Held || info.Epoch != 1 {
		t.Fatalf("listed %+v", info)
	}
	// The expiry the owner reports is used when it is later.
	exp := snap.Time.Add(time.Minute).Truncate(time.Millisecond)
	if err := s.PutHost(ctx, &Host{ID: "host é/1", Expires: map[int]time.Time{12: exp}}); err != nil {
		t.Fatal(err)
	}
	if info := mustList(t, s).Leases[0]; !info.Expires.Equal(exp) {
		t.Fatalf("expiry %v, want the reported %v", info.Expires, exp)
	}
}

func TestBlobStoreCheckDuration(t *testing.T) {
	s := NewBlobStore(nil)
	for _, d := range []time.Duration{0, 14 * time.Second, 61 * time.Second, 15500 * time.Millisecond, -time.Second} {
		if err := s.CheckDuration(d); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("CheckDuration(%v) = %v, want ErrInvalidInput", d, err)
		}
	}
	for _, d := range []time.Duration{15 * time.Second, 30 * time.Second, time.Minute} {
		if err := s.CheckDuration(d); err != nil {
			t.Errorf("CheckDuration(%v) = %v", d, err)
		}
	}
}

// TestBlobStoreErrorsHideSASAzurite uses a SAS-authorised client on a missing
// container and on a closed port: errors must not quote the signature.
func TestBlobStoreErrorsHideSASAzurite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newTestContainer(t)
	url, err := c.GetSASURL(sas.ContainerPermissions{Read: true, Write: true, Create: true, List: true, Delete: true},
		time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := url[strings.Index(url, "sig=")+4:]
	missing, err := container.NewClientWithNoCredential(strings.Replace(url, "/leases-", "/missing-", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	i := strings.Index(url, "//") + 2
	j := i + strings.Index(url[i:], "/")
	closed, err := container.NewClientWithNoCredential(url[:i]+closedAddr+url[j:], nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*BlobStore{"missing container": NewBlobStore(missing), "closed port": NewBlobStore(closed)} {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := s.Acquire(ctx, 0, "host-a", 15*time.Second)
		cancel()
		var se *core.StorageError
		if !errors.As(err, &se) {
			t.Fatalf("%s: Acquire: %v, want a *core.StorageError", name, err)
		}
		if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), "sig=") {
			t.Fatalf("%s: error quotes the SAS: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
