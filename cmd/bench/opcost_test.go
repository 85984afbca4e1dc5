package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/test/azurite"
)

func TestMain(m *testing.M) { azurite.Main(m) }

// opcost measures every kind against real Azurite and prices the insert at 1.
func TestOpCost(t *testing.T) {
	conn := azurite.ForTest(t)
	costs, err := opCost(testContext(t), conn, 0, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(costs) != 5 {
		t.Fatalf("%d kinds measured, want 5", len(costs))
	}
	for _, c := range costs {
		if c.OpsPerSec <= 0 || c.Inserts <= 0 {
			t.Errorf("%s: %.1f ops/s, price %.2f; want both positive", c.Kind, c.OpsPerSec, c.Inserts)
		}
	}
	if costs[0].Inserts != 1 {
		t.Errorf("the insert's price is %.2f, want 1", costs[0].Inserts)
	}
	var out bytes.Buffer
	if err := writeOpCost(&out, costs, "csv"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 6 {
		t.Errorf("CSV has %d lines, want a header and 5 rows:\n%s", n, out.String())
	}
}
