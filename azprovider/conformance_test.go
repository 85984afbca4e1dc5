package azprovider

import (
	"testing"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/providertest"
)

// TestAzuriteConformance runs the provider conformance suite on Azurite:
// every contract test, and every scenario with and without the executor
// cache, with activities on the owner and through the work-item queue.
func TestAzuriteConformance(t *testing.T) {
	providertest.Run(t, func(t testing.TB) core.Provider { return newTestProvider(t) }, providertest.Options{
		MaxPacked: maxPackParts,
		Variants: []providertest.Variant{
			{Name: "cache", Cache: true},
			{Name: "nocache"},
			{Name: "cache-offload", Cache: true, Offload: true},
			{Name: "nocache-offload", Offload: true},
		},
	})
}
