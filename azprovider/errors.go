package azprovider

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/azdurable/azdurable/core"
)

// Storage error codes the provider acts on.
const (
	codeEntityExists       = "EntityAlreadyExists"
	codeConditionNotMet    = "UpdateConditionNotSatisfied"
	codeResourceNotFound   = "ResourceNotFound"
	codePopReceiptMismatch = "PopReceiptMismatch"
	codeMessageNotFound    = "MessageNotFound"
	codeBlobNotFound       = "BlobNotFound"
	codeBlobExists         = "BlobAlreadyExists"
	codeTableExists        = "TableAlreadyExists"
	codeQueueExists        = "QueueAlreadyExists"
	codeContainerExists    = "ContainerAlreadyExists"
	codeTableBeingDeleted  = "TableBeingDeleted"
	codeQueueBeingDeleted  = "QueueBeingDeleted"
	codeContainerBeingDel  = "ContainerBeingDeleted"
)

// transientStatus reports whether an HTTP status is worth retrying.
func transientStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// responseStatus returns the HTTP status and error code of an Azure error,
// or 0 when err is not a service response.
func responseStatus(err error) (int, string) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	var se *core.StorageError
	if errors.As(err, &se) {
		return se.Status, se.Code
	}
	return 0, ""
}

func isStatus(err error, status int) bool {
	s, _ := responseStatus(err)
	return s == status
}

func isCode(err error, codes ...string) bool {
	_, c := responseStatus(err)
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// storageErr classifies an error of the Azure SDK as a *core.StorageError
// naming the operation and the resource. Its text never holds a secret: the
// SDK's own message (which can quote a URL with a SAS) is not kept; only the
// status, the error code and a redacted description are.
func (p *Provider) storageErr(op, resource string, err error) error {
	if err == nil {
		return nil
	}
	se := &core.StorageError{Op: op, Resource: resource}
	var re *azcore.ResponseError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		se.Transient = true
		se.Err = contextError(err)
	case errors.As(err, &re):
		se.Status, se.Code = re.StatusCode, re.ErrorCode
		se.Transient = transientStatus(re.StatusCode)
		se.Err = redactedError(http.StatusText(re.StatusCode))
	default:
		// The request did not get a response: connection refused or reset,
		// a timeout, a name that does not resolve. Worth retrying.
		se.Transient = true
		se.Err = redactedError(p.redact.text(err.Error()))
	}
	return se
}

// contextError keeps a cancellation matchable with errors.Is.
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// redactedError is an error text already cleared of secrets.
type redactedError string

func (e redactedError) Error() string { return string(e) }

// tableResource, queueResource and blobResource name resources in errors.
func (p *Provider) tableResource(partition int, instanceID string) string {
	s := fmt.Sprintf("table %s partition %s", p.tableName, partitionKey(partition, p.n))
	if instanceID != "" {
		s += fmt.Sprintf(" instance %q", instanceID)
	}
	return s
}
