package core

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The stored ids of results, outboxes and continued executions are
// deterministicID values: their text must never change between versions.
func TestFormatUUIDIsTheCanonicalText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		if got := formatUUID(b); got != want {
			t.Fatalf("formatUUID(%x) = %s, want %s", b, got, want)
		}
	}
	// Pinned: written by earlier versions into stored messages.
	if got, want := deterministicID("instance", "execution", "result", "7"), "682c813a-a8b1-58bf-9f49-9a0a2802ba65"; got != want {
		t.Fatalf("deterministicID = %q, want %q", got, want)
	}
}
