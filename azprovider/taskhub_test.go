package azprovider

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
)

func TestOptionsValidation(t *testing.T) {
	base := Options{ConnectionString: "UseDevelopmentStorage=true", TaskHub: "myhub"}
	cases := []struct {
		name  string
		tweak func(*Options)
	}{
		{"hub with upper case", func(o *Options) { o.TaskHub = "MyHub" }},
		{"hub too short", func(o *Options) { o.TaskHub = "ab" }},
		{"hub too long", func(o *Options) { o.TaskHub = "a" + strings.Repeat("b", 41) }},
		{"hub with dash", func(o *Options) { o.TaskHub = "my-hub" }},
		{"hub starting with digit", func(o *Options) { o.TaskHub = "1hub" }},
		{"no account", func(o *Options) { o.ConnectionString = "" }},
		{"too many partitions", func(o *Options) { o.Partitions = 257 }},
		{"negative partitions", func(o *Options) { o.Partitions = -1 }},
		{"too many retries", func(o *Options) { o.Retry.MaxRetries = 21 }},
		{"retry delay too long", func(o *Options) { o.Retry.MaxRetryDelay = time.Hour }},
	}
	for _, c := range cases {
		o := base
		c.tweak(&o)
		if _, err := o.withDefaults(); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("%s: got %v, want ErrInvalidInput", c.name, err)
		}
	}
	o, err := base.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Partitions != 16 || o.MaxPayloadBytes != 50<<20 || o.Retry.MaxRetries != 4 || o.CreateIfMissing {
		t.Errorf("defaults: %+v", o)
	}
	for _, ok := range []string{"abc", "a" + strings.Repeat("0", 40), "hub1"} {
		if err := ValidateTaskHubName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestParseConnectionString(t *testing.T) {
	a, err := parseConnectionString("UseDevelopmentStorage=true")
	if err != nil {
		t.Fatal(err)
	}
	if a.name != "devstoreaccount1" || a.tableURL != "http://127.0.0.1:10002/devstoreaccount1" || a.key == "" {
		t.Fatalf("development storage: %+v", a)
	}
	a, err = parseConnectionString("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn")
	if err != nil {
		t.Fatal(err)
	}
	if a.blobURL != "https://acct.blob.core.chinacloudapi.cn" || a.queueURL != "https://acct.queue.core.chinacloudapi.cn" {
		t.Fatalf("endpoints: %+v", a)
	}
	a, err = parseConnectionString("BlobEndpoint=https://b/;QueueEndpoint=https://q;TableEndpoint=https://t;SharedAccessSignature=?sv=1&sig=abc")
	if err != nil {
		t.Fatal(err)
	}
	if a.sas != "sv=1&sig=abc" || a.blobURL != "https://b" {
		t.Fatalf("SAS: %+v", a)
	}
	for _, bad := range []string{"AccountName=x", "garbage", "AccountKey=SECRETKEY123;BlobEndpoint=x"} {
		_, err := parseConnectionString(bad)
		if !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("%q: %v", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETKEY123") {
			t.Errorf("error quotes the key: %v", err)
		}
	}
}

func TestAzuriteCreateTaskHubAndNew(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cs := azurite.ForTest(t)
	hub := testHubName(t)

	_, err := New(ctx, Options{ConnectionString: cs, TaskHub: hub, Partitions: 3})
	if !errors.Is(err, ErrTaskHubNotFound) {
		t.Fatalf("New on a missing task hub: %v, want ErrTaskHubNotFound", err)
	}
	p, err := New(ctx, Options{ConnectionString: cs, TaskHub: hub, Partitions: 3, CreateIfMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.DeleteTaskHub(context.Background())
	must(t, p.CreateTaskHub(ctx)) // idempotent
	info, err := p.readHubInfo(ctx)
	must(t, err)
	if info.Partitions != 3 || info.FormatVersion != formatVersion || info.CreatedAt.IsZero() {
		t.Fatalf("taskhub.json: %+v", info)
	}
	for i := range 3 {
		if _, err := p.control[i].GetProperties(ctx, nil); err != nil {
			t.Fatalf("control queue %d: %v", i, err)
		}
	}
	if _, err := p.work.GetProperties(ctx, nil); err != nil {
		t.Fatalf("work-item queue: %v", err)
	}

	_, err = New(ctx, Options{ConnectionString: cs, TaskHub: hub, Partitions: 8})
	if !errors.Is(err, core.ErrInvalidInput) || !strings.Contains(err.Error(), "3 partitions") || !strings.Contains(err.Error(), "configured with 8") {
		t.Fatalf("New with another partition count: %v", err)
	}
	p8, err := New(ctx, Options{ConnectionString: cs, TaskHub: hub, Partitions: 3})
	must(t, err)
	if p8.Partitions() != 3 {
		t.Fatal(p8.Partitions())
	}

	other, err := newProvider(Options{ConnectionString: cs, TaskHub: hub, Partitions: 5})
	must(t, err)
	if err := other.CreateTaskHub(ctx); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("CreateTaskHub with another partition count: %v", err)
	}

	must(t, p.DeleteTaskHub(ctx))
	must(t, p.DeleteTaskHub(ctx)) // idempotent
	if _, err := New(ctx, Options{ConnectionString: cs, TaskHub: hub, Partitions: 3}); !errors.Is(err, ErrTaskHubNotFound) {
		t.Fatalf("New after DeleteTaskHub: %v", err)
	}
}

func TestAzuriteSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := azurite.ForTest(t)
	a, err := parseConnectionString(cs)
	must(t, err)
	fastFail := RetryOptions{MaxRetries: -1, TryTimeout: 5 * time.Second}

	// A wrong key: every call is refused with 403.
	wrongKey := base64.StdEncoding.EncodeToString([]byte("this-is-not-the-account-key-0123456789"))
	wrong := strings.Replace(cs, a.key, wrongKey, 1)
	_, err = New(ctx, Options{ConnectionString: wrong, TaskHub: testHubName(t), CreateIfMissing: true, Retry: fastFail})
	if err == nil {
		t.Fatal("New with a wrong key succeeded")
	}
	checkNoSecret(t, err, wrong, wrongKey)

	// A SAS with an unreachable endpoint: the transport error quotes the URL.
	const sig = "c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ%3D%3D"
	sas := "BlobEndpoint=http://127.0.0.1:1/acct;QueueEndpoint=http://127.0.0.1:1/acct;TableEndpoint=http://127.0.0.1:1/acct;" +
		"SharedAccessSignature=sv=2022-11-02&ss=bqt&srt=sco&sp=rwdlacup&se=2099-01-01T00:00:00Z&sig=" + sig
	_, err = New(ctx, Options{ConnectionString: sas, TaskHub: testHubName(t), CreateIfMissing: true, Retry: fastFail})
	if err == nil {
		t.Fatal("New with an unreachable endpoint succeeded")
	}
	checkNoSecret(t, err, sas, sig, "c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ")
	if !core.IsRetryable(err) {
		t.Errorf("connection refused is not retryable: %v", err)
	}

	// A wrong key on a working provider: a storage operation's error.
	p := newTestProvider(t)
	bad, err := newProvider(Options{ConnectionString: wrong, TaskHub: p.hub, Partitions: p.n, Retry: fastFail})
	must(t, err)
	_, err = bad.GetInstance(ctx, "x", true)
	if err == nil {
		t.Fatal("GetInstance with a wrong key succeeded")
	}
	var se *core.StorageError
	if !errors.As(err, &se) || se.Status != 403 || se.Transient {
		t.Errorf("wrong key: %#v", err)
	}
	checkNoSecret(t, err, wrong, wrongKey)
}

func checkNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	msg := err.Error()
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error text contains a secret: %s", msg)
		}
	}
	t.Logf("error (no secret): %s", msg)
}
