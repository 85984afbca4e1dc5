package dashboard

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

type partitionsData struct {
	Partitions []ops.PartitionInfo
	// Queues are the queues that are not a partition's control queue (the
	// work-item queue).
	Queues []ops.QueueInfo
	Hosts  []core.HostInfo
	// Totals over the partitions.
	Leased, Depth int
	Oldest        time.Duration
}

// partitions shows each partition's lease and control queue, the shared
// queues, and the live hosts with their registrations.
func (h *handler) partitions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ps, qs, err := h.hub.Partitions(ctx)
	if err != nil {
		h.failErr(w, r, "Read the partitions and queues", err)
		return
	}
	hosts, err := h.hub.Client.Hosts(ctx)
	if err != nil {
		h.failErr(w, r, "Read the live hosts", err)
		return
	}
	slices.SortFunc(hosts, func(a, b core.HostInfo) int { return strings.Compare(a.ID, b.ID) })
	d := partitionsData{Partitions: ps, Hosts: hosts}
	for _, q := range qs {
		if q.Partition < 0 {
			d.Queues = append(d.Queues, q)
		}
	}
	for _, p := range ps {
		if p.Owner != "" {
			d.Leased++
		}
		d.Depth += p.QueueDepth
		d.Oldest = max(d.Oldest, p.OldestMessageAge)
	}
	h.render(w, r, http.StatusOK, "partitions", "Partitions and hosts", "partitions", d)
}
