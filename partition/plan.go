package partition

import (
	"cmp"
	"slices"

	"github.com/azdurable/azdurable/leases"
)

// view is one scan's picture of ownership. Every host builds it from the
// same listing by the same rules, so hosts that read the same listing agree
// on the plan, and each carries out only its own part of it.
type view struct {
	self       string
	partitions int
	// live are the live hosts, sorted.
	live []string
	// state and holder are each partition's lease state and its current
	// (or last) owner.
	state  []leases.State
	holder []string
	// claim is, per partition, the host whose valid intent wins ("" when
	// none): the smallest live host id among the valid intents.
	claim []string
}

// plan is what this host does after a scan.
type plan struct {
	// acquire lists free partitions this host should acquire now: those the
	// balance gives it, and those it claimed whose owner let them go.
	acquire []int
	// stolen marks the acquire entries that end a hand-over to this host.
	stolen map[int]bool
	// intents lists the partitions this host asks their owners for: the
	// claims it keeps and the new ones the balance gives it.
	intents []int
	// handOver lists partitions this host holds that another host claims.
	handOver []int
	// target is each live host's share.
	target map[string]int
	// room is how many partitions this host lacks for its share after the
	// plan: the number of free partitions it may take although the plan
	// gives them to another host that does not take them.
	room int
}

// unavailable marks a partition whose lease is held by a host that is not
// live: nobody can take it before the lease expires.
const unavailable = "\x00"

// makePlan balances the partitions over the live hosts toward an even
// share, ceil(P/H) or floor(P/H) each, moving as few partitions as it can.
//
// A partition counts for the host that claims it, else for its live holder.
// Hosts that already have the most partitions get the larger shares. Hosts
// above their share give up their highest-numbered partitions; free
// partitions and those go, lowest first, to the host furthest below its
// share (ties to the smaller id).
func makePlan(v *view) plan {
	pl := plan{stolen: map[int]bool{}, target: map[string]int{}}
	live := map[string]bool{}
	for _, h := range v.live {
		live[h] = true
	}
	owner := make([]string, v.partitions)
	pending := make([]bool, v.partitions)
	count := map[string]int{}
	for p := range v.partitions {
		switch {
		case v.claim[p] != "":
			owner[p], pending[p] = v.claim[p], true
		case v.state[p] == leases.Held && live[v.holder[p]]:
			owner[p] = v.holder[p]
		case v.state[p] == leases.Held:
			owner[p] = unavailable
		}
		count[owner[p]]++
		if v.state[p] == leases.Held && v.holder[p] == v.self && v.claim[p] != "" && v.claim[p] != v.self {
			pl.handOver = append(pl.handOver, p)
		}
	}
	if len(v.live) == 0 {
		return pl
	}

	// Shares: the hosts that have most get the extra partitions.
	ranked := slices.Clone(v.live)
	slices.SortFunc(ranked, func(a, b string) int {
		return cmp.Or(cmp.Compare(count[b], count[a]), cmp.Compare(a, b))
	})
	base, extra := v.partitions/len(v.live), v.partitions%len(v.live)
	for i, h := range ranked {
		pl.target[h] = base
		if i < extra {
			pl.target[h]++
		}
	}

	// The pool: free partitions, then the surplus of hosts above their share.
	var pool []int
	for p := range v.partitions {
		if owner[p] == "" {
			pool = append(pool, p)
		}
	}
	for _, h := range v.live {
		surplus := count[h] - pl.target[h]
		for p := v.partitions - 1; p >= 0 && surplus > 0; p-- {
			if owner[p] == h && !pending[p] {
				pool = append(pool, p)
				surplus--
			}
		}
	}

	claims := 0
	for p := range v.partitions {
		if v.claim[p] != v.self {
			continue
		}
		if v.state[p] == leases.Held {
			pl.intents = append(pl.intents, p)
			claims++
		} else {
			pl.acquire = append(pl.acquire, p)
			pl.stolen[p] = true
		}
	}
	for _, p := range pool {
		r := ""
		for _, h := range v.live {
			if count[h] < pl.target[h] && (r == "" || count[h] < count[r]) {
				r = h
			}
		}
		if r == "" {
			break
		}
		count[r]++
		if r != v.self {
			continue
		}
		switch {
		case owner[p] == "":
			pl.acquire = append(pl.acquire, p)
		case claims < maxIntents:
			pl.intents = append(pl.intents, p)
			claims++
		}
	}
	pl.room = max(0, pl.target[v.self]-count[v.self])
	slices.Sort(pl.acquire)
	slices.Sort(pl.intents)
	return pl
}
