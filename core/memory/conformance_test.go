package memory_test

import (
	"testing"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
	"github.com/azdurable/azdurable/core/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t testing.TB) core.Provider {
		p, err := memory.New(memory.Options{Partitions: 4})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}, providertest.Options{})
}
