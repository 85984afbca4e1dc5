package partition

import (
	"fmt"
	"slices"
	"testing"

	"github.com/azdurable/azdurable/leases"
)

// world is a simulated ownership state for plan tests: leases and intents,
// changed in rounds in which every host plans from the same picture.
type world struct {
	n      int
	live   []string
	state  []leases.State
	holder []string
	claims map[int]map[string]bool // partition → hosts that claim it
}

func newWorld(n int, live ...string) *world {
	return &world{n: n, live: live, state: make([]leases.State, n), holder: make([]string, n), claims: map[int]map[string]bool{}}
}

func (w *world) hold(host string, ps ...int) {
	for _, p := range ps {
		w.state[p], w.holder[p] = leases.Held, host
	}
}

func (w *world) view(self string) *view {
	v := &view{self: self, partitions: w.n, live: slices.Sorted(slices.Values(w.live)),
		state: slices.Clone(w.state), holder: slices.Clone(w.holder), claim: make([]string, w.n)}
	for p, hosts := range w.claims {
		for h := range hosts {
			if slices.Contains(w.live, h) && !(v.state[p] == leases.Held && v.holder[p] == h) &&
				(v.claim[p] == "" || h < v.claim[p]) {
				v.claim[p] = h
			}
		}
	}
	return v
}

// round lets every live host plan from the same picture, then applies the
// plans: hand-overs release, acquisitions of free partitions take them (the
// first host in id order wins a race), intents replace each host's claims.
// It reports whether anything changed.
func (w *world) round() bool {
	plans := map[string]plan{}
	for _, h := range w.live {
		plans[h] = makePlan(w.view(h))
	}
	changed := false
	for _, h := range w.live {
		for _, p := range plans[h].handOver {
			w.state[p] = leases.Free
			changed = true
		}
	}
	for _, h := range w.live {
		for _, p := range plans[h].acquire {
			if w.state[p] != leases.Held {
				w.hold(h, p)
				delete(w.claims[p], h)
				changed = true
			}
		}
	}
	for _, h := range w.live {
		want := map[int]bool{}
		for _, p := range plans[h].intents {
			want[p] = true
		}
		for p := range w.n {
			had := w.claims[p][h]
			switch {
			case want[p] && !had:
				if w.claims[p] == nil {
					w.claims[p] = map[string]bool{}
				}
				w.claims[p][h] = true
				changed = true
			case !want[p] && had:
				delete(w.claims[p], h)
				changed = true
			}
		}
	}
	return changed
}

func (w *world) counts() map[string]int {
	c := map[string]int{}
	for _, h := range w.live {
		c[h] = 0
	}
	for p := range w.n {
		if w.state[p] == leases.Held {
			c[w.holder[p]]++
		}
	}
	return c
}

// settle runs rounds until nothing changes and checks the balance.
func (w *world) settle(t *testing.T) int {
	t.Helper()
	rounds := 0
	for w.round() {
		rounds++
		if rounds > 50 {
			t.Fatalf("no convergence after 50 rounds: %v", w.counts())
		}
	}
	lo, hi := w.n, 0
	for _, c := range w.counts() {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi-lo > 1 {
		t.Fatalf("settled unbalanced: %v", w.counts())
	}
	for p := range w.n {
		if w.state[p] != leases.Held {
			t.Fatalf("partition %d not held after settling: %v", p, w.counts())
		}
	}
	return rounds
}

func hostNames(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("h%d", i))
	}
	return out
}

func TestPlanConvergesFromScratch(t *testing.T) {
	for _, n := range []int{1, 2, 7, 16, 64, 100} {
		for hosts := 1; hosts <= 7; hosts++ {
			t.Run(fmt.Sprintf("P%d_H%d", n, hosts), func(t *testing.T) {
				w := newWorld(n, hostNames(hosts)...)
				if r := w.settle(t); r > 3 {
					t.Fatalf("took %d rounds from scratch, want at most 3", r)
				}
			})
		}
	}
}

func TestPlanJoinAndLeave(t *testing.T) {
	for _, n := range []int{16, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w := newWorld(n, "h0")
			w.settle(t)
			for _, h := range []string{"h1", "h2", "h3", "h4"} {
				w.live = append(w.live, h)
				w.settle(t)
			}
			// A host leaves gracefully: its partitions are free.
			gone := w.live[1]
			w.live = slices.Delete(w.live, 1, 2)
			for p := range n {
				if w.holder[p] == gone {
					w.state[p] = leases.Free
				}
			}
			if r := w.settle(t); r > 1 {
				t.Fatalf("free partitions took %d rounds to share, want 1", r)
			}
			// A host dies: its leases expire.
			dead := w.live[0]
			w.live = w.live[1:]
			for p := range n {
				if w.holder[p] == dead {
					w.state[p] = leases.Expired
				}
			}
			w.settle(t)
		})
	}
}

func TestPlanStealsFromTheLargest(t *testing.T) {
	w := newWorld(16, "a", "b", "c", "d")
	w.hold("a", 0, 1, 2, 3, 4, 5)
	w.hold("b", 6, 7, 8, 9, 10)
	w.hold("c", 11, 12, 13, 14, 15)
	pd := makePlan(w.view("d"))
	// Shares 4 each: a gives 2, b and c one each, their highest partitions.
	if want := []int{4, 5, 10, 15}; fmt.Sprint(pd.intents) != fmt.Sprint(want) || len(pd.acquire) != 0 {
		t.Fatalf("d's plan %+v, want intents %v", pd, want)
	}
	for _, h := range []string{"a", "b", "c"} {
		if p := makePlan(w.view(h)); len(p.acquire)+len(p.intents)+len(p.handOver) != 0 {
			t.Fatalf("%s's plan %+v, want nothing to do", h, p)
		}
	}
	// Once d claims them, a hands over.
	for _, p := range pd.intents {
		w.claims[p] = map[string]bool{"d": true}
	}
	if pa := makePlan(w.view("a")); fmt.Sprint(pa.handOver) != "[4 5]" {
		t.Fatalf("a's hand-overs %v, want [4 5]", pa.handOver)
	}
	// When released, d acquires them and nobody else does.
	w.state[4], w.state[5] = leases.Free, leases.Free
	if pd := makePlan(w.view("d")); fmt.Sprint(pd.acquire) != "[4 5]" || !pd.stolen[4] {
		t.Fatalf("d's plan %+v, want to acquire 4 and 5", pd)
	}
	for _, h := range []string{"a", "b", "c"} {
		if p := makePlan(w.view(h)); len(p.acquire) != 0 {
			t.Fatalf("%s acquires %v, claimed by d", h, p.acquire)
		}
	}
}

func TestPlanRacingClaimsGoToTheSmallestID(t *testing.T) {
	w := newWorld(4, "a", "x", "y")
	w.hold("a", 0, 1, 2, 3)
	w.claims[3] = map[string]bool{"y": true, "x": true}
	if px := makePlan(w.view("x")); !slices.Contains(px.intents, 3) {
		t.Fatalf("x's plan %+v, want to keep its claim on 3", px)
	}
	if py := makePlan(w.view("y")); slices.Contains(py.intents, 3) {
		t.Fatalf("y's plan %+v keeps a claim that x wins", py)
	}
}

func TestPlanLeavesPartitionsOfHostsNotLiveAlone(t *testing.T) {
	w := newWorld(8, "a", "b")
	w.hold("a", 0, 1, 2, 3)
	w.hold("dead", 4, 5, 6, 7)
	for _, h := range []string{"a", "b"} {
		p := makePlan(w.view(h))
		if slices.ContainsFunc(p.acquire, func(p int) bool { return p >= 4 }) || slices.ContainsFunc(p.intents, func(p int) bool { return p >= 4 }) {
			t.Fatalf("%s plans to take a dead host's held partitions: %+v", h, p)
		}
	}
	// b may claim from a, which has all the available ones.
	if p := makePlan(w.view("b")); len(p.intents) != 0 {
		t.Fatalf("b's plan %+v; shares are 4 each and a has 4: nothing to steal", p)
	}
}

func TestPlanGivesNothingToAHostThatIsNotLive(t *testing.T) {
	w := newWorld(4, "a")
	p := makePlan(w.view("b"))
	if len(p.acquire)+len(p.intents) != 0 {
		t.Fatalf("plan of a host that is not live: %+v", p)
	}
}

func TestPlanCapsIntents(t *testing.T) {
	w := newWorld(1000, "a", "b")
	for p := range 1000 {
		w.hold("a", p)
	}
	if p := makePlan(w.view("b")); len(p.intents) != maxIntents {
		t.Fatalf("%d intents, want %d", len(p.intents), maxIntents)
	}
}
