package azprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/core"
)

// Queue messages. A control message is the core.EncodeMessage JSON of one
// message, a work item the JSON of one ActivityTask. JSON escapes control
// characters, and the few characters XML cannot carry (U+FFFE, U+FFFF) are
// escaped too (xmlSafe), so the text travels unchanged through the queue
// service's XML without base64 (measured in TestAzuriteQueueTextRoundTrip).
// A message over maxQueueText goes to a blob and the queue carries an
// envelope naming it; so does a message delayed beyond the queue's 7-day
// visibility limit, which the fetch hides again until it is due (counting
// those dequeues in $hidden, so that they do not count as deliveries):
//
//	{"$ref":"m/<uuid>"}   {"$notBefore":"…","$msg":{…},"$hidden":2}

const (
	maxQueueText   = 48 << 10
	maxVisibility  = 7 * 24 * time.Hour
	maxDequeue     = 32
	messageTTL     = -1 // queue messages never expire
	envelopePrefix = `{"$`
)

type envelope struct {
	Ref       string          `json:"$ref,omitempty"`
	NotBefore time.Time       `json:"$notBefore,omitzero"`
	Msg       json.RawMessage `json:"$msg,omitempty"`
	// Hidden counts the dequeues that only hid the message again until
	// NotBefore; they are not deliveries, so they do not count as such.
	Hidden int `json:"$hidden,omitempty"`
	// Pack and Base: several messages in one (pack.go).
	Pack []json.RawMessage `json:"$pack,omitempty"`
	Base []int             `json:"$base,omitempty"`
}

// xmlSafe escapes, inside JSON text, the characters XML 1.0 cannot carry.
// They can only occur inside JSON strings, where \uFFFF means the same.
func xmlSafe(b []byte) []byte {
	if !bytes.Contains(b, []byte("\uFFFE")) && !bytes.Contains(b, []byte("\uFFFF")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\uFFFE"), []byte(`\ufffe`))
	return bytes.ReplaceAll(b, []byte("\uFFFF"), []byte(`\uffff`))
}

// queueText turns an encoded message into queue text, spilling it to a new
// blob (named by blobKind) when it is too large. It returns the blob's name.
func (p *Provider) queueText(ctx context.Context, body []byte, blobKind string, notBefore time.Time) (text, blob string, err error) {
	body = xmlSafe(body)
	var env envelope
	if len(body) > maxQueueText {
		blob = messageBlobName(blobKind)
		if err := p.putBlob(ctx, blob, body); err != nil {
			return "", "", err
		}
		env.Ref = blob
	} else if notBefore.IsZero() {
		return string(body), "", nil
	} else {
		env.Msg = body
	}
	env.NotBefore = notBefore
	b, err := json.Marshal(env)
	return string(b), blob, err
}

// openText reads queue text: the encoded body and the envelope around it
// (zero for plain text). A blob it names is read. For a pack the body is
// nil and env.Pack holds the messages.
func (p *Provider) openText(ctx context.Context, text string) ([]byte, envelope, error) {
	if len(text) < len(envelopePrefix) || text[:len(envelopePrefix)] != envelopePrefix {
		return []byte(text), envelope{}, nil
	}
	var env envelope
	if err := json.Unmarshal([]byte(text), &env); err != nil {
		return nil, env, err
	}
	if len(env.Pack) > 0 {
		return nil, env, nil
	}
	if env.Ref == "" {
		return env.Msg, env, nil
	}
	body, err := p.getBlob(ctx, env.Ref)
	return body, env, err
}

// receipt is the lock handle of a fetched queue message.
type receipt struct {
	queue     *azqueue.QueueClient
	queueName string
	partition int // -1 for the work-item queue
	id        string
	text      string // kept: an update of the visibility must resend it
	blob      string // the blob the text names, if any

	// A part of a pack: text is the part's message, and every operation on
	// the queue message goes through the pack (pack.go).
	pack *packState
	part int

	mu  sync.Mutex
	pop string
}

// queueMessage is the receipt of the queue message rc is part of: rc itself
// unless rc is a part of a pack.
func (rc *receipt) queueMessage() *receipt {
	if rc.pack != nil {
		return rc.pack.rc
	}
	return rc
}

func (r *receipt) popReceipt() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pop
}

func (r *receipt) setPop(pop string) {
	r.mu.Lock()
	r.pop = pop
	r.mu.Unlock()
}

// visibility converts a duration to the queue's whole seconds, within its limits.
func visibility(d time.Duration, minimum int32) int32 {
	s := math.Ceil(d.Seconds())
	return int32(min(max(s, float64(minimum)), maxVisibility.Seconds()))
}

// lostLock reports errors meaning that the message is gone or re-locked.
func lostLock(err error) bool {
	return isStatus(err, http.StatusNotFound) || isCode(err, codePopReceiptMismatch, codeMessageNotFound)
}

// SendMessages enqueues each message on its partition's control queue, in
// order within a partition (partitions in parallel). Messages never expire.
// Every message is checked and encoded before any is sent. Messages due now
// are packed with others for the same partition (pack.go); delayed ones go
// alone.
func (p *Provider) SendMessages(ctx context.Context, msgs []*core.Message) error {
	byPartition := make([][]*core.Message, p.n)
	var parts []int
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if err := core.ValidateInstanceID(m.InstanceID, 0); err != nil {
			return err
		}
		if m.Event != nil {
			if err := p.checkPayload("event data of message "+m.ID, m.Event.Data); err != nil {
				return err
			}
		}
		q := p.PartitionOf(m.InstanceID)
		if byPartition[q] == nil {
			parts = append(parts, q)
		}
		byPartition[q] = append(byPartition[q], m)
	}
	// Encode everything first: bad input sends nothing.
	now := p.now()
	type outgoing struct {
		partition int
		now       [][]byte        // due now, in order
		later     []*core.Message // delayed
		bodies    [][]byte        // of later
	}
	outs := make([]outgoing, len(parts))
	for i, q := range parts {
		o := &outs[i]
		o.partition = q
		for _, m := range byPartition[q] {
			b, err := encodeMessage(m)
			if err != nil {
				return err
			}
			b = xmlSafe(b)
			if m.VisibleAt.After(now) || p.opts.NoMessagePacking {
				o.later, o.bodies = append(o.later, m), append(o.bodies, b)
			} else {
				o.now = append(o.now, b)
			}
		}
	}
	return parallel(len(outs), maxParallel, func(i int) error {
		o := &outs[i]
		for k, m := range o.later {
			if err := p.sendAlone(ctx, o.partition, o.bodies[k], m.VisibleAt); err != nil {
				return err
			}
		}
		if len(o.now) == 0 {
			return nil
		}
		return p.sendPacked(ctx, o.partition, o.now)
	})
}

func encodeMessage(m *core.Message) ([]byte, error) {
	body, err := core.EncodeMessage(m)
	if err != nil {
		return nil, fmt.Errorf("%w: message %q to instance %q: %v", core.ErrInvalidInput, m.ID, m.InstanceID, err)
	}
	return body, nil
}

// sendAlone puts one encoded message in a queue message of its own,
// visible at visibleAt (zero or past: now), spilled to a blob when large.
func (p *Provider) sendAlone(ctx context.Context, partition int, body []byte, visibleAt time.Time) error {
	var delay time.Duration
	var notBefore time.Time
	if !visibleAt.IsZero() {
		delay = visibleAt.Sub(p.now())
		if delay > maxVisibility {
			notBefore = visibleAt
		}
	}
	text, blob, err := p.queueText(ctx, body, "m", notBefore)
	if err != nil {
		return err
	}
	if err := p.enqueue(ctx, p.control[partition], p.controlQueueName(partition), text, delay); err != nil {
		if blob != "" {
			p.deleteBlobs(ctx, []string{blob})
		}
		return err
	}
	return nil
}

func (p *Provider) enqueue(ctx context.Context, q *azqueue.QueueClient, name, text string, delay time.Duration) error {
	opts := &azqueue.EnqueueMessageOptions{TimeToLive: ptr(int32(messageTTL))}
	if delay > 0 {
		opts.VisibilityTimeout = ptr(visibility(delay, 0))
	}
	if _, err := q.EnqueueMessage(ctx, text, opts); err != nil {
		return p.storageErr("enqueue", "queue "+name, err)
	}
	return nil
}

// fetched is one dequeued message, opened.
type fetched struct {
	rc    *receipt
	body  []byte
	parts [][]byte // a pack's messages (body is nil)
	base  []int    // their earlier deliveries
	count int
	err   error // the message cannot be read: dead-letter it
}

// dequeue takes up to n messages off a queue, locked for lock, and opens
// them. Messages not due yet (beyond the 7-day limit) are hidden again.
func (p *Provider) dequeue(ctx context.Context, q *azqueue.QueueClient, name string, partition, n int, lock time.Duration) ([]*fetched, error) {
	resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{
		NumberOfMessages: ptr(int32(n)), VisibilityTimeout: ptr(visibility(lock, 1))})
	if err != nil {
		return nil, p.storageErr("dequeue", "queue "+name, err)
	}
	out := make([]*fetched, len(resp.Messages))
	err = parallel(len(resp.Messages), maxParallel, func(i int) error {
		dm := resp.Messages[i]
		f := &fetched{rc: &receipt{queue: q, queueName: name, partition: partition, id: deref(dm.MessageID), text: deref(dm.MessageText), pop: deref(dm.PopReceipt)}}
		if dm.DequeueCount != nil {
			f.count = int(*dm.DequeueCount)
		}
		out[i] = f
		body, env, err := p.openText(ctx, f.rc.text)
		f.rc.blob = env.Ref
		var se *core.StorageError
		switch {
		case err != nil && errors.As(err, &se) && se.Transient:
			return err // the blob could not be read now; the message comes back after the lock
		case err != nil:
			f.err = err
		case len(env.Pack) > 0:
			f.parts = make([][]byte, len(env.Pack))
			for i, b := range env.Pack {
				f.parts[i] = b
			}
			f.base = env.Base
		case !env.NotBefore.IsZero() && env.NotBefore.After(p.now()):
			// Not due yet (beyond the 7-day visibility limit): hide it again.
			env.Hidden++
			text, err := json.Marshal(env)
			if err != nil {
				return err
			}
			if _, err := q.UpdateMessage(ctx, f.rc.id, f.rc.popReceipt(), string(text),
				&azqueue.UpdateMessageOptions{VisibilityTimeout: ptr(visibility(env.NotBefore.Sub(p.now()), 1))}); err != nil && !lostLock(err) {
				return p.storageErr("hide message", "queue "+name, err)
			}
			out[i] = nil
		default:
			f.body = body
			f.count = max(f.count-env.Hidden, 1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, f := range out {
		if f != nil {
			kept = append(kept, f)
		}
	}
	return kept, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// FetchMessages takes up to max messages (at most 32, one dequeue) off the
// partition's control queue, locked for lock (whole seconds, at least 1).
// Messages that cannot be decoded are dead-lettered ("undecodable: …").
func (p *Provider) FetchMessages(ctx context.Context, partition, max int, lock time.Duration) ([]*core.Message, error) {
	if err := p.checkPartition(partition); err != nil {
		return nil, err
	}
	if max <= 0 {
		return []*core.Message{}, nil
	}
	lockUntil := time.Now().Add(lock)
	fs, err := p.dequeue(ctx, p.control[partition], p.controlQueueName(partition), partition, min(max, maxDequeue), lock)
	if err != nil {
		return nil, err
	}
	msgs := make([]*core.Message, 0, len(fs))
	var bad []*fetched
	for _, f := range fs {
		if f.err == nil && f.parts != nil {
			p.openPack(ctx, f, lockUntil, dlMessage, func(rc *receipt, count int, body []byte) error {
				m, err := core.DecodeMessage(body)
				if err == nil {
					m.DequeueCount, m.Receipt = count, rc
					msgs = append(msgs, m)
				}
				return err
			})
			continue
		}
		if f.err == nil {
			m, err := core.DecodeMessage(f.body)
			if err == nil {
				m.DequeueCount, m.Receipt = f.count, f.rc
				msgs = append(msgs, m)
				continue
			}
			f.err = err
		}
		bad = append(bad, f)
	}
	if len(bad) > 0 {
		// A dead letter that cannot be written now is tried again when the
		// message's lock expires; the good messages are returned regardless.
		_ = p.deadLetterFetched(ctx, bad)
	}
	return msgs, nil
}

// AbandonMessages makes fetched messages visible again after delay. A
// message whose lock is already lost is skipped.
func (p *Provider) AbandonMessages(ctx context.Context, partition int, msgs []*core.Message, delay time.Duration) error {
	return p.settleReceipts(ctx, receipts(msgs), true, delay, func(rc *receipt) error {
		return p.release(ctx, rc, delay)
	})
}

// release sets a fetched message's visibility to delay; a lost lock is not
// an error.
func (p *Provider) release(ctx context.Context, rc *receipt, delay time.Duration) error {
	if rc.pack != nil {
		_, err := p.settlePack(ctx, rc.pack, []int{rc.part}, true, delay)
		return err
	}
	_, err := p.setVisibility(ctx, rc, delay, 0, "abandon message")
	return err
}

// DeleteMessages deletes fetched messages, and then the blobs they name. A
// message already gone, or locked again by another fetch, is skipped.
func (p *Provider) DeleteMessages(ctx context.Context, partition int, msgs []*core.Message) error {
	return p.settleReceipts(ctx, receipts(msgs), false, 0, func(rc *receipt) error {
		return p.deleteMessage(ctx, rc, true)
	})
}

func (p *Provider) deleteMessage(ctx context.Context, rc *receipt, withBlob bool) error {
	if rc.pack != nil {
		_, err := p.settlePack(ctx, rc.pack, []int{rc.part}, false, 0)
		return err
	}
	_, err := rc.queue.DeleteMessage(ctx, rc.id, rc.popReceipt(), nil)
	switch {
	case err == nil:
		if withBlob && rc.blob != "" {
			p.deleteBlobs(ctx, []string{rc.blob})
		}
		return nil
	case lostLock(err):
		return nil
	default:
		return p.storageErr("delete message", "queue "+rc.queueName, err)
	}
}

func receipts(msgs []*core.Message) []*receipt {
	var out []*receipt
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if rc, ok := m.Receipt.(*receipt); ok && rc != nil {
			out = append(out, rc)
		}
	}
	return out
}

// deadLetterFetched dead-letters messages that could not be opened or decoded.
func (p *Provider) deadLetterFetched(ctx context.Context, fs []*fetched) error {
	return parallel(len(fs), maxParallel, func(i int) error {
		f := fs[i]
		kind := dlMessage
		if f.rc.partition < 0 {
			kind = dlActivity
		}
		dl := &deadLetterRecord{kind: kind, partition: f.rc.partition, reason: "undecodable: " + f.err.Error(),
			dequeueCount: f.count, text: f.rc.text, blob: f.rc.blob, undecodable: true}
		if err := p.writeDeadLetter(ctx, dl); err != nil {
			return err
		}
		return p.deleteMessage(ctx, f.rc, false)
	})
}
