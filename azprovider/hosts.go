package azprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/core"
)

// Hosts are rows of partition "hosts", keyed by the escaped host id, holding
// the HostInfo as JSON and LastSeen as a DateTime for the age filter.

// PublishHost records a live host; LastSeen defaults to now.
func (p *Provider) PublishHost(ctx context.Context, host core.HostInfo) error {
	if err := core.ValidateName("host id", host.ID); err != nil {
		return err
	}
	if host.LastSeen.IsZero() {
		host.LastSeen = p.now()
	}
	b, err := json.Marshal(host)
	if err != nil {
		return fmt.Errorf("%w: host %q: %v", core.ErrInvalidInput, host.ID, err)
	}
	if len(b) > maxInlineBytes {
		return fmt.Errorf("%w: host %q: its registrations take %d bytes; the limit is %d", core.ErrInvalidInput, host.ID, len(b), maxInlineBytes)
	}
	e := newEntity(hostsPK, escapeKey(host.ID))
	e.time("LastSeen", host.LastSeen)
	e.chunks("D", b)
	body, err := e.marshal()
	if err != nil {
		return fmt.Errorf("%w: host %q: %v", core.ErrInvalidInput, host.ID, err)
	}
	if _, err := p.table.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return p.storageErr("publish host", "table "+p.tableName+" hosts", err)
	}
	return nil
}

// ListHosts returns the hosts seen within maxAge (all when maxAge <= 0), by id.
func (p *Provider) ListHosts(ctx context.Context, maxAge time.Duration) ([]core.HostInfo, error) {
	filter := "PartitionKey eq " + odataString(hostsPK)
	if maxAge > 0 {
		filter += " and LastSeen ge datetime'" + storedTime(p.now().Add(-maxAge)).Format(time.RFC3339Nano) + "'"
	}
	rows, err := p.queryAll(ctx, filter, "")
	if err != nil {
		return nil, p.storageErr("list hosts", "table "+p.tableName+" hosts", err)
	}
	out := make([]core.HostInfo, 0, len(rows))
	for _, r := range rows {
		b, err := r.chunks("D")
		if err != nil {
			return nil, err
		}
		var h core.HostInfo
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("host row %s: %w", r.rowKey(), err)
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b core.HostInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
