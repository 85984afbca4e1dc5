package leases

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/azdurable/azdurable/core"
)

// status returns the HTTP status of an Azure error, or 0.
func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// code returns the Azure error code of err, or "".
func code(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// storageErr turns an Azure SDK error into a *core.StorageError naming the
// operation and the blob. The SDK's own message is not kept, because it
// quotes the request URL, whose query may hold a SAS token.
func (s *BlobStore) storageErr(op, blobName string, err error) error {
	se := &core.StorageError{Op: op, Resource: "blob " + blobName}
	var re *azcore.ResponseError
	var ue *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		se.Transient, se.Err = true, context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		se.Transient, se.Err = true, context.DeadlineExceeded
	case errors.As(err, &re):
		se.Status, se.Code = re.StatusCode, re.ErrorCode
		se.Transient = transientStatus(re.StatusCode)
		se.Err = cleanError(http.StatusText(re.StatusCode))
	case errors.As(err, &ue):
		// No response: a refused or reset connection, a timeout. The URL
		// is left out; the network error names the address only.
		se.Transient = true
		se.Err = cleanError(ue.Op + ": " + redact(ue.Err.Error()))
	default:
		se.Transient = true
		se.Err = cleanError(redact(err.Error()))
	}
	return se
}

func transientStatus(st int) bool {
	switch st {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

var queryRE = regexp.MustCompile(`\?[^\s"']*`)

// redact drops URL queries (where a SAS signature would be) from a text.
func redact(s string) string { return queryRE.ReplaceAllString(s, "?REDACTED") }

// cleanError is an error text already cleared of secrets.
type cleanError string

func (e cleanError) Error() string { return string(e) }
