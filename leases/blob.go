package leases

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/azdurable/azdurable/core"
)

// BlobStore is a Store on Azure Blob leases, in one container (the task
// hub's <hub>-leases container, which the provider creates).
//
// Layout: partition p's lease is the empty blob partitions/<p as 4+ digits>,
// created on first use; its metadata records the owner, the epoch and the
// lease duration, written with the lease id right after each Acquire or
// Change. Host records are empty blobs hosts/<escaped host id> whose metadata
// holds the host's intents and lease expiries; their Last-Modified time is
// the heartbeat. List reads all of it with one List Blobs call (one per
// 5,000 blobs), so a scan costs one storage operation.
//
// Guarantees, which Azure enforces and the tests check on Azurite:
//   - While a lease lives, Acquire by anyone else fails with ErrLeaseHeld.
//   - A lease lives for its duration after Acquire or Renew, by the service's
//     clock; after that anyone may acquire it, and the epoch grows.
//   - Once someone else acquired the partition, the old holder's Renew,
//     Release and Change fail with ErrLeaseLost; a holder whose lease
//     expired unnoticed may still renew it while nobody took it.
//   - Release makes the partition free at once.
//   - The owner and epoch listed for a Held lease are its holder's, except
//     for the instant between an Acquire and its metadata write, when the
//     previous holder's are listed.
//
// Info.Expires is an estimate, because Azure does not report when a lease
// expires: the later of the lease's acquire time plus its duration and the
// expiry its owner last published in its host record (on the owner's clock).
//
// Durations must be whole seconds from 15s to 60s (Azure's limits). Errors
// are *core.StorageError values (or wrap ErrLeaseHeld, ErrLeaseLost); their
// text never quotes a URL's query, where a SAS token would be.
type BlobStore struct {
	c      *container.Client
	prefix string
}

var (
	_ Store           = (*BlobStore)(nil)
	_ DurationChecker = (*BlobStore)(nil)
)

// BlobOption configures a BlobStore.
type BlobOption func(*BlobStore)

// WithPrefix puts the store's blobs under prefix (for example "ownership/"),
// so that it can share a container with other blobs without listing them.
// The default is no prefix.
func WithPrefix(prefix string) BlobOption {
	return func(s *BlobStore) { s.prefix = prefix }
}

// NewBlobStore returns a store in the container c, which must exist.
func NewBlobStore(c *container.Client, opts ...BlobOption) *BlobStore {
	s := &BlobStore{c: c}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Metadata keys. Azure returns them in any case; look them up with meta.
const (
	mdOwner    = "owner"
	mdEpoch    = "epoch"
	mdDuration = "duration"
	mdHost     = "host"
	mdIntents  = "intents"
	mdExpires  = "expires"
	// maxHostMetadata bounds the bytes of a host record's lists; Azure allows
	// 8 KiB of metadata in all. Expiries past the bound are left out.
	maxHostMetadata = 6 << 10
)

const (
	minBlobLease = 15 * time.Second
	maxBlobLease = 60 * time.Second
)

// CheckDuration accepts whole seconds from 15s to 60s.
func (s *BlobStore) CheckDuration(d time.Duration) error {
	if d < minBlobLease || d > maxBlobLease || d%time.Second != 0 {
		return fmt.Errorf("%w: lease duration %s: Azure Blob leases last a whole number of seconds from 15s to 60s", core.ErrInvalidInput, d)
	}
	return nil
}

func (s *BlobStore) partitionBlob(p int) string { return fmt.Sprintf("%spartitions/%04d", s.prefix, p) }
func (s *BlobStore) hostBlob(id string) string  { return s.prefix + "hosts/" + url.PathEscape(id) }

func (s *BlobStore) leaseClient(name, id string) *lease.BlobClient {
	// NewBlobClient fails only for a lease id that is not a UUID; ids here
	// come from newLeaseID or from a Lease this store returned.
	lc, _ := lease.NewBlobClient(s.c.NewBlobClient(name), &lease.BlobClientOptions{LeaseID: &id})
	return lc
}

// Acquire implements Store: acquire the lease (creating the blob on first
// use), read the previous epoch, then write owner and epoch+1 with the lease
// id. Three operations; five the first time (the first Acquire Lease answers
// 404, the blob is created, and the lease is acquired again).
func (s *BlobStore) Acquire(ctx context.Context, partition int, owner string, d time.Duration) (*Lease, error) {
	if err := checkArgs(partition, owner); err != nil {
		return nil, err
	}
	if err := s.CheckDuration(d); err != nil {
		return nil, err
	}
	name := s.partitionBlob(partition)
	id := newLeaseID()
	lc := s.leaseClient(name, id)
	_, err := lc.AcquireLease(ctx, int32(d/time.Second), nil)
	if code(err) == "BlobNotFound" {
		if err := s.create(ctx, name, nil); err != nil {
			return nil, err
		}
		_, err = lc.AcquireLease(ctx, int32(d/time.Second), nil)
	}
	switch {
	case status(err) == http.StatusConflict:
		return nil, heldErr(partition, "")
	case err != nil:
		return nil, s.storageErr("acquire lease", name, err)
	}
	l := &Lease{Partition: partition, Owner: owner, ID: id, Duration: d}
	bc := s.c.NewBlobClient(name)
	props, err := bc.GetProperties(ctx, nil)
	if err == nil {
		prev, _ := strconv.ParseInt(meta(props.Metadata, mdEpoch), 10, 64)
		l.Epoch = prev + 1
		err = s.writeLeaseMetadata(ctx, l)
	}
	if err != nil {
		// A lease whose metadata names someone else must not stay: give it
		// back so that the next Acquire starts clean.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = lc.ReleaseLease(rctx, nil)
		cancel()
		return nil, s.storageErr("record lease owner", name, err)
	}
	return l, nil
}

func (s *BlobStore) writeLeaseMetadata(ctx context.Context, l *Lease) error {
	md := map[string]*string{
		mdOwner:    ptr(url.QueryEscape(l.Owner)),
		mdEpoch:    ptr(strconv.FormatInt(l.Epoch, 10)),
		mdDuration: ptr(strconv.Itoa(int(l.Duration / time.Second))),
	}
	_, err := s.c.NewBlobClient(s.partitionBlob(l.Partition)).SetMetadata(ctx, md, &blob.SetMetadataOptions{
		AccessConditions: &blob.AccessConditions{LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: &l.ID}},
	})
	return err
}

// create makes an empty blob with metadata unless it exists.
func (s *BlobStore) create(ctx context.Context, name string, md map[string]*string) error {
	anyTag := azcore.ETagAny
	_, err := s.c.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), &blockblob.UploadOptions{
		Metadata:         md,
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &anyTag}},
	})
	if err == nil || status(err) == http.StatusConflict || status(err) == http.StatusPreconditionFailed {
		return nil
	}
	return s.storageErr("create lease blob", name, err)
}

// leaseOpErr maps the answers that mean "not your lease any more".
func (s *BlobStore) leaseOpErr(op string, l *Lease, err error) error {
	if st := status(err); st == http.StatusConflict || st == http.StatusNotFound {
		return lostErr(op, l)
	}
	return s.storageErr(op+" lease", s.partitionBlob(l.Partition), err)
}

// Renew implements Store with one operation.
func (s *BlobStore) Renew(ctx context.Context, l *Lease) error {
	if err := checkLease(l); err != nil {
		return err
	}
	if _, err := s.leaseClient(s.partitionBlob(l.Partition), l.ID).RenewLease(ctx, nil); err != nil {
		return s.leaseOpErr("renew", l, err)
	}
	return nil
}

// Release implements Store with one operation.
func (s *BlobStore) Release(ctx context.Context, l *Lease) error {
	if err := checkLease(l); err != nil {
		return err
	}
	if _, err := s.leaseClient(s.partitionBlob(l.Partition), l.ID).ReleaseLease(ctx, nil); err != nil {
		return s.leaseOpErr("release", l, err)
	}
	return nil
}

// Change implements Store with two operations: change the lease id, then
// write the new owner and epoch with it.
func (s *BlobStore) Change(ctx context.Context, l *Lease, owner string) (*Lease, error) {
	if err := checkLease(l); err != nil {
		return nil, err
	}
	if err := checkArgs(l.Partition, owner); err != nil {
		return nil, err
	}
	n := &Lease{Partition: l.Partition, Owner: owner, Epoch: l.Epoch + 1, ID: newLeaseID(), Duration: l.Duration}
	if _, err := s.leaseClient(s.partitionBlob(l.Partition), l.ID).ChangeLease(ctx, n.ID, nil); err != nil {
		return nil, s.leaseOpErr("change", l, err)
	}
	if err := s.writeLeaseMetadata(ctx, n); err != nil {
		return nil, s.storageErr("record lease owner", s.partitionBlob(l.Partition), err)
	}
	return n, nil
}

// List implements Store.
func (s *BlobStore) List(ctx context.Context) (*Snapshot, error) {
	snap := &Snapshot{}
	type leaseBlob struct {
		info     Info
		modified time.Time
		d        time.Duration
	}
	var blobs []leaseBlob
	pager := s.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  &s.prefix,
		Include: container.ListBlobsInclude{Metadata: true},
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, s.storageErr("list leases", s.prefix+"*", err)
		}
		if snap.Time.IsZero() && page.Date != nil {
			snap.Time = *page.Date
		}
		if page.Segment == nil {
			continue
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil || b.Properties == nil {
				continue
			}
			name := strings.TrimPrefix(*b.Name, s.prefix)
			var modified time.Time
			if b.Properties.LastModified != nil {
				modified = *b.Properties.LastModified
			}
			switch {
			case strings.HasPrefix(name, "partitions/"):
				p, err := strconv.Atoi(strings.TrimPrefix(name, "partitions/"))
				if err != nil || p < 0 {
					continue
				}
				owner, _ := url.QueryUnescape(meta(b.Metadata, mdOwner))
				epoch, _ := strconv.ParseInt(meta(b.Metadata, mdEpoch), 10, 64)
				secs, _ := strconv.Atoi(meta(b.Metadata, mdDuration))
				info := Info{Partition: p, Owner: owner, Epoch: epoch, State: blobState(b.Properties.LeaseState)}
				blobs = append(blobs, leaseBlob{info: info, modified: modified, d: time.Duration(secs) * time.Second})
			case strings.HasPrefix(name, "hosts/"):
				id, err := url.QueryUnescape(meta(b.Metadata, mdHost))
				if err != nil || id == "" {
					continue
				}
				snap.Hosts = append(snap.Hosts, Host{ID: id, Heartbeat: modified,
					Intents: parseIntents(meta(b.Metadata, mdIntents)), Expires: parseExpiries(meta(b.Metadata, mdExpires))})
			}
		}
	}
	if snap.Time.IsZero() {
		snap.Time = time.Now()
	}
	reported := map[string]map[int]time.Time{}
	for _, h := range snap.Hosts {
		reported[h.ID] = h.Expires
	}
	for _, b := range blobs {
		if b.info.State == Held {
			exp := b.modified.Add(b.d)
			if r := reported[b.info.Owner][b.info.Partition]; r.After(exp) {
				exp = r
			}
			b.info.Expires = exp
		}
		snap.Leases = append(snap.Leases, b.info)
	}
	return snap, nil
}

func blobState(s *lease.StateType) State {
	if s == nil {
		return Free
	}
	switch *s {
	case lease.StateTypeLeased, lease.StateTypeBreaking:
		return Held
	case lease.StateTypeExpired, lease.StateTypeBroken:
		return Expired
	}
	return Free
}

// PutHost implements Store with one operation (an upload that creates or
// replaces the record).
func (s *BlobStore) PutHost(ctx context.Context, h *Host) error {
	if err := core.ValidateName("host id", h.ID); err != nil {
		return err
	}
	md := map[string]*string{mdHost: ptr(url.QueryEscape(h.ID))}
	intents := formatIntents(h.Intents)
	if len(intents) > maxHostMetadata {
		return fmt.Errorf("%w: host %q: %d intents do not fit in a host record", core.ErrInvalidInput, h.ID, len(h.Intents))
	}
	if intents != "" {
		md[mdIntents] = &intents
	}
	if exp := formatExpiries(h.Expires, maxHostMetadata-len(intents)); exp != "" {
		md[mdExpires] = &exp
	}
	name := s.hostBlob(h.ID)
	if _, err := s.c.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), &blockblob.UploadOptions{Metadata: md}); err != nil {
		return s.storageErr("write host record", name, err)
	}
	return nil
}

// DeleteHost implements Store with one operation.
func (s *BlobStore) DeleteHost(ctx context.Context, id string) error {
	name := s.hostBlob(id)
	if _, err := s.c.NewBlobClient(name).Delete(ctx, nil); err != nil && status(err) != http.StatusNotFound {
		return s.storageErr("delete host record", name, err)
	}
	return nil
}

// newLeaseID returns a random UUID, the form Azure requires for lease ids.
func newLeaseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// meta reads a metadata value whatever the case of its key: listings return
// keys in lower case, property reads in canonical header case.
func meta(md map[string]*string, key string) string {
	for k, v := range md {
		if v != nil && strings.EqualFold(k, key) {
			return *v
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }
