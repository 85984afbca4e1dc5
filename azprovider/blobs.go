package azprovider

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/azdurable/azdurable/core"
)

// Blobs in <hub>-payloads hold what does not fit a table property or a queue
// message. Every blob is gzip-compressed, uniquely named, written before the
// row or message that references it, never overwritten (If-None-Match: *),
// and deleted only after the reference is gone.
//
//	i/<base64url(instance)>/<kind>-<uuid>  an instance's payloads, history chunks, pending rows
//	m/<uuid>  a control message;  w/<uuid>  a work item;  d/<uuid>  a dead letter
//
// Purging an instance deletes everything under its i/ prefix.

func instanceBlobPrefix(instanceID string) string {
	return "i/" + base64.RawURLEncoding.EncodeToString([]byte(instanceID)) + "/"
}

func instanceBlobName(instanceID, kind string) string {
	return instanceBlobPrefix(instanceID) + kind + "-" + core.NewID()
}

func messageBlobName(kind string) string { return kind + "/" + core.NewID() }

// putBlob compresses data and writes it to a new blob.
func (p *Provider) putBlob(ctx context.Context, name string, data []byte) error {
	// BestSpeed: spilled values are on the commit's critical path, and a
	// higher level saves little on payloads that are mostly already dense.
	var buf bytes.Buffer
	buf.Grow(len(data) + len(data)>>8 + 64)            // incompressible data grows a little
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // a valid level never fails
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	any := azcore.ETagAny
	_, err := p.payloads.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(buf.Bytes())), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &any}},
		HTTPHeaders:      &blob.HTTPHeaders{BlobContentType: ptr("application/gzip")},
	})
	if err != nil {
		return p.storageErr("write blob", p.payloadContainerName()+"/"+name, err)
	}
	return nil
}

// getBlob reads and decompresses a blob written by putBlob.
func (p *Provider) getBlob(ctx context.Context, name string) ([]byte, error) {
	resp, err := p.payloads.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, p.storageErr("read blob", p.payloadContainerName()+"/"+name, err)
	}
	body := resp.NewRetryReader(ctx, nil)
	defer body.Close()
	// Read the compressed blob whole, then inflate it into a buffer of the
	// size its gzip trailer states (a hint only: it is the size mod 2^32).
	var zbuf bytes.Buffer
	if resp.ContentLength != nil && *resp.ContentLength > 0 {
		zbuf.Grow(int(*resp.ContentLength))
	}
	if _, err := zbuf.ReadFrom(body); err != nil {
		return nil, p.storageErr("read blob", p.payloadContainerName()+"/"+name, err)
	}
	z := zbuf.Bytes()
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, p.blobReadErr(name, err)
	}
	var out bytes.Buffer
	if n := len(z); n >= 4 {
		out.Grow(min(int(binary.LittleEndian.Uint32(z[n-4:])), maxBlobHint) + bytes.MinRead)
	}
	if _, err := out.ReadFrom(zr); err != nil {
		return nil, p.blobReadErr(name, err)
	}
	return out.Bytes(), nil
}

// maxBlobHint bounds the buffer preallocated from a gzip trailer.
const maxBlobHint = 64 << 20

// blobReadErr tells a corrupt blob (permanent) from a failed read (transient).
func (p *Provider) blobReadErr(name string, err error) error {
	var corrupt flate.CorruptInputError
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &corrupt) {
		return fmt.Errorf("blob %s/%s is not a valid gzip stream: %w", p.payloadContainerName(), name, err)
	}
	return p.storageErr("read blob", p.payloadContainerName()+"/"+name, err)
}

// getBlobs reads several blobs in parallel.
func (p *Provider) getBlobs(ctx context.Context, names []string) ([][]byte, error) {
	out := make([][]byte, len(names))
	err := parallel(len(names), maxParallel, func(i int) error {
		b, err := p.getBlob(ctx, names[i])
		out[i] = b
		return err
	})
	return out, err
}

// deleteBlobs deletes blobs, best effort: a blob that cannot be deleted now
// is garbage, never a dangling reference, so errors are ignored.
func (p *Provider) deleteBlobs(ctx context.Context, names []string) {
	_ = parallel(len(names), maxParallel, func(i int) error {
		if names[i] != "" {
			_, _ = p.payloads.NewBlobClient(names[i]).Delete(ctx, nil)
		}
		return nil
	})
}

// deleteBlobPrefix deletes every blob whose name starts with prefix.
func (p *Provider) deleteBlobPrefix(ctx context.Context, prefix string) error {
	pager := p.payloads.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return p.storageErr("list blobs", p.payloadContainerName()+"/"+prefix, err)
		}
		var names []string
		for _, b := range page.Segment.BlobItems {
			if b.Name != nil {
				names = append(names, *b.Name)
			}
		}
		p.deleteBlobs(ctx, names)
	}
	return nil
}
