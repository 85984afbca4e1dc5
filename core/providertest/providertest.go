// Package providertest is the conformance suite for core.Provider
// implementations. A provider runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		providertest.Run(t, func(t testing.TB) core.Provider { return newTestProvider(t) })
//	}
//
// The factory returns a fresh, empty task hub on every call, cleaned up by
// t.Cleanup. The suite has two parts: contract tests that call the provider
// directly, and end-to-end scenarios that run a real runtime and client on it.
package providertest

import (
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Factory returns a new provider over a fresh, empty task hub.
type Factory func(t testing.TB) core.Provider

// Options tune the suite for a provider.
type Options struct {
	// Variants are the runtime configurations each scenario runs under.
	// Default: with and without the executor cache, activities on the owner.
	Variants []Variant
	// Timeout bounds one scenario. Default 60s.
	Timeout time.Duration
	// MinLock is the shortest lock the provider honours, for the contract's
	// lock-expiry tests. Default 1s.
	MinLock time.Duration
	// MaxPacked is the most messages the provider carries in one queue
	// message: FetchMessages(max) may then return up to max × MaxPacked
	// messages. Default 1 (max bounds the messages themselves).
	MaxPacked int
}

// Variant is one runtime configuration.
type Variant struct {
	Name string
	// Cache keeps instances in memory between episodes.
	Cache bool
	// Offload sends every activity through the work-item queue.
	Offload bool
}

// DefaultVariants run every scenario with and without the executor cache.
var DefaultVariants = []Variant{{Name: "cache", Cache: true}, {Name: "nocache", Cache: false}}

func (o Options) withDefaults() Options {
	if len(o.Variants) == 0 {
		o.Variants = DefaultVariants
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.MinLock == 0 {
		o.MinLock = time.Second
	}
	o.MaxPacked = max(o.MaxPacked, 1)
	return o
}

// Run runs the whole suite: RunContract, then RunScenarios.
func Run(t *testing.T, f Factory, opts Options) {
	t.Run("Contract", func(t *testing.T) { RunContract(t, f, opts) })
	t.Run("Scenarios", func(t *testing.T) { RunScenarios(t, f, opts) })
}
