package ledger

import (
	"container/heap"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
)

// A request is one call queued to the writer. op does the work against the
// batch; done is sent to once the batch holding it is durable (or refused).
type request struct {
	op  op
	err error
	// done takes one value when the request is answered (err set): a
	// buffered channel, so the writer never waits, and one a request
	// keeps from call to call (requests are reused: Ledger.do).
	done chan struct{}
}

// answer answers a request (the writer's side; the caller's is
// request.answered).
func (r *request) answer(err error) {
	r.err = err
	r.done <- struct{}{}
}

// answerAll answers each of reqs with err.
func answerAll(reqs []*request, err error) {
	for _, r := range reqs {
		r.answer(err)
	}
}

// requests are the callers' requests, reused: a request and its channel
// were two allocations a call.
var requests = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// An op is one write. apply checks everything first and writes only if the
// whole op succeeds, so a failed op leaves nothing in the batch.
type op interface {
	apply(b *batch) error
}

// maxPipelineDepth is the most batches that may be in the committer's
// hands or waiting for their WAL sync at once (Options.PipelineDepth): the
// journal's last records, after a crash, are at most that many that the
// cluster's log may not hold (replay.go), whatever the depth they were
// written with.
//
// The ledger runs at a depth of one: while a batch syncs, the calls that
// come wait in the queue, and the writer takes them all, with the calls of
// the callers just answered, into the next batch the moment the sync is
// done. Deeper, the callers split into groups that each wait for a sync of
// their own, Pebble syncing one group's batch while the writer builds the
// next: about twice the fsyncs with half the calls each, and on this
// machine their kernel work and wake-ups cost more CPU than overlapping the
// writer's apply with the sync saves (docs/engine.md, "One batch in
// flight"). The tests run deeper pipelines too, so the overlays that let a
// batch build on batches in flight stay proven.
const maxPipelineDepth = 3

// writer is the state owned by the writer goroutine.
//
// The writer can pipeline (Options.PipelineDepth): apply batch N+1 on top
// of batch N while N's WAL sync is under way. A batch's effects stay in its
// own overlay (dirty holdings, added and removed commissions) until its
// sync completes; then the writer publishes the overlay to readers and
// answers its callers, strictly in order.
type writer struct {
	l        *Ledger
	ctr      counters // as of the last durable batch
	idem     map[string]idemRecord
	idemFIFO []idemEntry // in order of creation, for pruning
	idemNext int         // idemFIFO[:idemNext] are already being deleted
	expiry   expiryHeap
	strings  map[string]string
	inflight []*batch // committed, waiting for their sync, oldest first
	free     []*batch
	commits  chan *batch // to the committer, in order
	synced   chan *batch
	refusing bool   // below the free-space floor at the last batch
	seq      uint64 // the last durable journal record

	// leading: the ledger takes writes (always, on a single node); log is
	// the cluster's replicated log (nil on a single node); deposed is
	// closed when the term ends; refused is set once an append of the term
	// was refused: no later batch of the term is shown.
	leading bool
	log     Log
	deposed chan struct{}
	// chain: the log, when its records name their place (Chain); term
	// and nextPos are the term and the position of the next record.
	chain         Chain
	term, nextPos uint64
	refused       bool
	// unsettled: a batch the log refused left the expiry heap and the
	// pruning of idempotency records as it had them (settle).
	unsettled bool
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
	w.synced = make(chan *batch, maxPipelineDepth)
	w.commits = make(chan *batch, maxPipelineDepth)
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

func (w *writer) internString(s string) string {
	if v, ok := w.strings[s]; ok {
		return v
	}
	w.strings[s] = s
	return s
}

func (w *writer) internKey(k holdings.Key) holdings.Key {
	k.Resource = w.internString(k.Resource)
	if !k.Source.IsNull() {
		k.Source = holdings.SourceOf(w.internString(k.Source.Name()))
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

// lastSeq is the journal sequence of the newest batch in flight that
// writes a record, or the last durable one.
func (w *writer) lastSeq() uint64 {
	for i := len(w.inflight) - 1; i >= 0; i-- {
		if w.inflight[i].seq != 0 {
			return w.inflight[i].seq
		}
	}
	return w.seq
}

// lastCounters are the counters a new batch starts from: those of the newest
// batch in flight, or the durable ones.
func (w *writer) lastCounters() counters {
	if n := len(w.inflight); n > 0 {
		return w.inflight[n-1].ctr
	}
	return w.ctr
}

// run is the writer goroutine.
func (l *Ledger) run() {
	w := &l.w
	go l.committer()
	defer func() {
		close(w.commits)
		close(l.done)
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	reqs := make([]*request, 0, l.opts.MaxBatch)
	depth := l.opts.PipelineDepth
	for {
		// Wait for work, or for a sync to complete.
		if len(reqs) == 0 || len(w.inflight) == depth {
			var quit <-chan struct{}
			var incoming <-chan *request
			if len(w.inflight) == 0 {
				quit = l.quit
			}
			if len(w.inflight) < depth {
				incoming = l.reqs
			}
			w.resetTimer(timer)
			select {
			case r := <-incoming:
				reqs = append(reqs, r)
			case b := <-w.synced:
				l.finish(b)
			case <-timer.C:
				if w.leading {
					l.expireDue(&reqs)
				}
			case c := <-l.controls:
				c.done <- c.fn()
			case <-quit:
				l.drain(reqs)
				return
			}
			continue
		}
		// Take whatever else is waiting, and finish batches already synced.
	fill:
		for len(reqs) < l.opts.MaxBatch {
			select {
			case r := <-l.reqs:
				reqs = append(reqs, r)
			case b := <-w.synced:
				l.finish(b)
			default:
				break fill
			}
		}
		l.start(reqs)
		reqs = reqs[:0]
	}
}

// drain answers everything still queued with ErrClosed.
func (l *Ledger) drain(reqs []*request) {
	answerAll(reqs, ErrClosed)
	for {
		select {
		case r := <-l.reqs:
			r.answer(ErrClosed)
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
	if d <= 0 && w.l.refusal() != nil {
		// Below the free-space floor the expiry would be refused: try again
		// in a while instead of spinning on a timer that is always due.
		d = time.Second
	}
	t.Reset(max(d, 0))
}

// expireDue queues an expiry op if a deadline has passed.
func (l *Ledger) expireDue(reqs *[]*request) {
	w := &l.w
	if len(w.expiry) > 0 && !w.expiry[0].deadline.After(l.opts.Now()) {
		*reqs = append(*reqs, &request{op: &expireOp{}, done: make(chan struct{}, 1)})
	}
}

// start applies reqs to a new batch and hands it to the committer.
func (l *Ledger) start(reqs []*request) {
	w := &l.w
	if !w.leading {
		answerAll(reqs, ErrNotLeader)
		return
	}
	if err := l.Failed(); err != nil {
		l.m.countRefused(l.m.refusedFailed, reqs)
		answerAll(reqs, ErrFailed)
		return
	}
	refuse := l.checkSpace()
	if (refuse != nil) != w.refusing {
		// Log the change of state, not every refused batch.
		w.refusing = refuse != nil
		if w.refusing {
			l.log.Warn().Uint64("min_free_bytes", l.opts.MinFreeBytes).Msg("free disk space below the floor: writes refused")
		} else {
			l.log.Info().Msg("free disk space above the floor again: writes taken")
		}
	}
	if refuse != nil {
		l.m.countRefused(l.m.refusedNoSpace, reqs)
		answerAll(reqs, refuse)
		return
	}
	var b *batch
	if n := len(w.free); n > 0 {
		b, w.free = w.free[n-1], w.free[:n-1]
	} else {
		b = newBatch(l)
	}
	b.reset(w.lastCounters(), l.opts.Now())
	b.log = w.log
	b.reqs = append(b.reqs[:0], reqs...)
	l.m.batchSize.Observe(float64(len(reqs)))
	w.pruneIdem(b)
	for _, r := range reqs {
		r.err = r.op.apply(b)
	}
	if b.ncalls > 0 {
		b.seq = w.lastSeq() + 1
		if b.log != nil && w.chain != nil {
			b.ctr.Term, b.ctr.Pos = w.term, w.nextPos
		}
		b.seal()
		if b.log != nil && w.chain != nil {
			w.nextPos += w.chain.Span(len(b.rec))
		}
	}
	w.inflight = append(w.inflight, b)
	w.commits <- b
}

// committer is the second stage of the pipeline: in the order the writer
// built them, it applies each batch's journal record to the journal
// database (WAL and memtable) without waiting for the sync, while the writer
// goes on building the next batch; a goroutine per batch waits for the sync.
func (l *Ledger) committer() {
	w := &l.w
	for b := range w.commits {
		if b.ncalls == 0 {
			// Nothing to write (every op failed or only read); the batch
			// still finishes after its elders, whose state its ops saw.
			w.synced <- b
			continue
		}
		if l.Failed() != nil {
			// An elder's commit failed: this batch never reaches Pebble.
			b.syncErr = errNotApplied
			w.synced <- b
			continue
		}
		b.pb = l.jdb.NewBatch()
		b.key = journalKey(b.key[:0], b.seq)
		_ = b.pb.Set(b.key, b.rec, nil)
		start := time.Now()
		if err := l.apply(b.pb); err != nil {
			b.syncErr = err
			l.setFailed(err)
			w.synced <- b
			continue
		}
		var appended func() error
		if b.log != nil {
			appended = b.log.Append(b.seq, b.rec)
		}
		go func() {
			syncStart := time.Now()
			b.syncErr = b.pb.SyncWait()
			if b.syncErr != nil {
				// At once, so that the committer sends no later batch to
				// Pebble's failed WAL writer.
				l.setFailed(b.syncErr)
			}
			if appended != nil {
				if err := appended(); err != nil {
					b.appendErr = fmt.Errorf("%w: %w", errDeposed, err)
				}
			}
			since(l.m.walSyncSeconds, syncStart)
			since(l.m.batchCommitSeconds, start)
			w.synced <- b
		}()
	}
}

// finish publishes a synced batch and answers its callers. Batches finish in
// the order they started, so a batch waits for its elders.
func (l *Ledger) finish(b *batch) {
	w := &l.w
	answered := false
	b.isSynced = true
	for len(w.inflight) > 0 && w.inflight[0].isSynced {
		b := w.inflight[0]
		w.inflight = w.inflight[1:]
		if b.syncErr != nil || l.Failed() != nil {
			l.fail(b)
			continue
		}
		if b.appendErr != nil || (b.log != nil && w.refused) {
			if !w.refused {
				l.log.Error().Err(b.appendErr).Uint64("seq", b.seq).Msg("the log refused an append")
			}
			w.refused = true
			l.deposedBatch(b)
			continue
		}
		if b.pb != nil {
			_ = b.pb.Close()
			b.pb = nil
		}
		l.publish(b)
		for _, r := range b.reqs {
			r.done <- struct{}{}
		}
		clear(b.reqs)
		w.free = append(w.free, b)
		answered = true
	}
	if answered {
		// Let the callers just answered run before the writer goes on:
		// they are runnable on this P, and most call again at once, so
		// their next calls join the batch the writer builds next instead
		// of waiting in the queue for one more batch and one more sync
		// (at 64 callers the batches grew from ~13 to ~20 calls, at 512
		// from ~90 to ~200; docs/engine.md, "What limits throughput").
		// Again while the queue grows, a few times: answered callers on
		// the other P, or woken late, are still queueing when the first
		// yield returns (at 64 callers ~41 -> ~44 calls a batch with one
		// batch in flight: docs/engine.md, "One batch in flight").
		for n, i := len(l.reqs), 0; i < maxYields; i++ {
			runtime.Gosched()
			m := len(l.reqs)
			if m == n {
				break
			}
			n = m
		}
	}
}

// maxYields is how many times the writer yields after answering a batch
// while its queue grows (finish).
const maxYields = 4

// errNotApplied marks a batch that never reached Pebble because an elder's
// commit had failed.
var errNotApplied = errors.New("ledger: batch not applied")

// apply hands a batch to Pebble without waiting for its sync. Pebble keeps
// a failed WAL write or sync for good, and the next write it is given then
// panics (DB.commitWrite) instead of returning it; a batch applied in the
// moment between the failure and its report (setFailed) meets that panic,
// which is turned back into the error here.
func (l *Ledger) apply(pb *pebble.Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("pebble: %v", p)
			}
		}
	}()
	return l.jdb.ApplyNoSyncWait(pb, pebble.Sync)
}

// setFailed records the first commit error: from then on every write is
// refused with ErrFailed, and reads go on from the last durable state.
//
// The failure is logged before anyone can see it (Failed, FailedC), so that
// a process that exits on it has said why.
func (l *Ledger) setFailed(err error) {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if l.failed.Load() != nil {
		return
	}
	l.log.Error().Err(err).Msg("ledger: a commit failed; writes are refused until restart, reads go on")
	l.m.batchFailures.Inc()
	l.failed.Store(&err)
	close(l.failedC)
}

// fail answers the calls of a batch that finished after a commit failed. A
// batch that reached Pebble may be wholly in the WAL or not at all (after a
// failed sync its write went through; after a failed write it did not):
// its calls get ErrOutcomeUnknown. A batch that never reached Pebble left no
// trace: its calls get ErrFailed. Nothing is published, so readers never see
// what the failed batches did, and memory is never ahead of disk: the state
// readers see is a prefix of what a restart will load.
func (l *Ledger) fail(b *batch) {
	err := ErrOutcomeUnknown
	if errors.Is(b.syncErr, errNotApplied) || b.ncalls == 0 {
		err = ErrFailed
	}
	answerAll(b.reqs, err)
	clear(b.reqs)
	b.pb = nil // Pebble may still hold it; never reused
}

// refusal is why a write would be refused now (ErrFailed, ErrNoSpace), or
// nil.
func (l *Ledger) refusal() error {
	if l.Failed() != nil {
		return ErrFailed
	}
	return l.checkSpace()
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

// publish makes a synced batch visible to readers.
func (l *Ledger) publish(b *batch) {
	w := &l.w
	l.mu.Lock()
	for k, d := range b.dirty {
		if d.deleted {
			l.table.delete(k)
		} else {
			l.table.setRef(d.ref, k, d.value)
		}
	}
	for _, c := range b.removed {
		l.removePending(c)
	}
	for _, c := range b.added {
		l.addPending(c)
	}
	if b.ncalls > 0 {
		l.pubSeq = b.seq
	}
	l.pubCtr = b.ctr
	l.mu.Unlock()
	for k, r := range b.idem {
		w.rememberIdem(k, r)
	}
	for _, k := range b.idemPruned {
		delete(w.idem, k)
	}
	w.idemFIFO = w.idemFIFO[len(b.idemPruned):]
	w.idemNext -= len(b.idemPruned)
	for _, c := range b.added {
		w.scheduleExpiry(c)
	}
	w.ctr = b.ctr
	l.batches.Add(1)
	l.batchedCalls.Add(uint64(len(b.reqs)))
	if b.ncalls > 0 {
		w.seq = b.seq
		var r *jrecord
		if !b.undecoded {
			r = &jrecord{seq: b.seq, now: b.now, ctr: b.ctr, firstEvent: b.start.OutboxSeq + 1, calls: b.calls, kept: true}
		}
		l.journaled(b.seq, b.start.OutboxSeq+1, b.ctr.OutboxSeq, b.rec, r)
		b.rec, b.calls = nil, nil // the applier owns them now
	}
	l.durableOutboxSeq.Store(b.ctr.OutboxSeq)
	l.lastSerial.Store(b.ctr.Serial)
}

// pruneIdem deletes idempotency records past the retention window, a bounded
// number per batch.
func (w *writer) pruneIdem(b *batch) {
	cutoff := b.now.Add(-w.l.opts.IdempotencyRetention)
	for w.idemNext < len(w.idemFIFO) && len(b.idemPruned) < 256 {
		e := w.idemFIFO[w.idemNext]
		if e.created.After(cutoff) {
			break
		}
		b.idemPruned = append(b.idemPruned, e.key)
		w.idemNext++
	}
	if len(b.idemPruned) > 0 {
		b.recordPruneIdem(b.idemPruned)
	}
}

// batch is the writer's view while it applies one group of requests: the
// state of older batches plus what this batch changes, and its records.
type batch struct {
	l     *Ledger
	reqs  []*request
	now   time.Time
	start counters // the counters this batch started from
	ctr   counters // working counters

	dirty      map[holdings.Key]dirtyHolding
	added      map[uint64]*commission.Commission
	removed    map[uint64]*commission.Commission
	idem       map[string]idemRecord
	idemPruned []string
	key        []byte

	// The journal record: its sequence, the calls as the ops append them,
	// and the whole record once sealed.
	seq    uint64
	ncalls int
	body   []byte
	rec    []byte
	// calls are the record's calls as the applier reads them (jcall), kept
	// beside body as the ops append them (keep), so that the applier need
	// not decode what the writer has in hand; unless undecoded: a call was
	// appended that is not kept (callUpdate), the applier decodes the
	// record.
	calls     []jcall
	undecoded bool

	// refs are where the latest table lookups found their rows (a ring),
	// for updateHolding to keep with the new value.
	refs [refRing]keyRef
	nref int

	pb        *pebble.Batch
	syncErr   error
	isSynced  bool
	log       Log   // the log the batch goes to (leading in a cluster)
	appendErr error // the log refused it
}

type dirtyHolding struct {
	value   holdings.Value
	deleted bool
	ref     rowRef // where the row is in the table, if known
}

// refRing is how many of a batch's latest table lookups it remembers: an op
// looks its holdings up (at most a commission's provisions after merging,
// 4 in the usual case) before it updates them; an op of more falls back to
// looking its rows up again when the batch is published.
const refRing = 8

type keyRef struct {
	k   holdings.Key
	ref rowRef
}

func newBatch(l *Ledger) *batch {
	return &batch{
		l:       l,
		dirty:   make(map[holdings.Key]dirtyHolding),
		added:   make(map[uint64]*commission.Commission),
		removed: make(map[uint64]*commission.Commission),
		idem:    make(map[string]idemRecord),
	}
}

func (b *batch) reset(ctr counters, now time.Time) {
	b.start, b.ctr = ctr, ctr
	b.now = now.UTC()
	b.syncErr, b.isSynced = nil, false
	b.log, b.appendErr = nil, nil
	clear(b.dirty)
	clear(b.added)
	clear(b.removed)
	clear(b.idem)
	clear(b.refs[:])
	b.nref = 0
	b.idemPruned = b.idemPruned[:0]
	b.seq, b.ncalls = 0, 0
	b.body = b.body[:0]
	b.calls, b.undecoded = nil, false
}

// elders are the batches in flight, newest first, whose state this batch
// builds on.
func (b *batch) elders() []*batch { return b.l.w.inflight }

// get returns a holding as this batch sees it.
func (b *batch) get(k holdings.Key) (holdings.Value, bool) {
	if d, ok := b.dirty[k]; ok {
		b.keepRef(k, d.ref)
		return d.value, !d.deleted
	}
	el := b.elders()
	for i := len(el) - 1; i >= 0; i-- {
		if d, ok := el[i].dirty[k]; ok {
			b.keepRef(k, d.ref)
			return d.value, !d.deleted
		}
	}
	v, ref, ok := b.l.table.getRef(k)
	if ok {
		b.keepRef(k, ref)
	}
	return v, ok
}

// keepRef remembers where k's row is in the table, if known, for
// updateHolding (a row a batch in flight found is where it was while no
// delete happened: setRef checks).
func (b *batch) keepRef(k holdings.Key, ref rowRef) {
	if ref.hr == nil {
		return
	}
	b.refs[b.nref%refRing] = keyRef{k: k, ref: ref}
	b.nref++
}

// putHolding records a holding's new value, creating it if needed;
// writeHoldings writes each holding once per batch, however many ops changed
// it.
func (b *batch) putHolding(k holdings.Key, v holdings.Value) {
	if _, ok := b.get(k); !ok {
		b.ctr.Holdings++
		// A new row keeps the key's names: shared copies.
		k = b.l.w.internKey(k)
	}
	b.dirty[k] = dirtyHolding{value: v}
}

// updateHolding is putHolding for a holding known to exist: its row keeps
// the names it has, so the key is not interned.
func (b *batch) updateHolding(k holdings.Key, v holdings.Value) {
	d := dirtyHolding{value: v}
	for i := range min(b.nref, refRing) {
		if e := &b.refs[(b.nref-1-i)%refRing]; e.k == k {
			d.ref = e.ref
			break
		}
	}
	b.dirty[k] = d
}

func (b *batch) deleteHolding(k holdings.Key) {
	if _, ok := b.get(k); ok {
		b.ctr.Holdings--
	}
	b.dirty[k] = dirtyHolding{deleted: true}
}

// pending returns the commission serial as this batch sees it, if pending.
func (b *batch) pending(serial uint64) *commission.Commission {
	if c, ok := b.added[serial]; ok {
		return c
	}
	if _, ok := b.removed[serial]; ok {
		return nil
	}
	el := b.elders()
	for i := len(el) - 1; i >= 0; i-- {
		if c, ok := el[i].added[serial]; ok {
			return c
		}
		if _, ok := el[i].removed[serial]; ok {
			return nil
		}
	}
	return b.l.pending[serial]
}

// eachPending calls fn for every commission pending as this batch sees it.
func (b *batch) eachPending(fn func(*commission.Commission) bool) {
	visit := func(c *commission.Commission) bool {
		if b.pending(c.Serial) != c {
			return true // resolved since
		}
		return fn(c)
	}
	for _, c := range b.l.pending {
		if !visit(c) {
			return
		}
	}
	for _, e := range b.elders() {
		for _, c := range e.added {
			if !visit(c) {
				return
			}
		}
	}
	for _, c := range b.added {
		if !visit(c) {
			return
		}
	}
}

// idemRecord returns the idempotency record of key as this batch sees it.
func (b *batch) idemRecord(key string) (idemRecord, bool) {
	if r, ok := b.idem[key]; ok {
		return r, true
	}
	el := b.elders()
	for i := len(el) - 1; i >= 0; i-- {
		if r, ok := el[i].idem[key]; ok {
			return r, true
		}
	}
	r, ok := b.l.w.idem[key]
	if ok && r.Created.Before(b.now.Add(-b.l.opts.IdempotencyRetention)) {
		return r, false // past retention; pruning deletes it
	}
	return r, ok
}

func (b *batch) addCommission(c *commission.Commission) {
	b.added[c.Serial] = c
}

func (b *batch) removeCommission(c *commission.Commission) {
	if _, ok := b.added[c.Serial]; ok {
		delete(b.added, c.Serial)
	} else {
		b.removed[c.Serial] = c
	}
}

// logTime returns the log time of this batch: strictly after every earlier
// batch's, so that it also serves as the durability watermark of the log.
func (b *batch) logTime() int64 {
	if b.ctr.LogTime > b.start.LogTime {
		return b.ctr.LogTime
	}
	b.ctr.LogTime = max(b.now.UnixNano(), b.start.LogTime+1)
	return b.ctr.LogTime
}

// emitted counts the events of a call: the journal record implies them
// (jrecord.events renders them), and the outbox sequence numbers them.
func (b *batch) emitted(n int) { b.ctr.OutboxSeq += uint64(n) }

// chunks is how many events a holding change of n holdings makes (at most
// MaxEventHoldings each, and one even when n is 0).
func chunks(n int) int { return max(1, (n+MaxEventHoldings-1)/MaxEventHoldings) }

// records collects the writes an Update stages in the identity layer's key
// spaces, in the order they were made.
type records struct {
	arena []byte
	list  []recordRef
}

type recordRef struct {
	k0, k1, v1 int // key arena[k0:k1], value arena[k1:v1]
	del        bool
}

func (r *records) set(k, v []byte) {
	k0 := len(r.arena)
	r.arena = append(append(r.arena, k...), v...)
	r.list = append(r.list, recordRef{k0: k0, k1: k0 + len(k), v1: len(r.arena)})
}

func (r *records) del(k []byte) {
	k0 := len(r.arena)
	r.arena = append(r.arena, k...)
	r.list = append(r.list, recordRef{k0: k0, k1: len(r.arena), v1: len(r.arena), del: true})
}

// expiryHeap orders pending commissions with a deadline, soonest first.
// Entries of commissions resolved since are skipped when popped.
type expiryItem struct {
	deadline time.Time
	serial   uint64
}

type expiryHeap []expiryItem

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	if c := h[i].deadline.Compare(h[j].deadline); c != 0 {
		return c < 0
	}
	return h[i].serial < h[j].serial
}
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)   { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
