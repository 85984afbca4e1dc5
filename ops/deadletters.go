package ops

import (
	"context"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
)

// ErrDeadLetterNotFound: no dead letter has that id. It is
// azprovider.ErrDeadLetterNotFound.
var ErrDeadLetterNotFound = azprovider.ErrDeadLetterNotFound

// DeadLetter reads one dead letter; ErrDeadLetterNotFound when there is none
// with that id.
func (h *Hub) DeadLetter(ctx context.Context, id string) (*core.DeadLetter, error) {
	return h.Provider.GetDeadLetter(ctx, id)
}

// ReplayDeadLetter sends a dead letter back to the queue it came from and
// removes it; ErrDeadLetterNotFound when there is none with that id.
func (h *Hub) ReplayDeadLetter(ctx context.Context, id string) error {
	return h.Provider.ReplayDeadLetter(ctx, id)
}

// DiscardDeadLetter deletes a dead letter; ErrDeadLetterNotFound when there
// is none with that id.
func (h *Hub) DiscardDeadLetter(ctx context.Context, id string) error {
	return h.Provider.DiscardDeadLetter(ctx, id)
}
