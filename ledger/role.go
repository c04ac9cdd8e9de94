package ledger

import (
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// A ledger of a cluster (DESIGN §11) is a leader or a follower. The leader
// takes writes: each batch's journal record goes to the replicated log
// (Log.Append) as well as to its own journal, and its calls are answered
// once both hold it. A follower takes no writes (ErrNotLeader): it applies,
// in order, the records the log delivers (Follow), through the code that
// replays the journal on open, so that its state is the state of the
// leader at the same sequence. A ledger opened without Options.Follower is
// a single node: the leader of itself, with no log.

// ErrNotLeader is returned for writes on a follower: the cluster forwards
// them to the leader.
var ErrNotLeader = failure.New(failure.Unavailable, "this node is not the leader")

// ErrBusy is returned by Follow and Lead while the batches of the last term
// as leader are still in flight: try again in a moment.
var ErrBusy = failure.New(failure.Unavailable, "the ledger is finishing its batches as leader")

// errDeposed wraps the log's refusal of an append.
var errDeposed = errors.New("ledger: the log refused an append")

// ErrDeposed is returned to the calls of a leader's batches whose append
// the log refused, or that were in flight then: another node may lead now,
// and the log may hold the call or not. Retry it (with the same
// idempotency key, for an issue) on the leader.
var ErrDeposed = failure.New(failure.Unavailable,
	"this node stopped leading while the call was in flight; its outcome is unknown: retry it (an issue with the same idempotency key)")

// ErrUnchained is returned by Follow for a record that was not built on the
// last record applied: the log took it after refusing one it was built on
// (see journalChained). Every node skips it: the log holds it, but it is
// not the cluster's. No caller of the API sees it (Unavailable if one did:
// the node is catching up with the log).
var ErrUnchained = failure.New(failure.Unavailable, "the record was not built on the last record applied")

// Log is the replicated log of a cluster, as the leader's ledger sees it.
type Log interface {
	// Append sends journal record seq to the log; Append is called in
	// sequence order, from one goroutine, and must not block on the log.
	// The returned wait blocks until the log holds the record (nil) or
	// refused it (another leader appended first, the connection broke: an
	// error). A refused append deposes the leader.
	Append(seq uint64, rec []byte) (wait func() error)
}

// A Chain is a Log whose records name their place in it, and the term of
// the record each was built on (journalChained): the records a follower
// applies are then exactly those built one on the other, whatever else
// the log took.
type Chain interface {
	Log
	// Term names the leader's term: not 0, and never the same for two
	// terms (of this node or another).
	Term() uint64
	// Next is the log position the first message of the next record
	// appended takes, if the log takes it.
	Next() uint64
	// Span is how many log positions a record of n bytes takes.
	Span(n int) uint64
}

// Position returns the last journal record the ledger applied and the log
// position of its first message; pos is 0 when that record has none (a
// single node's, or of the older layout).
func (l *Ledger) Position() (seq, pos uint64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.pubSeq, l.pubCtr.Pos
}

// Lead makes a follower the leader: from now on it takes writes and
// appends each batch to log. The caller must have applied every record of
// the log first (Follow), so that the first append follows the log's last
// record. Lead returns a channel closed when the ledger stops leading: a
// refused append, or StepDown. While the batches of the last term are still
// in flight (their appends not yet acknowledged or refused) it returns
// ErrBusy: try again in a moment (a batch of the last term finishing in the
// new one would be shown or dropped by the new term's rules).
func (l *Ledger) Lead(log Log) (<-chan struct{}, error) {
	var out <-chan struct{}
	err := l.control(func() error {
		w := &l.w
		if w.leading {
			return errors.New("ledger: already leading")
		}
		if len(w.inflight) > 0 {
			return ErrBusy
		}
		if w.unsettled {
			w.settle(l)
		}
		w.leading, w.log, w.refused = true, log, false
		w.chain, _ = log.(Chain)
		if w.chain != nil {
			w.term, w.nextPos = w.chain.Term(), w.chain.Next()
		}
		w.deposed = make(chan struct{})
		out = w.deposed
		l.leading.Store(true)
		l.log.Info().Uint64("seq", w.seq).Msg("leading")
		return nil
	})
	return out, err
}

// StepDown stops a leader taking writes: the batches in flight finish as
// their appends do, and the ledger follows. It is a no-op on a follower.
func (l *Ledger) StepDown() error {
	return l.control(func() error {
		l.w.stopLeading(l, "stepped down")
		return nil
	})
}

// Leading reports whether the ledger takes writes.
func (l *Ledger) Leading() bool { return l.leading.Load() }

// Applied is the last journal record the ledger holds and shows: its
// position in the log.
func (l *Ledger) Applied() uint64 { return l.durableSeq.Load() }

// Follow applies journal record seq, as the log delivered it, on a
// follower: seq must follow the last record applied. It returns once the
// record is in the ledger's journal (not synced: the log keeps it) and in
// memory, where readers see it.
func (l *Ledger) Follow(seq uint64, rec []byte) error {
	return l.control(func() error { return l.follow(seq, rec) })
}

// control runs fn on the writer goroutine, between batches.
func (l *Ledger) control(fn func() error) error {
	c := controlReq{fn: fn, done: make(chan error, 1)}
	select {
	case l.controls <- c:
	case <-l.done:
		return ErrClosed
	}
	select {
	case err := <-c.done:
		return err
	case <-l.done:
		return ErrClosed
	}
}

type controlReq struct {
	fn   func() error
	done chan error
}

// follow applies a record on the writer goroutine.
func (l *Ledger) follow(seq uint64, rec []byte) error {
	w := &l.w
	if w.leading {
		return errors.New("ledger: a leader does not follow")
	}
	if len(w.inflight) > 0 {
		return ErrBusy
	}
	if err := l.Failed(); err != nil {
		return err
	}
	r, err := decodeJournal(seq, rec, w.intern)
	if err != nil {
		return fmt.Errorf("ledger: record %d: %w", seq, err)
	}
	if r.chained && (r.prevTerm != w.ctr.Term || seq != w.seq+1) {
		return fmt.Errorf("ledger: record %d of term %x was built on one of term %x; the last applied is %d of term %x: %w",
			seq, r.ctr.Term, r.prevTerm, w.seq, w.ctr.Term, ErrUnchained)
	}
	if seq != w.seq+1 {
		return fmt.Errorf("ledger: record %d does not follow %d: %w", seq, w.seq, ErrCorrupt)
	}
	if w.unsettled {
		w.settle(l)
	}
	// Not synced: the log keeps the record (a crash replays it from the
	// log), and the leader's calls wait for a quorum of logs, not for this
	// journal.
	if err := l.applyNoSync(l.jdb, journalKey(nil, seq), rec); err != nil {
		l.setFailed(err)
		return err
	}
	start := w.ctr
	l.mu.Lock()
	l.replayRecord(r)
	l.pubSeq, l.pubCtr = r.seq, r.ctr
	l.mu.Unlock()
	for i := range r.calls {
		c := &r.calls[i]
		if c.kind == callIssue && c.final == nil {
			w.scheduleExpiry(c.c)
		}
	}
	if hook := l.followHook.Load(); hook != nil {
		for i := range r.calls {
			if c := &r.calls[i]; c.kind == callUpdate && len(c.raw) > 0 {
				(*hook)(toRaw(c.raw))
			}
		}
	}
	l.batches.Add(1)
	l.journaled(seq, start.OutboxSeq+1, r.ctr.OutboxSeq, rec, r)
	l.durableOutboxSeq.Store(r.ctr.OutboxSeq)
	l.lastSerial.Store(r.ctr.Serial)
	return nil
}

// applyNoSync writes one key to db without waiting for a sync, turning
// Pebble's panic on a failed WAL back into its error (see Ledger.apply).
func (l *Ledger) applyNoSync(db interface {
	Set(key, value []byte, opts *pebble.WriteOptions) error
}, key, value []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("pebble: %v", p)
			}
		}
	}()
	return db.Set(key, value, pebble.NoSync)
}

// RawRecord is a record of the identity layer's key spaces that a followed
// journal record writes (Del: deletes).
type RawRecord struct {
	Key, Value []byte
	Del        bool
}

func toRaw(rs []rawRecord) []RawRecord {
	out := make([]RawRecord, len(rs))
	for i, r := range rs {
		out[i] = RawRecord{Key: r.key, Value: r.value, Del: r.del}
	}
	return out
}

// OnFollow sets fn to be called, on the writer goroutine, with the records
// of the key spaces open to Update that each followed journal record
// writes, once the ledger shows them: the identity layer keeps its memory
// current on a follower with it. fn must be quick and must not call the
// ledger.
func (l *Ledger) OnFollow(fn func([]RawRecord)) { l.followHook.Store(&fn) }

// settle sets the writer's own state that batches in flight take in hand
// outside their overlays to what the ledger shows, once none is in flight:
// the idempotency records being pruned (pruneIdem) and the expiry heap,
// from which expireOp pops the commissions it expires. A batch the log
// refused (deposedBatch) never gives either back: without this, the
// commissions it took off the heap would never expire on this node, and
// the records whose pruning it began would never be pruned. It is done
// once after such a batch (unsettled), not on every record followed.
func (w *writer) settle(l *Ledger) {
	w.unsettled = false
	w.idemNext = 0
	w.expiry = w.expiry[:0]
	for _, c := range l.pending {
		if !c.Deadline.IsZero() {
			w.expiry = append(w.expiry, expiryItem{deadline: c.Deadline, serial: c.Serial})
		}
	}
	heap.Init(&w.expiry)
}

// stopLeading ends the current term: new writes are refused; the batches
// in flight finish as their appends do.
func (w *writer) stopLeading(l *Ledger, why string) {
	if !w.leading {
		return
	}
	w.leading, w.log, w.chain = false, nil, nil
	l.leading.Store(false)
	close(w.deposed)
	l.log.Warn().Str("why", why).Uint64("seq", w.seq).Msg("no longer leading")
}

// deposedBatch handles a batch whose append the log refused, or that was
// in flight after one: its calls get ErrDeposed (the log may hold it or
// not), nothing of it is shown, and its record leaves the journal
// (the log's own record of seq, if any, replaces it when followed).
func (l *Ledger) deposedBatch(b *batch) {
	w := &l.w
	w.stopLeading(l, "the log refused an append")
	w.unsettled = true
	answerAll(b.reqs, ErrDeposed)
	clear(b.reqs)
	if b.pb != nil {
		_ = b.pb.Close()
		b.pb = nil
	}
	if b.seq != 0 {
		del := l.jdb.NewBatch()
		_ = del.Delete(journalKey(nil, b.seq), nil)
		if err := l.apply(del); err == nil {
			err = del.SyncWait()
			if err != nil {
				l.setFailed(err)
			}
		} else {
			l.setFailed(err)
		}
		_ = del.Close()
	}
	w.free = append(w.free, b)
}

// Digest is a digest of the state the ledger shows, with the journal
// record it is as of: two ledgers at the same sequence have the same
// digest (holdings, pending commissions, counters).
func (l *Ledger) Digest() (seq uint64, digest string) {
	h := sha256.New()
	l.mu.RLock()
	seq, ctr := l.pubSeq, l.pubCtr
	var hs []holdings.Holding
	l.table.each(nil, func(k holdings.Key, v holdings.Value) bool {
		hs = append(hs, holdings.Holding{Key: k, Value: v})
		return true
	})
	serials := make([]uint64, 0, len(l.pending))
	for s := range l.pending {
		serials = append(serials, s)
	}
	pending := make([]byte, 0, 64*len(serials))
	slices.Sort(serials)
	for _, s := range serials {
		pending = appendCommission(appendUvarint(pending, s), l.pending[s])
	}
	l.mu.RUnlock()
	slices.SortFunc(hs, func(a, b holdings.Holding) int { return compareKeys(a.Key, b.Key) })
	var buf []byte
	for _, x := range hs {
		buf = appendValue(appendKeyParts(buf[:0], x.Key), x.Value)
		h.Write(buf)
	}
	h.Write(pending)
	h.Write(appendCounters(nil, ctr))
	return seq, hex.EncodeToString(h.Sum(nil)[:16])
}
