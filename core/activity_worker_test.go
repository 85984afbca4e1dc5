package core

import (
	"testing"
	"time"
)

func TestWorkItemPollBacksOffTo30PollMaxIntervals(t *testing.T) {
	o := Options{PollMinInterval: 10 * time.Millisecond, PollMaxInterval: time.Second} // the defaults
	var got []time.Duration
	for d := o.PollMinInterval; len(got) < 15; {
		d = nextWorkItemPoll(d, &o)
		got = append(got, d)
	}
	if got[0] != 20*time.Millisecond || got[10] != 20480*time.Millisecond || got[11] != 30*time.Second || got[14] != 30*time.Second {
		t.Fatalf("intervals after empty polls: %v; want doubling from 10ms up to 30s", got)
	}
}
