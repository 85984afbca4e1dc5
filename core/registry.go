package core

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// OrchestratorFunc is the untyped form of an orchestration: raw input in,
// raw output out, encoded with the runtime's codec.
type OrchestratorFunc func(ctx *OrchestrationContext, input []byte) ([]byte, error)

// ActivityFunc is the untyped form of an activity.
type ActivityFunc func(ctx ActivityContext, input []byte) ([]byte, error)

// Registry holds the orchestrations and activities a host can run, by name
// and version. It is safe for concurrent use; registering while a runtime
// runs makes the new entries available to it at once.
type Registry struct {
	mu             sync.RWMutex
	orchestrations map[string]map[string]OrchestratorFunc
	activities     map[string]map[string]ActivityFunc
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		orchestrations: map[string]map[string]OrchestratorFunc{},
		activities:     map[string]map[string]ActivityFunc{},
	}
}

// RegisterOption changes how a function is registered.
type RegisterOption func(*registerOptions)

type registerOptions struct{ name, version string }

// WithName registers under name instead of the function's own name.
func WithName(name string) RegisterOption { return func(o *registerOptions) { o.name = name } }

// AtVersion registers a version of the name. An instance keeps the version
// it started with; starts without a version use the latest one (see CompareVersions).
func AtVersion(version string) RegisterOption {
	return func(o *registerOptions) { o.version = version }
}

func resolveRegisterOptions(fn any, opts []RegisterOption) (registerOptions, error) {
	var o registerOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.name == "" {
		o.name = FuncName(fn)
	}
	return o, ValidateName("name", o.name)
}

// FuncName is the name a function is registered and called under by default:
// its name without package path or receiver ("Checkout" for shop.Checkout).
func FuncName(fn any) string {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return ""
	}
	full := runtime.FuncForPC(v.Pointer()).Name()
	full = strings.TrimSuffix(full, "-fm")
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		full = full[i+1:]
	}
	return full
}

// RegisterOrchestration registers a typed orchestration.
func RegisterOrchestration[In, Out any](r *Registry, fn func(ctx *OrchestrationContext, input In) (Out, error), opts ...RegisterOption) error {
	o, err := resolveRegisterOptions(fn, opts)
	if err != nil {
		return err
	}
	return r.AddOrchestration(o.name, o.version, func(ctx *OrchestrationContext, raw []byte) ([]byte, error) {
		var in In
		if err := ctx.codec().Unmarshal(raw, &in); err != nil {
			return nil, NewApplicationError(FailureTypeInvalidInput, fmt.Sprintf("orchestration %q: %v", o.name, err), true)
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return ctx.codec().Marshal(out)
	})
}

// RegisterActivity registers a typed activity.
func RegisterActivity[In, Out any](r *Registry, fn func(ctx ActivityContext, input In) (Out, error), opts ...RegisterOption) error {
	o, err := resolveRegisterOptions(fn, opts)
	if err != nil {
		return err
	}
	return r.AddActivity(o.name, o.version, func(ctx ActivityContext, raw []byte) ([]byte, error) {
		var in In
		if err := ctx.Codec().Unmarshal(raw, &in); err != nil {
			return nil, NewApplicationError(FailureTypeInvalidInput, fmt.Sprintf("activity %q: %v", o.name, err), true)
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return ctx.Codec().Marshal(out)
	})
}

// AddOrchestration registers an untyped orchestration under name and version.
func (r *Registry) AddOrchestration(name, version string, fn OrchestratorFunc) error {
	if err := ValidateName("orchestration name", name); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: orchestration %q: nil function", ErrInvalidInput, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return addVersion(r.orchestrations, "orchestration", name, version, fn)
}

// AddActivity registers an untyped activity under name and version.
func (r *Registry) AddActivity(name, version string, fn ActivityFunc) error {
	if err := ValidateName("activity name", name); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: activity %q: nil function", ErrInvalidInput, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return addVersion(r.activities, "activity", name, version, fn)
}

func addVersion[F any](m map[string]map[string]F, kind, name, version string, fn F) error {
	vs := m[name]
	if vs == nil {
		vs = map[string]F{}
		m[name] = vs
	}
	if _, dup := vs[version]; dup {
		if version == "" {
			return fmt.Errorf("%w: %s %q is already registered", ErrInvalidInput, kind, name)
		}
		return fmt.Errorf("%w: %s %q version %q is already registered", ErrInvalidInput, kind, name, version)
	}
	vs[version] = fn
	return nil
}

// Merge adds every registration of other to r. It fails, adding nothing,
// when a name and version is registered in both.
func (r *Registry) Merge(other *Registry) error {
	if other == r {
		return fmt.Errorf("%w: cannot merge a registry into itself", ErrInvalidInput)
	}
	other.mu.RLock()
	defer other.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, vs := range other.orchestrations {
		for v := range vs {
			if _, dup := r.orchestrations[name][v]; dup {
				return fmt.Errorf("%w: merge: orchestration %q version %q is registered in both registries", ErrInvalidInput, name, v)
			}
		}
	}
	for name, vs := range other.activities {
		for v := range vs {
			if _, dup := r.activities[name][v]; dup {
				return fmt.Errorf("%w: merge: activity %q version %q is registered in both registries", ErrInvalidInput, name, v)
			}
		}
	}
	for name, vs := range other.orchestrations {
		for v, fn := range vs {
			_ = addVersion(r.orchestrations, "orchestration", name, v, fn)
		}
	}
	for name, vs := range other.activities {
		for v, fn := range vs {
			_ = addVersion(r.activities, "activity", name, v, fn)
		}
	}
	return nil
}

// orchestration finds an orchestration; version "" means the latest.
// It returns the resolved version.
func (r *Registry) orchestration(name, version string) (OrchestratorFunc, string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return lookup(r.orchestrations, "orchestration", name, version)
}

func (r *Registry) activity(name, version string) (ActivityFunc, string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return lookup(r.activities, "activity", name, version)
}

// HasActivity reports whether the activity can run here.
func (r *Registry) HasActivity(name, version string) bool {
	_, _, err := r.activity(name, version)
	return err == nil
}

func lookup[F any](m map[string]map[string]F, kind, name, version string) (F, string, error) {
	var zero F
	vs := m[name]
	if version != "" {
		if fn, ok := vs[version]; ok {
			return fn, version, nil
		}
		return zero, "", &NotRegisteredError{Kind: kind, Name: name, Version: version}
	}
	if len(vs) == 0 {
		return zero, "", &NotRegisteredError{Kind: kind, Name: name}
	}
	latest, first := "", true
	for v := range vs {
		if first || CompareVersions(v, latest) > 0 {
			latest, first = v, false
		}
	}
	return vs[latest], latest, nil
}

// Orchestrations lists the registered orchestrations, sorted.
func (r *Registry) Orchestrations() []NameVersion {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return list(r.orchestrations)
}

// Activities lists the registered activities, sorted.
func (r *Registry) Activities() []NameVersion {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return list(r.activities)
}

func list[F any](m map[string]map[string]F) []NameVersion {
	var out []NameVersion
	for name, vs := range m {
		for v := range vs {
			out = append(out, NameVersion{Name: name, Version: v})
		}
	}
	slices.SortFunc(out, func(a, b NameVersion) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return CompareVersions(a.Version, b.Version)
	})
	return out
}

// CompareVersions orders versions: dot-separated parts compare numerically
// when both are numbers, as text otherwise; "" (unversioned) is the lowest.
// "1.10" > "1.9" > "1" > "".
func CompareVersions(a, b string) int {
	if a == b {
		return 0
	}
	if a == "" {
		return -1
	}
	if b == "" {
		return 1
	}
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.ParseUint(pa[i], 10, 64)
		nb, eb := strconv.ParseUint(pb[i], 10, 64)
		var c int
		if ea == nil && eb == nil {
			c = cmpU(na, nb)
		} else {
			c = strings.Compare(pa[i], pb[i])
		}
		if c != 0 {
			return c
		}
	}
	return len(pa) - len(pb)
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
