package azprovider

import (
	"strings"
	"testing"
)

// Transaction responses as Azurite 3.37 sends them.
const (
	batchOK = "--batchresponse_1c97\r\nContent-Type: multipart/mixed; boundary=changesetresponse_45a5\r\n\r\n" +
		"--changesetresponse_45a5\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		"HTTP/1.1 204 No Content\r\nDataServiceVersion: 3.0;\r\nETag: W/\"datetime'2026-11-25T21%3A14%3A02.7609463Z'\"\r\n\r\n\r\n" +
		"--changesetresponse_45a5\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		"HTTP/1.1 204 No Content\r\nETag: W/\"datetime'2026-11-25T21%3A14%3A02.7601021Z'\"\r\n\r\n\r\n" +
		"--changesetresponse_45a5--\r\n--batchresponse_1c97--\r\n"
	batchFailed = "--batchresponse_dc48\r\nContent-Type: multipart/mixed; boundary=changesetresponse_a971\r\n\r\n" +
		"--changesetresponse_a971\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		"HTTP/1.1 412 Precondition Failed\r\nContent-ID: 2\r\nContent-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n" +
		`{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"1:The update condition specified in the request was not satisfied.\nRequestId:65cc\nTime:2026-11-25T21:14:02.771Z"}}}` +
		"\r\n--changesetresponse_a971--\r\n--batchresponse_dc48--\r\n"
)

func TestParseBatchResponse(t *testing.T) {
	parts, err := parseBatchResponse([]byte(batchOK))
	must(t, err)
	if len(parts) != 2 || parts[0].status != 204 || !strings.Contains(parts[1].etag, "02.7601021Z") {
		t.Fatalf("success: %+v", parts)
	}
	parts, err = parseBatchResponse([]byte(strings.ReplaceAll(batchFailed, "\r\n", "\n")))
	must(t, err)
	if len(parts) != 1 || parts[0].status != 412 || parts[0].code != codeConditionNotMet || parts[0].index != 1 {
		t.Fatalf("failure: %+v", parts)
	}
	if _, err := parseBatchResponse([]byte(`{"odata.error":{}}`)); err == nil {
		t.Fatal("a JSON body parsed as multipart")
	}
	code, idx := odataError([]byte(`{"odata.error":{"code":"InvalidInput","message":{"value":"no index here"}}}`))
	if code != "InvalidInput" || idx != -1 {
		t.Fatalf("odataError: %q %d", code, idx)
	}
}
