package memory

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
)

// PublishHost stores a copy of the host record under its id, replacing the
// previous one, with LastSeen set to the provider's time.
func (p *Provider) PublishHost(ctx context.Context, host core.HostInfo) error {
	if err := p.enter(ctx, mPublishHost); err != nil {
		return err
	}
	if err := core.ValidateName("host id", host.ID); err != nil {
		return err
	}
	h := copyHost(&host)
	h.LastSeen = p.now()
	p.hostsMu.Lock()
	defer p.hostsMu.Unlock()
	p.hosts[h.ID] = h
	return nil
}

// ListHosts returns copies of the hosts seen within maxAge (all hosts when
// maxAge is not positive), sorted by id.
func (p *Provider) ListHosts(ctx context.Context, maxAge time.Duration) ([]core.HostInfo, error) {
	if err := p.enter(ctx, mListHosts); err != nil {
		return nil, err
	}
	now := p.now()
	p.hostsMu.Lock()
	out := make([]core.HostInfo, 0, len(p.hosts))
	for _, h := range p.hosts {
		if maxAge <= 0 || now.Sub(h.LastSeen) <= maxAge {
			out = append(out, *copyHost(h))
		}
	}
	p.hostsMu.Unlock()
	slices.SortFunc(out, func(a, b core.HostInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
