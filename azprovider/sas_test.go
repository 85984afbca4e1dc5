package azprovider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
)

// accountSAS signs an account SAS for blobs, queues and tables with the
// account key (https://learn.microsoft.com/rest/api/storageservices/create-account-sas).
func accountSAS(t *testing.T, account, key string) string {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	must(t, err)
	const version = "2021-12-02"
	expiry := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	perms, services, types := "rwdlacup", "bqt", "sco"
	toSign := strings.Join([]string{account, perms, services, types, "", expiry, "", "", version, "", ""}, "\n")
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(toSign))
	q := url.Values{"sv": {version}, "ss": {services}, "srt": {types}, "sp": {perms}, "se": {expiry},
		"sig": {base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
	return q.Encode()
}

func TestAzuriteSharedAccessSignature(t *testing.T) {
	t.Parallel()
	cs := azurite.ForTest(t)
	a, err := parseConnectionString(cs)
	must(t, err)
	sas := accountSAS(t, a.name, a.key)
	sasCS := fmt.Sprintf("BlobEndpoint=%s;QueueEndpoint=%s;TableEndpoint=%s;SharedAccessSignature=%s", a.blobURL, a.queueURL, a.tableURL, sas)
	p := newTestProvider(t, func(o *Options) { o.ConnectionString = sasCS })
	ctx := testCtx(t)
	ep := newInstanceEpisode(idIn(p, "sas", 1), testTime)
	ep.State.Input = make([]byte, 100<<10) // a blob too
	res := commitOne(t, p, ep)
	must(t, res.Err)
	checkSnapshot(t, p, ep, res.Token, 2)
	must(t, p.SendMessages(ctx, []*core.Message{eventMessage(ep.InstanceID, "e", nil)}))
	msgs, err := p.FetchMessages(ctx, 1, 1, time.Minute)
	must(t, err)
	if len(msgs) != 1 {
		t.Fatalf("fetched %d messages", len(msgs))
	}
	must(t, p.DeleteMessages(ctx, 1, msgs))
}
