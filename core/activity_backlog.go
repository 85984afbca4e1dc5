package core

import (
	clist "container/list"
	"sync"
)

// activityBacklog holds activities of the partitions this host owns that
// wait for a free activity slot, in the order they were dispatched.
//
// Waiting here instead of going to the shared work-item queue saves three
// queue operations per activity (put, get, delete), and keeps the results
// on the owner, where they are group-committed. It is safe because every
// activity in it was dispatched by a committed episode (or recovered from
// the partition's pending activities): its A| row is durable. So the
// backlog may forget a partition's activities at any time, as it does when
// the partition is released: the next owner re-dispatches them from their
// rows.
//
// Invariant: while the backlog is not empty, no slot is free. A slot is
// released only through releaseActivitySlot, which hands it to the next
// waiting activity first, and an activity is queued only when no slot is
// free; both hold mu. A consequence: the work-item poller gets a slot only
// when the backlog is empty, so this host's own activities come before
// work items (which every host serves).
type activityBacklog struct {
	mu    sync.Mutex
	limit int                            // most activities waiting; 0: none wait
	queue clist.List                     // of *queuedActivity, oldest first
	index map[activityKey]*clist.Element // the same elements, for cancellation
}

type queuedActivity struct {
	partition int
	task      *ActivityTask
}

func newActivityBacklog(limit int) *activityBacklog {
	b := &activityBacklog{limit: max(limit, 0), index: map[activityKey]*clist.Element{}}
	b.queue.Init()
	return b
}

func keyOf(t *ActivityTask) activityKey { return activityKey{t.InstanceID, t.ExecutionID, t.TaskID} }

// len is the number of waiting activities.
func (b *activityBacklog) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queue.Len()
}

// push queues an activity; the caller holds mu and has checked the limit.
func (b *activityBacklog) push(p int, t *ActivityTask) {
	k := keyOf(t)
	if b.index[k] != nil {
		return // dispatched twice (a commit read back after an error): it waits once
	}
	b.index[k] = b.queue.PushBack(&queuedActivity{partition: p, task: t})
}

// pop takes the oldest waiting activity; the caller holds mu.
func (b *activityBacklog) pop() *queuedActivity {
	e := b.queue.Front()
	if e == nil {
		return nil
	}
	q := b.queue.Remove(e).(*queuedActivity)
	delete(b.index, keyOf(q.task))
	return q
}

// remove drops a waiting activity; false when it does not wait here.
func (b *activityBacklog) remove(t *ActivityTask) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := keyOf(t)
	e := b.index[k]
	if e == nil {
		return false
	}
	b.queue.Remove(e)
	delete(b.index, k)
	return true
}

// dropPartition forgets the waiting activities of partition p and returns
// how many there were; the caller holds mu.
func (b *activityBacklog) dropPartition(p int) int {
	n := 0
	for e := b.queue.Front(); e != nil; {
		next := e.Next()
		if q := e.Value.(*queuedActivity); q.partition == p {
			b.queue.Remove(e)
			delete(b.index, keyOf(q.task))
			n++
		}
		e = next
	}
	return n
}

// startOrQueue runs an activity of w's partition in a free slot, or queues
// it until one frees. It returns false, doing nothing, when no slot is free
// and the backlog is full: the caller offloads the activity then. An
// activity dispatched while the partition stops is neither run nor queued:
// its result could no longer be committed here, and the next owner
// re-dispatches it.
func (r *Runtime) startOrQueue(w *partitionWorker, t *ActivityTask) bool {
	b := r.backlog
	b.mu.Lock()
	if w.stopping() {
		b.mu.Unlock()
		return true
	}
	if b.queue.Len() == 0 && r.tryActivitySlot() {
		b.mu.Unlock()
		r.runLocal(w.p, t)
		return true
	}
	if b.queue.Len() >= b.limit {
		b.mu.Unlock()
		return false
	}
	b.push(w.p, t)
	b.mu.Unlock()
	return true
}

// dropQueued forgets the waiting activities of a partition that stops.
// The caller has closed the partition's stopCh, so startOrQueue queues no
// more of them.
func (r *Runtime) dropQueued(p int) {
	b := r.backlog
	b.mu.Lock()
	n := b.dropPartition(p)
	b.mu.Unlock()
	if n > 0 {
		r.log.Debug().Int("partition", p).Int("activities", n).Msg("dropped waiting activities; the next owner re-dispatches them")
	}
}
