package memory

import (
	"fmt"
	"iter"
	"time"

	"github.com/azdurable/azdurable/core"
)

// workQueue is the queue field of the receipts of work items; control queues
// use their partition number.
const workQueue = -1

// queue is a FIFO of stored items with visibility times and locks: a control
// queue or the work-item queue. Items keep their place when they are locked,
// abandoned or re-delivered, so fetches always hand out the oldest visible
// items first. The caller holds the queue's lock.
type queue struct {
	entries []*entry // in enqueue order; removed ones stay until compaction
	index   map[uint64]*entry
	removed int
}

// entry is one stored item: a message of a control queue or a task of the
// work-item queue, kept as a private copy (nothing in one host needs their
// bytes), or the raw bytes a poison test injected in their place.
type entry struct {
	seq       uint64
	msg       *core.Message
	task      *core.ActivityTask
	raw       []byte
	visibleAt time.Time
	dequeues  int
	// gen changes whenever the item's lock changes hands (fetch, abandon); a
	// receipt is current while its gen equals the entry's.
	gen  uint64
	gone bool
}

// receipt is the lock handle of a fetched message or work item.
type receipt struct {
	queue int
	seq   uint64
	gen   uint64
}

func newQueue() *queue { return &queue{index: map[uint64]*entry{}} }

func (q *queue) len() int { return len(q.index) }

func (q *queue) push(e *entry) {
	q.entries = append(q.entries, e)
	q.index[e.seq] = e
}

func (q *queue) remove(e *entry) {
	if e.gone {
		return
	}
	e.gone = true
	delete(q.index, e.seq)
	q.removed++
	if q.removed > 64 && q.removed > len(q.entries)/2 {
		live := make([]*entry, 0, len(q.index))
		for _, x := range q.entries {
			if !x.gone {
				live = append(live, x)
			}
		}
		q.entries, q.removed = live, 0
	}
}

// live yields the entries in enqueue order, without copying them. The
// caller may remove entries while it walks them: compaction builds a new
// slice and leaves the one being walked as it was.
func (q *queue) live() iter.Seq[*entry] {
	entries := q.entries
	return func(yield func(*entry) bool) {
		for _, e := range entries {
			if !e.gone && !yield(e) {
				return
			}
		}
	}
}

// lock hands out a visible entry: it counts the delivery, makes the entry
// invisible until until and returns a fresh receipt.
func (q *queue) lock(e *entry, queueID int, until time.Time) receipt {
	e.dequeues++
	e.gen++
	e.visibleAt = until
	return receipt{queue: queueID, seq: e.seq, gen: e.gen}
}

// holder returns the entry a receipt locks, or nil when the entry is gone or
// was handed out again since (the receipt is stale).
func (q *queue) holder(r receipt) *entry {
	e := q.index[r.seq]
	if e == nil || e.gen != r.gen {
		return nil
	}
	return e
}

// receiptOf checks that a caller's receipt is one this provider issued for queueID.
func receiptOf(v any, queueID int, what string) (receipt, error) {
	r, ok := v.(receipt)
	if !ok {
		return receipt{}, fmt.Errorf("%w: %s has a receipt of type %T that the memory provider did not issue", core.ErrInvalidInput, what, v)
	}
	if r.queue != queueID {
		return receipt{}, fmt.Errorf("%w: %s has a receipt of %s, not of %s", core.ErrInvalidInput, what, queueName(r.queue), queueName(queueID))
	}
	return r, nil
}

func queueName(id int) string {
	if id == workQueue {
		return "the work-item queue"
	}
	return fmt.Sprintf("the control queue of partition %d", id)
}
