package azprovider

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// Packing: several control messages for one partition travel in one queue
// message, so that a client starting a thousand instances, or an episode
// batch sending to another partition, pays a few queue puts, gets and
// deletes instead of a thousand of each. On Azurite a message's put, get and
// delete cost several table inserts' worth of CPU each (bench -workload
// opcost), so this is where the storage cost of a hello orchestration went.
//
// Sending: each partition has one sender. A caller that finds it idle puts
// its own messages at once, under its own context; callers that come while
// a put is in flight wait, and the next round puts everything they brought,
// as packs of at most maxPackParts messages and about maxQueueText bytes,
// in order. A lone message waits for nothing (no timer, no added latency)
// and goes as plain text, as it did before packing. Delayed messages, and
// messages too large to share a queue message, go alone.
//
// Receiving: a pack opens into its messages, each with a receipt naming the
// pack and its place in it. They settle one by one, as if each had a queue
// message of its own, and the queue message always holds exactly the parts
// without an outcome:
//   - when the last parts are consumed (deleted or dead-lettered), the queue
//     message is deleted;
//   - when the last parts are abandoned, it is released after the delay;
//   - otherwise it is rewritten to hold the parts left, keeping its lock;
//     parts abandoned meanwhile are first put again as a pack of their own
//     that carries their delivery counts ($base): put before rewrite, so a
//     crash between leaves a duplicate, which receivers drop, never a loss.
//
// A pack whose lock expires comes back with the parts that had no outcome.
// The delivery count of a part is the queue message's dequeue count plus its
// $base, so poison detection works per message.
//
//	{"$pack":[{…},{…}],"$base":[0,3]}

const maxPackParts = 32

// lockMargin: a pack whose lock ends sooner than this is locked again before
// copies of its parts are put, so that a stale receipt puts none.
const lockMargin = 5 * time.Second

// packText encodes messages (already xmlSafe) as one pack.
func packText(bodies [][]byte, base []int) string {
	n := len(`{"$pack":[]}`) + len(bodies)
	for _, b := range bodies {
		n += len(b)
	}
	var buf bytes.Buffer
	buf.Grow(n + 16 + 4*len(base))
	buf.WriteString(`{"$pack":[`)
	for i, b := range bodies {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	if base != nil {
		buf.WriteString(`,"$base":[`)
		for i, c := range base {
			if i > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprint(&buf, c)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return buf.String()
}

// packState is one fetched pack: the queue message and its parts. The
// queue message always holds exactly the parts that have no outcome yet.
type packState struct {
	rc     *receipt // the queue message; its text is kept current
	bodies [][]byte // each part's encoded message
	counts []int    // each part's delivery count
	base   []int    // each part's deliveries before this queue message ($base)

	mu        sync.Mutex // held across the I/O that settles parts
	settled   []bool
	left      int
	lockUntil time.Time
	gone      bool // the lock was lost: the queue message is someone else's
}

func newPackState(rc *receipt, bodies [][]byte, counts, base []int, lockUntil time.Time) *packState {
	return &packState{rc: rc, bodies: bodies, counts: counts, base: base, settled: make([]bool, len(bodies)),
		left: len(bodies), lockUntil: lockUntil}
}

// partReceipt is the receipt of part i: it carries the part's own text (a
// dead letter of it holds that message alone) and points at the pack.
func (ps *packState) partReceipt(i int) *receipt {
	return &receipt{queue: ps.rc.queue, queueName: ps.rc.queueName, partition: ps.rc.partition,
		id: ps.rc.id, text: string(ps.bodies[i]), pack: ps, part: i}
}

// unsettled returns the parts among parts that have no outcome yet.
func (ps *packState) unsettled(parts []int) []int {
	var out []int
	for _, i := range parts {
		if !ps.settled[i] && !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

// textWithout is the pack's text without the parts in drop (and without
// those settled before).
func (ps *packState) textWithout(drop []int) string {
	var bodies [][]byte
	var base []int
	carried := false
	for i, b := range ps.bodies {
		if ps.settled[i] || slices.Contains(drop, i) {
			continue
		}
		bodies = append(bodies, b)
		base = append(base, ps.base[i])
		carried = carried || ps.base[i] != 0
	}
	if !carried {
		base = nil
	}
	return packText(bodies, base)
}

// settlePack gives parts of one pack their outcome: consumed (deleted or
// dead-lettered), or abandoned to be delivered again after delay. Then the
// queue message matches what is left: deleted when nothing is, released
// after delay when only the parts abandoned now are, else rewritten to hold
// the parts left, keeping its lock, after the parts abandoned now were put
// again as a pack of their own that carries their delivery counts. Parts
// that already have an outcome, or whose pack was fetched again by someone
// else, are skipped: applied is false then. On an error the parts keep no
// outcome: they come back when the lock expires.
func (p *Provider) settlePack(ctx context.Context, ps *packState, parts []int, abandon bool, delay time.Duration) (applied bool, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return p.settlePackLocked(ctx, ps, parts, abandon, delay)
}

func (p *Provider) settlePackLocked(ctx context.Context, ps *packState, parts []int, abandon bool, delay time.Duration) (bool, error) {
	parts = ps.unsettled(parts)
	if len(parts) == 0 || ps.gone {
		return false, nil
	}
	rc := ps.rc
	var err error
	switch {
	case ps.left == len(parts) && !abandon:
		_, err = rc.queue.DeleteMessage(ctx, rc.id, rc.popReceipt(), nil)
		if err != nil && !lostLock(err) {
			err = p.storageErr("delete message", "queue "+rc.queueName, err)
		}
	case ps.left == len(parts):
		var lost bool
		lost, err = p.setVisibility(ctx, rc, delay, 0, "abandon message")
		if lost {
			ps.gone = true
		}
	default:
		if abandon && time.Until(ps.lockUntil) < lockMargin {
			// The lock may have expired and the pack been fetched again:
			// prove it held before putting copies of its parts.
			if held, err := p.lockPack(ctx, ps, lockMargin, "lock pack"); !held {
				return false, err
			}
		}
		if abandon {
			bodies := make([][]byte, len(parts))
			base := make([]int, len(parts))
			for k, i := range parts {
				bodies[k], base[k] = ps.bodies[i], ps.counts[i]
			}
			if err := p.enqueue(ctx, rc.queue, rc.queueName, packText(bodies, base), delay); err != nil {
				return false, err
			}
		}
		text := ps.textWithout(parts)
		var resp azqueue.UpdateMessageResponse
		resp, err = rc.queue.UpdateMessage(ctx, rc.id, rc.popReceipt(), text,
			&azqueue.UpdateMessageOptions{VisibilityTimeout: ptr(visibility(time.Until(ps.lockUntil), 0))})
		switch {
		case err == nil:
			rc.setPop(deref(resp.PopReceipt))
			rc.text = text
		case lostLock(err):
		default:
			err = p.storageErr("rewrite pack", "queue "+rc.queueName, err)
		}
	}
	if err != nil && lostLock(err) {
		ps.gone, err = true, nil
	}
	if err != nil {
		return false, err
	}
	for _, i := range parts {
		ps.settled[i] = true
	}
	ps.left -= len(parts)
	return !ps.gone, nil
}

// settleReceipts settles fetched messages: those not in a pack one by one
// with single, the parts of a pack together (one request per pack).
func (p *Provider) settleReceipts(ctx context.Context, rcs []*receipt, abandon bool, delay time.Duration, single func(*receipt) error) error {
	var singles []*receipt
	var packs []*packState
	parts := map[*packState][]int{}
	for _, rc := range rcs {
		if rc.pack == nil {
			singles = append(singles, rc)
			continue
		}
		if _, ok := parts[rc.pack]; !ok {
			packs = append(packs, rc.pack)
		}
		parts[rc.pack] = append(parts[rc.pack], rc.part)
	}
	return parallel(len(singles)+len(packs), maxParallel, func(i int) error {
		if i < len(singles) {
			return single(singles[i])
		}
		ps := packs[i-len(singles)]
		_, err := p.settlePack(ctx, ps, parts[ps], abandon, delay)
		return err
	})
}

// deadLetterParts dead-letters parts of one pack, each as a message of its
// own, while the pack's lock is still held; parts already settled, or of a
// pack fetched again since, are skipped (applied is false then).
func (p *Provider) deadLetterParts(ctx context.Context, ps *packState, parts []int, dl func(i int) *deadLetterRecord) (applied bool, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	parts = ps.unsettled(parts)
	if len(parts) == 0 || ps.gone {
		return false, nil
	}
	// Extending the lock proves it current and keeps the pack locked while
	// the dead letters are written.
	hold := max(deadLetterLock, time.Until(ps.lockUntil)) // never shorter than the lock the rest has
	if held, err := p.lockPack(ctx, ps, hold, "lock for dead-lettering"); !held {
		return false, err
	}
	for _, i := range parts {
		if err := p.writeDeadLetter(ctx, dl(i)); err != nil {
			return false, err
		}
	}
	// The dead letters stand even if the delete fails: a duplicate is safe,
	// a lost message is not.
	return p.settlePackLocked(ctx, ps, parts, false, 0)
}

// releaseParts gives back parts that were fetched but not handed out, while
// others of the pack were: copies of them become visible at once, and this
// fetch does not count as one of their deliveries. Parts with an outcome, or
// of a pack fetched again since, are skipped.
func (p *Provider) releaseParts(ctx context.Context, ps *packState, parts []int) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	parts = ps.unsettled(parts)
	if len(parts) == 0 || ps.gone {
		return nil
	}
	for _, i := range parts {
		ps.base[i]--
		ps.counts[i]--
	}
	_, err := p.settlePackLocked(ctx, ps, parts, true, 0)
	return err
}

// renewPack extends the lock of the pack that holds part; lost when the
// part has an outcome or the pack was fetched again.
func (p *Provider) renewPack(ctx context.Context, ps *packState, part int, lock time.Duration) (lost bool, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.gone || ps.settled[part] {
		return true, nil
	}
	held, err := p.lockPack(ctx, ps, lock, "renew work item")
	return !held && err == nil, err
}

// lockPack sets the pack's lock to d from now; held is false on an error
// and when the pack was fetched again by someone else (it is gone then).
// The caller holds ps.mu.
func (p *Provider) lockPack(ctx context.Context, ps *packState, d time.Duration, op string) (held bool, err error) {
	lost, err := p.setVisibility(ctx, ps.rc, d, 1, op)
	switch {
	case err != nil:
		return false, err
	case lost:
		ps.gone = true
		return false, nil
	}
	ps.lockUntil = time.Now().Add(d)
	return true, nil
}

// sender gathers the messages for one partition's control queue. Up to
// senderLanes rounds are sent at once, so that one slow or hung put (a
// blackholed connection waits out its try timeout) does not hold back every
// other message for the partition; beyond that, messages gather for the
// next round.
type sender struct {
	mu       sync.Mutex
	pending  []*sendReq
	inflight int // rounds being sent
}

const senderLanes = 4

// sendReq is one call's share of a partition's messages.
type sendReq struct {
	ctx    context.Context
	bodies [][]byte // encoded and xmlSafe, in order
	done   chan error
}

// sendPacked sends bodies to the partition's control queue, packed. When a
// lane is free and nobody waits, the caller sends its own at once, under its
// own context; otherwise it waits for the next round, which carries
// everything that gathered meanwhile.
func (p *Provider) sendPacked(ctx context.Context, partition int, bodies [][]byte) error {
	s := &p.senders[partition]
	s.mu.Lock()
	if s.inflight < senderLanes && len(s.pending) == 0 {
		s.inflight++
		s.mu.Unlock()
		err := p.sendRound(ctx, partition, []*sendReq{{ctx: ctx, bodies: bodies}})[0]
		p.nextRound(partition)
		return err
	}
	req := &sendReq{ctx: ctx, bodies: bodies, done: make(chan error, 1)}
	s.pending = append(s.pending, req)
	s.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The round may still carry them (it skips callers gone before it starts).
		return ctx.Err()
	}
}

// nextRound ends a round: what gathered meanwhile goes to a goroutine that
// sends it, round after round, in the lane that ends.
func (p *Provider) nextRound(partition int) {
	s := &p.senders[partition]
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		s.inflight--
		return
	}
	go p.runSender(partition)
}

func (p *Provider) runSender(partition int) {
	s := &p.senders[partition]
	for {
		s.mu.Lock()
		reqs := s.pending
		s.pending = nil
		if len(reqs) == 0 {
			s.inflight--
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		// The round serves several callers: it stops when all have given up.
		ctx, cancel := context.WithCancel(context.Background())
		var left atomic.Int32
		left.Store(int32(len(reqs)))
		stops := make([]func() bool, len(reqs))
		for i, r := range reqs {
			stops[i] = context.AfterFunc(r.ctx, func() {
				if left.Add(-1) == 0 {
					cancel()
				}
			})
		}
		errs := p.sendRound(ctx, partition, reqs)
		for i, r := range reqs {
			stops[i]()
			r.done <- errs[i]
		}
		cancel()
	}
}

// sendRound puts the bodies of reqs as packs of at most maxPackParts
// messages and about maxQueueText bytes, in order, and returns each
// request's outcome: the first error of a put that carried its messages.
// After a failed put a request's later messages are not sent (the caller
// sends them all again), and a request whose caller has given up is not
// sent at all.
func (p *Provider) sendRound(ctx context.Context, partition int, reqs []*sendReq) []error {
	errs := make([]error, len(reqs))
	var bodies [][]byte
	var owners []int // request index of each body
	for ri, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			errs[ri] = err
			continue
		}
		for _, b := range r.bodies {
			bodies, owners = append(bodies, b), append(owners, ri)
		}
	}
	for _, rg := range packRanges(bodies) {
		// A request whose earlier put failed sends nothing more.
		var group [][]byte
		var from []int
		for i := rg[0]; i < rg[1]; i++ {
			if errs[owners[i]] == nil {
				group, from = append(group, bodies[i]), append(from, owners[i])
			}
		}
		var err error
		switch len(group) {
		case 0:
			continue
		case 1:
			err = p.sendAlone(ctx, partition, group[0], time.Time{})
		default:
			err = p.enqueue(ctx, p.control[partition], p.controlQueueName(partition), packText(group, nil), 0)
		}
		if err != nil {
			for _, o := range from {
				if errs[o] == nil {
					errs[o] = err
				}
			}
		}
	}
	return errs
}

// openPack opens a fetched pack: open is called with each part's receipt,
// delivery count and body. A part that open cannot decode is dead-lettered
// alone, as kind (dlMessage or dlActivity).
func (p *Provider) openPack(ctx context.Context, f *fetched, lockUntil time.Time, kind string, open func(rc *receipt, count int, body []byte) error) {
	counts := make([]int, len(f.parts))
	base := make([]int, len(f.parts))
	for i := range counts {
		if i < len(f.base) {
			base[i] = f.base[i] // negative for a part given back unrun (releaseParts)
		}
		counts[i] = max(f.count+base[i], 1)
	}
	ps := newPackState(f.rc, f.parts, counts, base, lockUntil)
	var bad []*fetched
	for i, body := range f.parts {
		rc := ps.partReceipt(i)
		if err := open(rc, counts[i], body); err != nil {
			bad = append(bad, &fetched{rc: rc, count: counts[i], err: err})
		}
	}
	if len(bad) > 0 {
		// Not written now: the pack comes back when its lock expires.
		_, _ = p.deadLetterParts(ctx, ps, partsOf(bad), func(i int) *deadLetterRecord {
			f := bad[slices.IndexFunc(bad, func(f *fetched) bool { return f.rc.part == i })]
			return &deadLetterRecord{kind: kind, partition: f.rc.partition, reason: "undecodable: " + f.err.Error(),
				dequeueCount: f.count, text: f.rc.text, undecodable: true}
		})
	}
}

func partsOf(fs []*fetched) []int {
	out := make([]int, len(fs))
	for i, f := range fs {
		out[i] = f.rc.part
	}
	return out
}

// packRanges splits encoded bodies, in order, into the runs [from, to) that
// share a queue message: at most maxPackParts and about maxQueueText bytes
// each; a body over half of that goes alone.
func packRanges(bodies [][]byte) [][2]int {
	var out [][2]int
	from, size := 0, 0
	for i, b := range bodies {
		alone := len(b) > maxQueueText/2
		if i > from && (alone || i-from == maxPackParts || size+len(b)+1 > maxQueueText-64) {
			out = append(out, [2]int{from, i})
			from, size = i, 0
		}
		size += len(b) + 1
		if alone {
			out = append(out, [2]int{i, i + 1})
			from, size = i+1, 0
		}
	}
	if from < len(bodies) {
		out = append(out, [2]int{from, len(bodies)})
	}
	return out
}
