package azprovider

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azdurable/azdurable/core"
)

// Options configure New. Give either ConnectionString, or AccountName with
// Credential (Microsoft Entra ID, for example from azidentity).
type Options struct {
	// ConnectionString of the storage account, with an AccountKey or a
	// SharedAccessSignature. "UseDevelopmentStorage=true" means Azurite on
	// its default ports. It is never included in an error.
	ConnectionString string

	// AccountName and Credential authenticate with a token instead of a key.
	AccountName string
	Credential  azcore.TokenCredential
	// BlobEndpoint, QueueEndpoint and TableEndpoint override the service URLs
	// (default https://<AccountName>.<service>.core.windows.net). They are used
	// with Credential; a connection string names its own endpoints.
	BlobEndpoint, QueueEndpoint, TableEndpoint string

	// TaskHub names the task hub: ^[a-z][a-z0-9]{2,40}$. Its storage is the
	// table <hub>State, the queues <hub>-control-NN and <hub>-workitems, and
	// the containers <hub>-payloads and <hub>-leases.
	TaskHub string

	// Partitions is the partition count P, 1..256 (default 16). It is fixed
	// when the task hub is created; New fails when the stored count differs.
	Partitions int

	// CreateIfMissing makes New create the task hub when it does not exist
	// (default false: call CreateTaskHub, or New fails with a clear error).
	CreateIfMissing bool

	// MaxPayloadBytes bounds one payload (input, output, event data, custom
	// status); larger payloads are refused with core.ErrPayloadTooLarge.
	// Default 50 MiB. Payloads over 64 KiB are stored in blobs.
	MaxPayloadBytes int

	// Retry bounds the retries of transient storage faults (timeouts,
	// throttling, 5xx, connection resets). They happen in one place: the
	// Azure SDK pipeline of every client.
	Retry RetryOptions

	// NoMessagePacking sends every control message in a queue message of
	// its own. By default messages for one partition that are sent at about
	// the same time share queue messages (up to 32 in one), which divides
	// the queue operations they cost. Set it while hosts of a build that
	// cannot read packs still run against the task hub.
	NoMessagePacking bool

	// Transport, if set, sends the HTTP requests instead of the default
	// client (tests inject faults with it).
	Transport policy.Transporter
}

// RetryOptions bound the retries of transient storage faults, with
// exponential backoff between tries.
type RetryOptions struct {
	// MaxRetries is the number of retries after the first try (default 4,
	// at most 20; negative means no retries).
	MaxRetries int
	// RetryDelay is the first backoff (default 100ms, at most 10s).
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff (default 3s, at most 2m).
	MaxRetryDelay time.Duration
	// TryTimeout bounds one try (default 30s, at most 5m).
	TryTimeout time.Duration
}

const (
	defaultPartitions      = 16
	maxPartitions          = 256
	defaultMaxPayloadBytes = 50 << 20
)

var hubNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{2,40}$`)

// ValidateTaskHubName checks a task hub name: ^[a-z][a-z0-9]{2,40}$.
func ValidateTaskHubName(name string) error {
	if !hubNameRE.MatchString(name) {
		return fmt.Errorf("%w: task hub name %q is invalid: it must match ^[a-z][a-z0-9]{2,40}$ (lower-case letters and digits, starting with a letter, 3 to 41 characters)", core.ErrInvalidInput, name)
	}
	return nil
}

// withDefaults fills in defaults and validates the options.
func (o Options) withDefaults() (Options, error) {
	if err := ValidateTaskHubName(o.TaskHub); err != nil {
		return o, err
	}
	if o.Partitions == 0 {
		o.Partitions = defaultPartitions
	}
	if o.Partitions < 1 || o.Partitions > maxPartitions {
		return o, fmt.Errorf("%w: Partitions is %d; it must be between 1 and %d", core.ErrInvalidInput, o.Partitions, maxPartitions)
	}
	if o.MaxPayloadBytes == 0 {
		o.MaxPayloadBytes = defaultMaxPayloadBytes
	}
	if o.MaxPayloadBytes < 0 {
		return o, fmt.Errorf("%w: MaxPayloadBytes is negative", core.ErrInvalidInput)
	}
	switch {
	case o.ConnectionString != "" && o.Credential != nil:
		return o, fmt.Errorf("%w: give either ConnectionString or Credential, not both", core.ErrInvalidInput)
	case o.ConnectionString == "" && o.Credential == nil:
		return o, fmt.Errorf("%w: no storage account: set ConnectionString, or AccountName and Credential", core.ErrInvalidInput)
	case o.Credential != nil && o.AccountName == "" && (o.BlobEndpoint == "" || o.QueueEndpoint == "" || o.TableEndpoint == ""):
		return o, fmt.Errorf("%w: Credential needs AccountName (or all three endpoints)", core.ErrInvalidInput)
	}
	r, err := o.Retry.withDefaults()
	if err != nil {
		return o, err
	}
	o.Retry = r
	return o, nil
}

func (r RetryOptions) withDefaults() (RetryOptions, error) {
	set := func(v *time.Duration, def, limit time.Duration, name string) error {
		if *v == 0 {
			*v = def
		}
		if *v < 0 || *v > limit {
			return fmt.Errorf("%w: Retry.%s is %v; it must be between 0 and %v", core.ErrInvalidInput, name, *v, limit)
		}
		return nil
	}
	if r.MaxRetries == 0 {
		r.MaxRetries = 4
	}
	if r.MaxRetries > 20 {
		return r, fmt.Errorf("%w: Retry.MaxRetries is %d; at most 20", core.ErrInvalidInput, r.MaxRetries)
	}
	if r.MaxRetries < 0 {
		r.MaxRetries = -1
	}
	if err := set(&r.RetryDelay, 100*time.Millisecond, 10*time.Second, "RetryDelay"); err != nil {
		return r, err
	}
	if err := set(&r.MaxRetryDelay, 3*time.Second, 2*time.Minute, "MaxRetryDelay"); err != nil {
		return r, err
	}
	if err := set(&r.TryTimeout, 30*time.Second, 5*time.Minute, "TryTimeout"); err != nil {
		return r, err
	}
	return r, nil
}

// defaultTransport keeps more idle connections per host than the SDK's
// (10): one provider call runs up to maxParallel requests at once.
var defaultTransport = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * maxParallel * 3
	t.MaxIdleConnsPerHost = 4 * maxParallel
	return &http.Client{Transport: t}
}()

// clientOptions are the azcore options every client shares: the bounded
// retry policy and the per-call policy that counts operations.
func (p *Provider) clientOptions(service string) azcore.ClientOptions {
	var transport policy.Transporter = defaultTransport
	if p.opts.Transport != nil {
		transport = p.opts.Transport
	}
	return azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    int32(p.opts.Retry.MaxRetries),
			RetryDelay:    p.opts.Retry.RetryDelay,
			MaxRetryDelay: p.opts.Retry.MaxRetryDelay,
			TryTimeout:    p.opts.Retry.TryTimeout,
		},
		PerCallPolicies: []policy.Policy{&countingPolicy{service: service, stats: p.stats}},
		Transport:       transport,
		Telemetry:       policy.TelemetryOptions{Disabled: true},
	}
}
