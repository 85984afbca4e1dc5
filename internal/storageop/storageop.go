// Package storageop names the operation of a request to Azure Storage
// (blob, queue or table), the way azprovider counts its calls and the test
// fault proxy selects the requests it fails.
package storageop

import (
	"net/http"
	"strings"
)

// Operations lists every operation name Operation returns for the three
// services.
func Operations() []string {
	return []string{
		"blob.put", "blob.get", "blob.delete", "blob.list", "blob.lease",
		"blob.container-create", "blob.container-drop", "blob.container-props",
		"queue.put", "queue.get", "queue.peek", "queue.update", "queue.delete", "queue.clear",
		"queue.create", "queue.drop", "queue.props",
		"table.batch", "table.read", "table.query", "table.write", "table.delete",
		"table.create", "table.drop", "table.list",
	}
}

// Operation classifies a request to a storage service ("blob", "queue" or
// "table"): for example table.batch, queue.get, blob.lease.
func Operation(service string, r *http.Request) string {
	path, q, m := r.URL.Path, r.URL.Query(), r.Method
	switch service {
	case "table":
		switch {
		case strings.HasSuffix(path, "/$batch"):
			return "table.batch"
		case strings.HasSuffix(path, "/Tables") && m == http.MethodPost:
			return "table.create"
		case strings.Contains(path, "/Tables('"):
			return "table.drop"
		case strings.HasSuffix(path, "/Tables"):
			return "table.list"
		case m == http.MethodGet && strings.Contains(path, "(PartitionKey="):
			return "table.read"
		case m == http.MethodGet:
			return "table.query"
		case m == http.MethodDelete:
			return "table.delete"
		default:
			return "table.write"
		}
	case "queue":
		if strings.Contains(path, "/messages") {
			switch {
			case m == http.MethodPost:
				return "queue.put"
			case m == http.MethodGet && q.Get("peekonly") == "true":
				return "queue.peek"
			case m == http.MethodGet:
				return "queue.get"
			case m == http.MethodPut:
				return "queue.update"
			case m == http.MethodDelete && q.Get("popreceipt") != "":
				return "queue.delete"
			case m == http.MethodDelete:
				return "queue.clear"
			}
		}
		switch m {
		case http.MethodPut:
			return "queue.create"
		case http.MethodDelete:
			return "queue.drop"
		}
		return "queue.props"
	case "blob":
		if q.Get("restype") == "container" {
			switch {
			case q.Get("comp") == "list":
				return "blob.list"
			case m == http.MethodPut:
				return "blob.container-create"
			case m == http.MethodDelete:
				return "blob.container-drop"
			}
			return "blob.container-props"
		}
		switch {
		case q.Get("comp") == "lease":
			return "blob.lease"
		case m == http.MethodPut:
			return "blob.put"
		case m == http.MethodDelete:
			return "blob.delete"
		}
		return "blob.get"
	}
	return service + ".other"
}
