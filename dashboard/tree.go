package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

// Bounds of a tree: a runaway recursion must not turn one page view into
// thousands of storage reads.
const (
	maxTreeDepth = 32
	maxTreeNodes = 500
)

// treeNode is an instance in a parent/child tree.
type treeNode struct {
	ID string
	// State is nil when the instance does not exist (not started yet, or purged).
	State *core.InstanceState
	// Detached: started independently by its parent rather than awaited.
	Detached bool
	// Current is the instance the tree was asked for.
	Current  bool
	Children []*treeNode
}

type treeData struct {
	ID   string
	Root *treeNode
	// ParentMissing names a parent that could not be read (purged).
	ParentMissing string
	// Truncated: the tree has more nodes or levels than are shown.
	Truncated bool
}

// tree shows the family of an instance: from its root (following parent
// references up) down through the sub-orchestrations and detached starts in
// each history.
func (h *handler) tree(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	ctx := r.Context()
	st, err := h.hub.Client.GetInstance(ctx, id, false)
	if err != nil {
		h.failErr(w, r, fmt.Sprintf("Instance %q", id), err)
		return
	}
	d := treeData{ID: id}
	for depth := 0; st.Parent != nil; depth++ {
		if depth == maxTreeDepth {
			d.Truncated = true
			break
		}
		parent, err := h.hub.Client.GetInstance(ctx, st.Parent.InstanceID, false)
		if errors.Is(err, core.ErrInstanceNotFound) {
			d.ParentMissing = st.Parent.InstanceID
			break
		}
		if err != nil {
			h.failErr(w, r, fmt.Sprintf("Parent %q of instance %q", st.Parent.InstanceID, st.InstanceID), err)
			return
		}
		st = parent
	}
	b := &treeBuilder{h: h, current: id, budget: maxTreeNodes}
	d.Root = &treeNode{ID: st.InstanceID, State: st}
	if err := b.grow(ctx, d.Root, 0); err != nil {
		h.failErr(w, r, fmt.Sprintf("Tree of instance %q", id), err)
		return
	}
	d.Truncated = d.Truncated || b.truncated
	h.render(w, r, http.StatusOK, "tree", "Tree of "+id, "instances", d)
}

type treeBuilder struct {
	h         *handler
	current   string
	budget    int
	truncated bool
}

// grow adds n's children, read from n's history, and theirs in turn.
func (b *treeBuilder) grow(ctx context.Context, n *treeNode, depth int) error {
	n.Current = n.ID == b.current
	b.budget--
	if n.State == nil || n.Detached {
		return nil
	}
	if depth == maxTreeDepth {
		b.truncated = true
		return nil
	}
	hist, err := b.h.hub.Client.History(ctx, n.ID)
	if err != nil {
		return err
	}
	for _, s := range ops.Timeline(hist) {
		if s.ChildID == "" || (s.Kind != ops.KindSubOrchestration && s.Kind != ops.KindDetached) {
			continue
		}
		if b.budget <= 0 {
			b.truncated = true
			return nil
		}
		c := &treeNode{ID: s.ChildID, Detached: s.Kind == ops.KindDetached}
		st, err := b.h.hub.Client.GetInstance(ctx, s.ChildID, false)
		switch {
		case err == nil:
			c.State = st
		case !errors.Is(err, core.ErrInstanceNotFound):
			return err
		}
		n.Children = append(n.Children, c)
		if err := b.grow(ctx, c, depth+1); err != nil {
			return err
		}
	}
	return nil
}
