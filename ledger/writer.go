package ledger

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
)

// A request is one call queued to the writer. op does the work against the
// batch; done is closed once the batch holding it is durable (or refused).
type request struct {
	op   op
	err  error
	done chan struct{}
}

// An op is one write. apply checks everything first and writes only if the
// whole op succeeds, so a failed op leaves nothing in the batch.
type op interface {
	apply(b *batch) error
}

// writer is the state owned by the writer goroutine: the working counters,
// idempotency records, the expiry queue and the string intern table.
type writer struct {
	l        *Ledger
	ctr      counters // as of the last durable batch
	idem     map[string]idemRecord
	idemFIFO []idemEntry // in order of creation, for pruning
	expiry   expiryHeap
	strings  map[string]string
	scratch  []byte
	batch    *batch
}

type idemEntry struct {
	key     string
	created time.Time
}

func (w *writer) init(l *Ledger, ctr counters) {
	w.l = l
	w.ctr = ctr
	w.idem = make(map[string]idemRecord)
	w.strings = make(map[string]string)
	w.batch = &batch{
		l:       l,
		dirty:   make(map[holdings.Key]dirtyHolding),
		added:   make(map[uint64]*commission.Commission),
		removed: make(map[uint64]*commission.Commission),
		idem:    make(map[string]idemRecord),
	}
}

// intern returns a shared copy of s: holdings repeat a few names many times.
func (w *writer) intern(s []byte) string {
	if v, ok := w.strings[string(s)]; ok {
		return v
	}
	v := string(s)
	w.strings[v] = v
	return v
}

func (w *writer) internKey(k holdings.Key) holdings.Key {
	if v, ok := w.strings[k.Resource]; ok {
		k.Resource = v
	} else {
		w.strings[k.Resource] = k.Resource
	}
	if !k.Source.IsNull() {
		n := k.Source.Name()
		if v, ok := w.strings[n]; ok {
			k.Source = holdings.SourceOf(v)
		} else {
			w.strings[n] = n
		}
	}
	return k
}

func (w *writer) rememberIdem(key string, r idemRecord) {
	w.idem[key] = r
	w.idemFIFO = append(w.idemFIFO, idemEntry{key: key, created: r.Created})
}

func (w *writer) scheduleExpiry(c *commission.Commission) {
	if !c.Deadline.IsZero() {
		heap.Push(&w.expiry, expiryItem{deadline: c.Deadline, serial: c.Serial})
	}
}

// run is the writer goroutine: it takes every waiting request (up to
// MaxBatch), applies them to one batch, commits it with one synced write,
// publishes the new state and answers.
func (l *Ledger) run() {
	defer close(l.done)
	w := &l.w
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	reqs := make([]*request, 0, l.opts.MaxBatch)
	l.expireDue(&reqs) // commissions whose deadline passed while closed
	for {
		if len(reqs) == 0 {
			w.resetTimer(timer)
			select {
			case r := <-l.reqs:
				reqs = append(reqs, r)
			case <-timer.C:
				l.expireDue(&reqs)
				if len(reqs) == 0 {
					continue
				}
			case <-l.quit:
				l.drain()
				return
			}
		}
	fill:
		for len(reqs) < l.opts.MaxBatch {
			select {
			case r := <-l.reqs:
				reqs = append(reqs, r)
			default:
				break fill
			}
		}
		l.commit(reqs)
		clear(reqs)
		reqs = reqs[:0]
	}
}

// drain answers everything still queued with ErrClosed.
func (l *Ledger) drain() {
	for {
		select {
		case r := <-l.reqs:
			r.err = ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

func (w *writer) resetTimer(t *time.Timer) {
	t.Stop()
	if len(w.expiry) == 0 {
		return
	}
	d := w.expiry[0].deadline.Sub(w.l.opts.Now())
	if d < 0 {
		d = 0
	}
	t.Reset(d)
}

// expireDue queues an expiry op if a deadline has passed.
func (l *Ledger) expireDue(reqs *[]*request) {
	w := &l.w
	if len(w.expiry) > 0 && !w.expiry[0].deadline.After(l.opts.Now()) {
		*reqs = append(*reqs, &request{op: &expireOp{}, done: make(chan struct{})})
	}
}

// commit applies reqs to one batch, makes it durable and publishes it.
func (l *Ledger) commit(reqs []*request) {
	w := &l.w
	if err := l.checkSpace(); err != nil {
		for _, r := range reqs {
			r.err = err
			close(r.done)
		}
		return
	}
	b := w.batch
	b.reset(l.db.NewBatch(), w.ctr, l.opts.Now())
	w.pruneIdem(b)
	for _, r := range reqs {
		r.err = r.op.apply(b)
	}
	if b.ctr != w.ctr {
		b.buf = appendCounters(b.buf[:0], b.ctr)
		b.pb.Set(keyMetaState, b.buf, nil)
	}
	if !b.pb.Empty() {
		if err := b.pb.Commit(pebble.Sync); err != nil {
			// Pebble exits the process on a failed WAL write; any other
			// failure (a closed database) leaves memory as it was.
			l.log.Error().Err(err).Int("requests", len(reqs)).Msg("batch commit failed")
			err = fmt.Errorf("ledger: commit: %w", err)
			for _, r := range reqs {
				if r.err == nil {
					r.err = err
				}
				close(r.done)
			}
			_ = b.pb.Close()
			b.pb = nil
			return
		}
	}
	_ = b.pb.Close()
	b.pb = nil
	l.publish(b)
	for _, r := range reqs {
		close(r.done)
	}
}

func (l *Ledger) checkSpace() error {
	if l.opts.NoFreeSpaceCheck {
		return nil
	}
	free, err := l.opts.DiskFree()
	if err != nil || free >= l.opts.MinFreeBytes {
		return nil
	}
	return ErrNoSpace
}

// publish makes a committed batch visible to readers.
func (l *Ledger) publish(b *batch) {
	w := &l.w
	l.mu.Lock()
	for k, d := range b.dirty {
		if d.deleted {
			l.table.delete(k)
		} else {
			l.table.set(k, d.value)
		}
	}
	for _, c := range b.removed {
		l.removePending(c)
	}
	for _, c := range b.added {
		l.addPending(c)
	}
	l.mu.Unlock()
	for k, r := range b.idem {
		w.rememberIdem(k, r)
	}
	for _, k := range b.idemPruned {
		delete(w.idem, k)
	}
	w.idemFIFO = w.idemFIFO[len(b.idemPruned):]
	for _, c := range b.added {
		w.scheduleExpiry(c)
	}
	w.ctr = b.ctr
	l.durableLogTime.Store(b.ctr.LogTime)
	l.durableOutboxSeq.Store(b.ctr.OutboxSeq)
	l.lastSerial.Store(b.ctr.Serial)
}

// pruneIdem deletes idempotency records past the retention window, a bounded
// number per batch.
func (w *writer) pruneIdem(b *batch) {
	cutoff := b.now.Add(-w.l.opts.IdempotencyRetention)
	for _, e := range w.idemFIFO {
		if len(b.idemPruned) == 256 || e.created.After(cutoff) {
			break
		}
		b.pb.Delete([]byte(e.key), nil)
		b.idemPruned = append(b.idemPruned, e.key)
	}
}

// batch is the writer's view while it applies one group of requests: the
// durable state plus what this batch changed, and the Pebble batch.
type batch struct {
	l   *Ledger
	pb  *pebble.Batch
	now time.Time
	ctr counters // working counters

	dirty      map[holdings.Key]dirtyHolding
	added      map[uint64]*commission.Commission
	removed    map[uint64]*commission.Commission
	idem       map[string]idemRecord
	idemPruned []string
	buf        []byte
	key        []byte
}

type dirtyHolding struct {
	value   holdings.Value
	deleted bool
}

func (b *batch) reset(pb *pebble.Batch, ctr counters, now time.Time) {
	b.pb = pb
	b.ctr = ctr
	b.now = now.UTC()
	clear(b.dirty)
	clear(b.added)
	clear(b.removed)
	clear(b.idem)
	b.idemPruned = b.idemPruned[:0]
}

// get returns a holding as this batch sees it.
func (b *batch) get(k holdings.Key) (holdings.Value, bool) {
	if d, ok := b.dirty[k]; ok {
		return d.value, !d.deleted
	}
	return b.l.table.get(k)
}

// putHolding records a holding's new value.
func (b *batch) putHolding(k holdings.Key, v holdings.Value) {
	if _, ok := b.dirty[k]; !ok {
		if _, exists := b.l.table.get(k); !exists {
			k = b.l.w.internKey(k)
		}
	}
	b.dirty[k] = dirtyHolding{value: v}
	b.key = holdingKey(b.key[:0], k)
	b.buf = appendHoldingValue(b.buf[:0], v)
	b.pb.Set(b.key, b.buf, nil)
}

func (b *batch) deleteHolding(k holdings.Key) {
	b.dirty[k] = dirtyHolding{deleted: true}
	b.key = holdingKey(b.key[:0], k)
	b.pb.Delete(b.key, nil)
}

// pending returns the commission serial as this batch sees it, if pending.
func (b *batch) pending(serial uint64) *commission.Commission {
	if c, ok := b.added[serial]; ok {
		return c
	}
	if _, ok := b.removed[serial]; ok {
		return nil
	}
	return b.l.pending[serial]
}

// eachPending calls fn for every commission pending as this batch sees it.
func (b *batch) eachPending(fn func(*commission.Commission) bool) {
	for s, c := range b.l.pending {
		if _, ok := b.removed[s]; ok {
			continue
		}
		if !fn(c) {
			return
		}
	}
	for _, c := range b.added {
		if !fn(c) {
			return
		}
	}
}

func (b *batch) addCommission(c *commission.Commission) {
	b.added[c.Serial] = c
	b.key = pendingKey(b.key[:0], c.Client, c.Serial)
	b.buf = appendCommission(b.buf[:0], c)
	b.pb.Set(b.key, b.buf, nil)
}

func (b *batch) removeCommission(c *commission.Commission) {
	if _, ok := b.added[c.Serial]; ok {
		delete(b.added, c.Serial)
	} else {
		b.removed[c.Serial] = c
	}
	b.key = pendingKey(b.key[:0], c.Client, c.Serial)
	b.pb.Delete(b.key, nil)
}

// logTime returns the log time of this batch: strictly after every earlier
// batch's, so that it also serves as the durability watermark of the log.
func (b *batch) logTime() int64 {
	if b.ctr.LogTime > b.l.w.ctr.LogTime {
		return b.ctr.LogTime
	}
	t := b.now.UnixNano()
	if t <= b.ctr.LogTime {
		t = b.ctr.LogTime + 1
	}
	b.ctr.LogTime = t
	return t
}

// emit appends an event to the outbox.
func (b *batch) emit(e *Event) {
	b.ctr.OutboxSeq++
	e.Seq = b.ctr.OutboxSeq
	if e.Time.IsZero() {
		e.Time = b.now
	}
	b.key = outboxKey(b.key[:0], e.Seq)
	b.buf = appendEvent(b.buf[:0], e)
	b.pb.Set(b.key, b.buf, nil)
}

// expiryHeap orders pending commissions with a deadline, soonest first.
// Entries of commissions resolved since are skipped when popped.
type expiryItem struct {
	deadline time.Time
	serial   uint64
}

type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
