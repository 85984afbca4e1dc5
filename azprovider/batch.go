package azprovider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// txFailure is a transaction the service rejected: nothing of it was written.
type txFailure struct {
	index  int // the failing operation, -1 when the response does not say
	status int
	code   string
}

func (f *txFailure) Error() string {
	return fmt.Sprintf("transaction rejected at operation %d (HTTP %d %s)", f.index, f.status, f.code)
}

// submit runs one entity group transaction. On success it returns the ETag
// of every operation, in order (empty for deletes). A rejection is a
// *txFailure naming the failing operation: the service answers 202 and puts
// the status, the code and "<index>:" in the body of the one failed part,
// which the SDK does not expose, so the counting policy captures the body.
// Any other error is a classified *core.StorageError; then the outcome is
// unknown only if it is transient and the request may have been applied.
func (p *Provider) submit(ctx context.Context, resource, pk string, actions []aztables.TransactionAction) ([]string, *txFailure, error) {
	if err := checkTransaction(pk, actions); err != nil {
		return nil, nil, fmt.Errorf("commit to %s: %w", resource, err)
	}
	cp := &batchCapture{}
	_, err := p.table.SubmitTransaction(withCapture(ctx, cp), actions, nil)
	if cp.body == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return nil, nil, p.storageErr("commit", resource, err)
	}
	if cp.status != http.StatusAccepted && cp.status != http.StatusNoContent {
		if transientStatus(cp.status) {
			return nil, nil, p.storageErr("commit", resource, err)
		}
		f := &txFailure{index: -1, status: cp.status}
		f.code, f.index = odataError(cp.body)
		return nil, f, nil
	}
	parts, perr := parseBatchResponse(cp.body)
	if perr != nil {
		if err != nil {
			return nil, nil, p.storageErr("commit", resource, err)
		}
		return nil, nil, fmt.Errorf("commit to %s: cannot parse the transaction response: %w", resource, perr)
	}
	for i, part := range parts {
		if part.status >= 400 {
			if transientStatus(part.status) {
				return nil, nil, &core.StorageError{Op: "commit", Resource: resource, Status: part.status, Code: part.code,
					Transient: true, Err: redactedError("an operation of the transaction failed")}
			}
			f := &txFailure{index: part.index, status: part.status, code: part.code}
			if f.index < 0 && len(parts) == len(actions) {
				f.index = i
			}
			return nil, f, nil
		}
	}
	if len(parts) != len(actions) {
		return nil, nil, fmt.Errorf("commit to %s: the transaction response has %d parts for %d operations", resource, len(parts), len(actions))
	}
	etags := make([]string, len(parts))
	for i, part := range parts {
		etags[i] = part.etag
	}
	return etags, nil, nil
}

// checkTransaction enforces what Azurite does not: at most 100 operations,
// all in one partition. The entities are JSON objects that json.Marshal
// wrote, where a quote inside a string value is always escaped, so the
// text "PartitionKey":"<pk>" can only be the top-level key.
func checkTransaction(pk string, actions []aztables.TransactionAction) error {
	if len(actions) > maxBatchOps {
		return fmt.Errorf("a transaction of %d operations; Azure allows %d", len(actions), maxBatchOps)
	}
	want := []byte(`"PartitionKey":` + strconv.Quote(pk))
	for i, a := range actions {
		if !bytes.Contains(a.Entity, want) {
			return fmt.Errorf("operation %d of a transaction is not in partition %q; Azure allows one partition per transaction", i, pk)
		}
	}
	return nil
}

type batchPart struct {
	status int
	etag   string
	code   string
	index  int // from the error message, -1 if none
}

// parseBatchResponse reads the multipart/mixed response of a transaction.
func parseBatchResponse(body []byte) ([]batchPart, error) {
	boundary, err := firstBoundary(body)
	if err != nil {
		return nil, err
	}
	var parts []batchPart
	if err := readParts(bytes.NewReader(body), boundary, &parts); err != nil {
		return nil, err
	}
	return parts, nil
}

// firstBoundary reads the boundary from the body's first line ("--<boundary>").
func firstBoundary(body []byte) (string, error) {
	line, _, _ := bytes.Cut(body, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if !bytes.HasPrefix(line, []byte("--")) || len(line) < 3 {
		return "", fmt.Errorf("response does not start with a multipart boundary")
	}
	return string(line[2:]), nil
}

func readParts(r io.Reader, boundary string, out *[]batchPart) error {
	mr := multipart.NewReader(r, boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		mt, params, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if strings.HasPrefix(mt, "multipart/") {
			if err := readParts(part, params["boundary"], out); err != nil {
				return err
			}
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(part), nil)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bp := batchPart{status: resp.StatusCode, etag: resp.Header.Get("ETag"), index: -1}
		if resp.StatusCode >= 400 {
			bp.code, bp.index = odataError(b)
		}
		*out = append(*out, bp)
	}
}

// odataError extracts the code and the failing operation's index from an
// OData error body: {"odata.error":{"code":"…","message":{"value":"3:…"}}}.
func odataError(body []byte) (code string, index int) {
	var doc struct {
		Err struct {
			Code    string `json:"code"`
			Message struct {
				Value string `json:"value"`
			} `json:"message"`
		} `json:"odata.error"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return "", -1
	}
	index = -1
	if head, _, ok := strings.Cut(doc.Err.Message.Value, ":"); ok {
		if n, err := strconv.Atoi(head); err == nil {
			index = n
		}
	}
	return doc.Err.Code, index
}
