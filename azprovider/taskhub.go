package azprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/core"
)

// ErrTaskHubNotFound: the task hub's storage does not exist (or has no
// taskhub.json). Create it with CreateTaskHub.
var ErrTaskHubNotFound = errors.New("task hub not found")

// hubInfoBlob is the task hub's descriptor in the lease container.
const hubInfoBlob = "taskhub.json"

// formatVersion is the storage layout version this build writes and reads.
const formatVersion = 1

// hubInfo is the content of taskhub.json.
type hubInfo struct {
	Partitions    int       `json:"partitions"`
	CreatedAt     time.Time `json:"createdAt"`
	FormatVersion int       `json:"formatVersion"`
}

func (p *Provider) controlQueueName(i int) string {
	return fmt.Sprintf("%s-control-%0*d", p.hub, digits(p.n-1), i)
}
func (p *Provider) workQueueName() string        { return p.hub + "-workitems" }
func (p *Provider) payloadContainerName() string { return p.hub + "-payloads" }
func (p *Provider) leaseContainerName() string   { return p.hub + "-leases" }

// LeaseContainerName is the container that holds taskhub.json and the
// partition lease blobs.
func (p *Provider) LeaseContainerName() string { return p.leaseContainerName() }

// errorsIsNotFound reports a 404 of any service.
func errorsIsNotFound(err error) bool { return isStatus(err, http.StatusNotFound) }

// readHubInfo reads taskhub.json. A missing blob or container is a 404
// *core.StorageError (errorsIsNotFound).
func (p *Provider) readHubInfo(ctx context.Context) (*hubInfo, error) {
	resp, err := p.leases.NewBlobClient(hubInfoBlob).DownloadStream(ctx, nil)
	if err != nil {
		return nil, p.storageErr("read taskhub.json", p.leaseContainerName(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, p.storageErr("read taskhub.json", p.leaseContainerName(), err)
	}
	var info hubInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("task hub %q: %s/%s is not valid: %v", p.hub, p.leaseContainerName(), hubInfoBlob, err)
	}
	return &info, nil
}

func (p *Provider) checkHubInfo(info *hubInfo) error {
	if info.FormatVersion > formatVersion {
		return fmt.Errorf("%w: task hub %q has storage format version %d; this build reads up to %d: upgrade azdurable",
			core.ErrInvalidInput, p.hub, info.FormatVersion, formatVersion)
	}
	if info.Partitions != p.n {
		return fmt.Errorf("%w: task hub %q was created with %d partitions, but this host is configured with %d: set Options.Partitions to %d (the count cannot change after creation)",
			core.ErrInvalidInput, p.hub, info.Partitions, p.n, info.Partitions)
	}
	return nil
}

// CreateTaskHub creates the task hub's table, queues, containers and
// taskhub.json. It is idempotent; it fails when the task hub exists with
// another partition count.
func (p *Provider) CreateTaskHub(ctx context.Context) error {
	if _, err := p.tables.CreateTable(ctx, p.tableName, nil); err != nil && !isCode(err, codeTableExists) {
		return p.createErr("create table", p.tableName, err)
	}
	queues, names := p.allQueues()
	err := parallel(len(queues), maxParallel, func(i int) error {
		if _, err := queues[i].Create(ctx, nil); err != nil && !isCode(err, codeQueueExists) {
			return p.createErr("create queue", names[i], err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range []string{p.payloadContainerName(), p.leaseContainerName()} {
		if _, err := p.blobs.CreateContainer(ctx, c, nil); err != nil && !isCode(err, codeContainerExists) {
			return p.createErr("create container", c, err)
		}
	}
	b, err := json.Marshal(hubInfo{Partitions: p.n, CreatedAt: p.now().UTC(), FormatVersion: formatVersion})
	if err != nil {
		return err
	}
	any := azcore.ETagAny
	_, err = p.leases.NewBlockBlobClient(hubInfoBlob).Upload(ctx, streaming.NopCloser(bytes.NewReader(b)), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &any}},
		HTTPHeaders:      &blob.HTTPHeaders{BlobContentType: ptr("application/json")},
	})
	switch {
	case err == nil:
		return nil
	case isStatus(err, http.StatusConflict), isStatus(err, http.StatusPreconditionFailed):
		info, err := p.readHubInfo(ctx)
		if err != nil {
			return err
		}
		return p.checkHubInfo(info)
	default:
		return p.storageErr("write taskhub.json", p.leaseContainerName(), err)
	}
}

// createErr classifies a creation error; "being deleted" conflicts (a task
// hub deleted moments ago) are transient.
func (p *Provider) createErr(op, resource string, err error) error {
	se := p.storageErr(op, resource, err)
	var s *core.StorageError
	if errors.As(se, &s) && isCode(err, codeTableBeingDeleted, codeQueueBeingDeleted, codeContainerBeingDel) {
		s.Transient = true
	}
	return se
}

// DeleteTaskHub deletes the task hub's table, queues and containers, with
// everything in them. Missing parts are not an error.
func (p *Provider) DeleteTaskHub(ctx context.Context) error {
	if _, err := p.tables.DeleteTable(ctx, p.tableName, nil); err != nil && !errorsIsNotFound(err) {
		return p.storageErr("delete table", p.tableName, err)
	}
	queues, names := p.allQueues()
	err := parallel(len(queues), maxParallel, func(i int) error {
		if _, err := queues[i].Delete(ctx, nil); err != nil && !errorsIsNotFound(err) {
			return p.storageErr("delete queue", names[i], err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range []string{p.payloadContainerName(), p.leaseContainerName()} {
		if _, err := p.blobs.DeleteContainer(ctx, c, nil); err != nil && !errorsIsNotFound(err) {
			return p.storageErr("delete container", c, err)
		}
	}
	return nil
}

// allQueues lists the work-item queue and the control queues with their names.
func (p *Provider) allQueues() ([]*azqueue.QueueClient, []string) {
	queues := append([]*azqueue.QueueClient{p.work}, p.control...)
	names := []string{p.workQueueName()}
	for i := range p.control {
		names = append(names, p.controlQueueName(i))
	}
	return queues, names
}

func ptr[T any](v T) *T { return &v }
