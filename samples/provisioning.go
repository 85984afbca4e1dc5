package samples

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Resource kinds an environment is made of.
const (
	ResourceNetwork  = "network"
	ResourceDatabase = "database"
	ResourceVM       = "vm"
)

// DNSStep names the last step of ProvisionEnvironment in
// EnvironmentRequest.FailResource.
const DNSStep = "dns"

// Limits and defaults of ProvisionEnvironment.
const (
	DefaultVMs          = 2
	MaxVMs              = 16
	DefaultPollInterval = 5 * time.Second
	// MaxReadinessChecks is how often ProvisionResource asks whether a new
	// resource is ready before it gives up on it.
	MaxReadinessChecks = 10
)

// Error types of the provisioning sample, as ApplicationError.Type.
const (
	// ProvisioningFailedType: a step failed and what was created was deleted.
	ProvisioningFailedType = "samples.ProvisioningFailed"
	// ResourceFailedType: the cloud refused to create a resource; not retried.
	ResourceFailedType = "samples.ResourceFailed"
)

// EnvironmentRequest asks for an environment: a network, a database and
// some virtual machines, reachable under a DNS name.
type EnvironmentRequest struct {
	Name string `json:"name"`
	// VMs is the number of virtual machines, 1..MaxVMs (default DefaultVMs).
	VMs int `json:"vms,omitempty"`
	// FailResource names the step that fails, to show compensation: a
	// resource name ("network", "database", "vm-1", …) or DNSStep. Empty:
	// nothing fails.
	FailResource string `json:"failResource,omitempty"`
	// PollInterval is the wait between readiness checks of a new resource
	// (default DefaultPollInterval).
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// ResourceSpec is the input of ProvisionResource and CreateResource.
type ResourceSpec struct {
	Environment  string        `json:"environment"`
	Kind         string        `json:"kind"`
	Name         string        `json:"name"`
	Fail         bool          `json:"fail,omitempty"`
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// Resource is a created resource.
type Resource struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	ID   string `json:"id"`
}

// Environment is what ProvisionEnvironment returns.
type Environment struct {
	Name      string     `json:"name"`
	Resources []Resource `json:"resources"`
	Endpoint  string     `json:"endpoint"`
}

// ProvisioningStatus is ProvisionEnvironment's custom status.
type ProvisioningStatus struct {
	// Stage is "network", "compute", "dns", "ready" or "rolled back".
	Stage   string   `json:"stage"`
	Created []string `json:"created,omitempty"`
	Deleted []string `json:"deleted,omitempty"`
}

// ReadinessProbe is the input of ResourceReady.
type ReadinessProbe struct {
	Resource Resource `json:"resource"`
	Attempt  int      `json:"attempt"`
}

// DNSRecord is the input of ConfigureDNS.
type DNSRecord struct {
	Environment string   `json:"environment"`
	Targets     []string `json:"targets"`
	Fail        bool     `json:"fail,omitempty"`
}

// cloudRetry retries transient failures of calls to the cloud.
var cloudRetry = core.WithRetry(core.RetryPolicy{MaxAttempts: 3, FirstInterval: time.Second, BackoffCoefficient: 2})

// vmNames names the virtual machines of an environment: vm-1, vm-2, …
func vmNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", ResourceVM, i+1)
	}
	return names
}

// ProvisionEnvironment builds an environment in three stages: the network,
// then the database and the virtual machines in parallel (each a
// sub-orchestration, ProvisionResource), then the DNS name. When a stage
// fails it deletes what it created, newest first, and fails with a
// ProvisioningFailedType error. Its custom status (ProvisioningStatus) shows
// how far it got.
func ProvisionEnvironment(ctx *core.OrchestrationContext, req EnvironmentRequest) (Environment, error) {
	vms := req.VMs
	if vms == 0 {
		vms = DefaultVMs
	}
	if req.Name == "" || vms < 1 || vms > MaxVMs {
		return Environment{}, core.NewApplicationError(core.FailureTypeInvalidInput,
			fmt.Sprintf("environment %q with %d VMs: a name and 1 to %d VMs are required", req.Name, vms, MaxVMs), true)
	}
	env := Environment{Name: req.Name}
	p := &provisioning{ctx: ctx}
	spec := func(kind, name string) ResourceSpec {
		return ResourceSpec{Environment: req.Name, Kind: kind, Name: name, Fail: name == req.FailResource, PollInterval: req.PollInterval}
	}

	// 1. The network: everything else lives in it.
	if err := p.stage("network"); err != nil {
		return env, err
	}
	network, err := core.CallSubOrchestration[Resource](ctx, ProvisionResource, spec(ResourceNetwork, ResourceNetwork)).Await(ctx)
	if err != nil {
		return env, p.rollBack(ResourceNetwork, err)
	}
	if err := p.created(network); err != nil {
		return env, err
	}

	// 2. The database and the virtual machines, in parallel.
	if err := p.stage("compute"); err != nil {
		return env, err
	}
	specs := []ResourceSpec{spec(ResourceDatabase, ResourceDatabase)}
	for _, name := range vmNames(vms) {
		specs = append(specs, spec(ResourceVM, name))
	}
	children := make([]*core.Future[Resource], len(specs))
	all := make([]core.Awaitable, len(specs))
	for i, s := range specs {
		children[i] = core.CallSubOrchestration[Resource](ctx, ProvisionResource, s)
		all[i] = children[i]
	}
	_ = core.WhenAll(ctx, all...) // every child is done now; look at each in turn
	var failed string
	var failure error
	for i, child := range children {
		r, err := child.Await(ctx)
		if err != nil {
			if failure == nil {
				failed, failure = specs[i].Name, err
			}
			continue
		}
		if err := p.created(r); err != nil {
			return env, err
		}
	}
	if failure != nil {
		return env, p.rollBack(failed, failure)
	}

	// 3. The DNS name, pointing at the virtual machines.
	if err := p.stage(DNSStep); err != nil {
		return env, err
	}
	rec := DNSRecord{Environment: req.Name, Fail: req.FailResource == DNSStep}
	for _, r := range p.resources {
		if r.Kind == ResourceVM {
			rec.Targets = append(rec.Targets, r.ID)
		}
	}
	endpoint, err := core.CallActivity[string](ctx, ConfigureDNS, rec, cloudRetry).Await(ctx)
	if err != nil {
		return env, p.rollBack(DNSStep, err)
	}
	env.Resources, env.Endpoint = p.resources, endpoint
	return env, p.stage("ready")
}

// provisioning tracks what ProvisionEnvironment has created, to publish it
// and to undo it.
type provisioning struct {
	ctx       *core.OrchestrationContext
	status    ProvisioningStatus
	resources []Resource
}

func (p *provisioning) stage(s string) error {
	p.status.Stage = s
	return p.ctx.SetCustomStatus(p.status)
}

func (p *provisioning) created(r Resource) error {
	p.resources = append(p.resources, r)
	p.status.Created = append(p.status.Created, r.Name)
	return p.ctx.SetCustomStatus(p.status)
}

// rollBack deletes every created resource, newest first, and returns the
// orchestration's failure.
func (p *provisioning) rollBack(step string, cause error) error {
	var problems []string
	for _, r := range slices.Backward(p.resources) {
		if _, err := core.CallActivity[core.Void](p.ctx, DeleteResource, r, cloudRetry).Await(p.ctx); err != nil {
			problems = append(problems, fmt.Sprintf("deleting %s (%s) failed: %v", r.Name, r.ID, err))
			continue
		}
		p.status.Deleted = append(p.status.Deleted, r.Name)
	}
	if err := p.stage("rolled back"); err != nil {
		return err
	}
	msg := fmt.Sprintf("%s failed: %s", step, reason(cause))
	if len(p.status.Deleted) > 0 {
		msg += "; deleted " + strings.Join(p.status.Deleted, ", ")
	}
	if len(problems) > 0 {
		msg += "; " + strings.Join(problems, "; ")
	}
	return core.NewApplicationError(ProvisioningFailedType, msg, true)
}

// ProvisionResource creates one resource and waits, on durable timers, until
// it is ready. A resource that never becomes ready is deleted again.
func ProvisionResource(ctx *core.OrchestrationContext, spec ResourceSpec) (Resource, error) {
	r, err := core.CallActivity[Resource](ctx, CreateResource, spec, cloudRetry).Await(ctx)
	if err != nil {
		return Resource{}, err
	}
	interval := spec.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	for attempt := 1; ; attempt++ {
		ready, err := core.CallActivity[bool](ctx, ResourceReady, ReadinessProbe{Resource: r, Attempt: attempt}, cloudRetry).Await(ctx)
		if err == nil && ready {
			return r, nil
		}
		if err == nil && attempt >= MaxReadinessChecks {
			err = core.NewApplicationError(ResourceFailedType, fmt.Sprintf("%s %s not ready after %d checks", r.Kind, r.Name, attempt), true)
		}
		if err != nil {
			if _, derr := core.CallActivity[core.Void](ctx, DeleteResource, r, cloudRetry).Await(ctx); derr != nil {
				return Resource{}, fmt.Errorf("%w; deleting it failed too: %w", err, derr)
			}
			return Resource{}, err
		}
		if err := ctx.Sleep(interval); err != nil {
			return Resource{}, err
		}
	}
}

// CreateResource asks the cloud for a resource and returns it; it exists
// from then on but may not be ready yet.
func CreateResource(_ core.ActivityContext, spec ResourceSpec) (Resource, error) {
	if spec.Fail {
		return Resource{}, core.NewApplicationError(ResourceFailedType,
			fmt.Sprintf("quota exceeded: cannot create %s %s", spec.Kind, spec.Name), true)
	}
	return ResourceFor(spec.Environment, spec.Kind, spec.Name), nil
}

// ResourceReady reports whether a new resource is ready. This sample's
// resources become ready after one to three checks.
func ResourceReady(_ core.ActivityContext, p ReadinessProbe) (bool, error) {
	return p.Attempt > int(hashOf("ready", p.Resource.ID)%3), nil
}

// DeleteResource deletes a resource; deleting one that is gone is harmless.
func DeleteResource(_ core.ActivityContext, _ Resource) (core.Void, error) { return core.Void{}, nil }

// ConfigureDNS points the environment's DNS name at its machines and returns it.
func ConfigureDNS(_ core.ActivityContext, rec DNSRecord) (string, error) {
	if rec.Fail {
		return "", core.NewApplicationError(ResourceFailedType, "DNS zone is locked: cannot add "+rec.Environment, true)
	}
	return Endpoint(rec.Environment, rec.Targets), nil
}

// ResourceFor is the resource CreateResource creates.
func ResourceFor(environment, kind, name string) Resource {
	return Resource{Kind: kind, Name: name, ID: kind + "-" + code("resource", environment, name)}
}

// Endpoint is the DNS name ConfigureDNS returns.
func Endpoint(environment string, targets []string) string {
	return fmt.Sprintf("%s-%s.example.net", environment, code(append([]string{"dns", environment}, targets...)...))
}

// ExpectedProvisioning is what ProvisionEnvironment does for req: the
// environment it returns when ok, otherwise the names of the resources it
// deletes, in order.
func ExpectedProvisioning(req EnvironmentRequest) (env Environment, deleted []string, ok bool) {
	vms := req.VMs
	if vms == 0 {
		vms = DefaultVMs
	}
	env = Environment{Name: req.Name}
	if req.FailResource == ResourceNetwork {
		return Environment{Name: req.Name}, nil, false
	}
	env.Resources = append(env.Resources, ResourceFor(req.Name, ResourceNetwork, ResourceNetwork))
	failed := false
	for _, s := range append([][2]string{{ResourceDatabase, ResourceDatabase}}, kindNames(ResourceVM, vmNames(vms))...) {
		if s[1] == req.FailResource {
			failed = true
			continue
		}
		env.Resources = append(env.Resources, ResourceFor(req.Name, s[0], s[1]))
	}
	if failed || req.FailResource == DNSStep {
		for _, r := range slices.Backward(env.Resources) {
			deleted = append(deleted, r.Name)
		}
		return Environment{Name: req.Name}, deleted, false
	}
	var targets []string
	for _, r := range env.Resources {
		if r.Kind == ResourceVM {
			targets = append(targets, r.ID)
		}
	}
	env.Endpoint = Endpoint(req.Name, targets)
	return env, nil, true
}

func kindNames(kind string, names []string) [][2]string {
	out := make([][2]string, len(names))
	for i, n := range names {
		out[i] = [2]string{kind, n}
	}
	return out
}
