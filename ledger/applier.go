package ledger

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
)

// The applier derives the state database from the journal, off the
// critical path. For every durable journal record, in order, it writes the
// provision log (resolved commissions by serial, entries by holder) and the
// identity layer's records, with the record's sequence (keyMetaIndexed),
// into the state database, which has no WAL. It also gathers what the
// records changed in holdings, pending commissions and idempotency records,
// and now and then writes that as a checkpoint (each changed holding once),
// with the sequence it is as of (keyMetaCheckpoint), and flushes the state
// database to disk. Only then may the journal below that sequence go (and
// only what the relay has published).
//
// After a crash the state database is what its last flush left: a prefix
// of what the applier wrote, consistent as of its keyMetaIndexed and
// keyMetaCheckpoint. Open loads that checkpoint and replays the journal
// after it, through the same apply, so nothing derived is ever lost.
type applier struct {
	l *Ledger

	mu      sync.Mutex
	queue   []queued // durable, not yet applied
	wake    chan struct{}
	ckptReq chan chan error // a checkpoint asked for (CheckpointNow)
	quit    chan struct{}
	done    chan struct{}
	stopped bool
	// spare are calls slices of the writer's records, applied and
	// emptied, for the writer's next batches (batch.keep).
	spare [][]jcall

	// progress is closed and replaced whenever applied moves (Log waits on
	// it).
	progMu   sync.Mutex
	progress chan struct{}

	// Owned by the applier goroutine (and by Open before it starts).
	applied uint64 // the last record applied
	indexed uint64 // records up to it have their log in chunks
	ckptSeq uint64 // the last checkpoint written
	// ckptPending are the pending commissions of the last checkpoint
	// (serial: client).
	ckptPending map[uint64]string
	idemAdd     map[string]idemRecord
	idemDel     map[string]struct{}
	sinceCkpt   int // journal bytes applied since the last checkpoint
	lastCkpt    time.Time
	truncated   uint64 // the journal is deleted below it
	log         logBuffer
	logLocked   bool // flushLog holds log.mu until logFlushed
	key, buf    []byte
	// es holds a record's log entries while the log buffer has them
	// staged (until log.commit), reused from record to record.
	es []LogEntry
	// res are a record's resolved commissions, their records in resArena,
	// until writeResolved writes them in blocks.
	res      []resolvedRec
	resArena []byte
}

// maxLogBuffer is how many log entries the applier keeps in memory before
// it writes them as chunks (each holder's one key), checkpoint or not.
const maxLogBuffer = 1 << 18

func newApplier(l *Ledger, ckptSeq, indexed uint64) *applier {
	ckptPending := make(map[uint64]string, len(l.pending))
	for s, c := range l.pending {
		ckptPending[s] = c.Client
	}
	return &applier{
		ckptPending: ckptPending,
		l:           l,
		wake:        make(chan struct{}, 1),
		ckptReq:     make(chan chan error),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
		progress:    make(chan struct{}),
		applied:     ckptSeq,
		indexed:     indexed,
		ckptSeq:     ckptSeq,
		idemAdd:     make(map[string]idemRecord),
		idemDel:     make(map[string]struct{}),
		lastCkpt:    time.Now(),
	}
}

// journaled is called by the writer when a batch's record is durable: the
// record joins the journal index and the applier's queue. r is the record
// decoded, or nil for the applier to decode it.
func (l *Ledger) journaled(seq, firstEvent, lastEvent uint64, rec []byte, r *jrecord) {
	l.jmu.Lock()
	l.jidx = append(l.jidx, jentry{seq: seq, firstEvent: firstEvent, lastEvent: lastEvent, size: len(rec)})
	l.jsince += len(rec)
	l.jmu.Unlock()
	l.durableSeq.Store(seq)
	a := l.ap
	a.mu.Lock()
	a.queue = append(a.queue, queued{seq: seq, rec: rec, r: r})
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// checkHandoff, set by the package's tests, checks each record the writer
// hands over decoded against what the applier would decode of it.
var checkHandoff func(seq uint64, rec []byte, r *jrecord)

// queued is a durable journal record the applier has yet to apply, with
// its calls when the writer handed them over (the applier decodes the
// others: decoding was 7 % of the engine's CPU at full load).
type queued struct {
	seq uint64
	rec []byte
	r   *jrecord
}

// jentry is a journal record in the index: its sequence, the events it
// holds (lastEvent < firstEvent: none) and its size.
type jentry struct {
	seq                   uint64
	firstEvent, lastEvent uint64
	size                  int
}

// run applies the queued records until stop.
func (a *applier) run() {
	defer close(a.done)
	tick := time.NewTicker(min(max(a.l.opts.CheckpointInterval/4, time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-a.wake:
		case <-tick.C:
		case done := <-a.ckptReq:
			a.drain()
			done <- a.checkpoint()
			continue
		case <-a.quit:
			a.drain()
			if a.l.Failed() == nil && !a.l.skipCloseCheckpoint {
				if err := a.checkpoint(); err != nil {
					a.l.log.Error().Err(err).Msg("ledger: the checkpoint at close failed")
				}
			}
			return
		}
		a.drain()
		if !a.l.skipCheckpoints.Load() && (a.sinceCkpt >= a.l.opts.CheckpointBytes ||
			(a.applied > a.ckptSeq && time.Since(a.lastCkpt) >= a.l.opts.CheckpointInterval)) {
			if err := a.checkpoint(); err != nil {
				a.l.setFailed(err)
			}
		}
	}
}

// CheckpointNow applies every durable journal record and checkpoints the
// state, as the applier does every Options.CheckpointInterval. The journal
// records that the checkpoint covers and whose events are published are
// deleted.
func (l *Ledger) CheckpointNow() error {
	done := make(chan error, 1)
	select {
	case l.ap.ckptReq <- done:
		return <-done
	case <-l.ap.done:
		return ErrClosed
	}
}

// stop lets the applier apply what is queued, checkpoint and return.
func (a *applier) stop() {
	a.mu.Lock()
	if !a.stopped {
		a.stopped = true
		close(a.quit)
	}
	a.mu.Unlock()
	<-a.done
}

// drain applies every queued record, in one state batch.
func (a *applier) drain() {
	a.mu.Lock()
	q := a.queue
	a.queue = nil
	a.mu.Unlock()
	if len(q) == 0 {
		return
	}
	// A drain that writes the log buffer out (tens of megabytes) takes a
	// batch of that size at once: grown from small by doubling, each
	// doubling copied into fresh memory, it cost 7 % of the engine's CPU
	// at full load (docs/engine.md).
	flush := a.log.size() >= maxLogBuffer
	var pb *pebble.Batch
	if flush {
		pb = a.l.db.NewBatchWithSize(a.log.encodedSize() + 1<<20)
	} else {
		pb = a.l.db.NewBatch()
	}
	for _, x := range q {
		r := x.r
		if r != nil && checkHandoff != nil {
			checkHandoff(x.seq, x.rec, r)
		}
		if r == nil {
			// The record's strings share its bytes: what the applier
			// keeps of them it copies (the log buffer's encoding,
			// Pebble, Clone).
			var err error
			if r, err = decodeJournal(x.seq, x.rec, viewString); err != nil {
				// The writer encoded it a moment ago: a bug, not a disk fault.
				panic(fmt.Sprintf("ledger: journal record %d does not decode: %v", x.seq, err))
			}
		}
		a.apply(pb, r)
	}
	a.recycle(q)
	if flush {
		a.flushLog(pb)
	}
	err := a.commit(pb)
	a.logFlushed()
	if err != nil {
		a.l.setFailed(err)
	}
	a.published()
}

// maxSpare is how many emptied calls slices the applier keeps for the
// writer: as many as batches may be in flight, and one more.
const maxSpare = maxPipelineDepth + 1

// recycle gives the writer back the calls slices of its records in q, which
// the applier is done with.
func (a *applier) recycle(q []queued) {
	var spare [maxSpare][]jcall
	n := 0
	for _, x := range q {
		if x.r != nil && x.r.kept && n < maxSpare {
			clear(x.r.calls) // keep no commission alive
			spare[n] = x.r.calls[:0]
			n++
		}
	}
	if n == 0 {
		return
	}
	a.mu.Lock()
	for _, c := range spare[:n] {
		if len(a.spare) < maxSpare {
			a.spare = append(a.spare, c)
		}
	}
	a.mu.Unlock()
}

// spareCalls returns an empty calls slice for the writer's next batch, one
// the applier is done with if it has one, with room for n calls.
func (a *applier) spareCalls(n int) []jcall {
	a.mu.Lock()
	var c []jcall
	if k := len(a.spare); k > 0 {
		c = a.spare[k-1]
		a.spare[k-1] = nil
		a.spare = a.spare[:k-1]
	}
	a.mu.Unlock()
	if cap(c) < n {
		c = make([]jcall, 0, n)
	}
	return c
}

// flushLog adds the log buffer to pb as chunks, with the sequence they are
// complete to. It holds the buffer's lock until logFlushed, which the
// caller calls once pb is committed (or failed).
func (a *applier) flushLog(pb *pebble.Batch) {
	a.log.mu.Lock()
	a.logLocked = true
	a.log.flush(pb)
	a.indexed = a.applied
	a.buf = binary.BigEndian.AppendUint64(a.buf[:0], a.indexed)
	_ = pb.Set(keyMetaIndexed, a.buf, nil)
}

// logFlushed lets readers at the log buffer again after a flushLog.
func (a *applier) logFlushed() {
	if a.logLocked {
		a.logLocked = false
		a.log.mu.Unlock()
	}
}

// commit applies pb to the state database.
func (a *applier) commit(pb *pebble.Batch) error {
	err := a.l.readDB(func() error { return pb.Commit(pebble.NoSync) })
	_ = pb.Close()
	if err != nil {
		return fmt.Errorf("ledger: applying the journal to the state: %w", err)
	}
	return nil
}

// published wakes the readers waiting for the applier.
func (a *applier) published() {
	a.progMu.Lock()
	a.l.indexedSeq.Store(a.applied)
	close(a.progress)
	a.progress = make(chan struct{})
	a.progMu.Unlock()
}

// wait returns once records up to seq are applied, or after timeout.
func (a *applier) wait(seq uint64, timeout time.Duration) {
	var deadline <-chan time.Time
	for {
		a.progMu.Lock()
		if a.l.indexedSeq.Load() >= seq {
			a.progMu.Unlock()
			return
		}
		ch := a.progress
		a.progMu.Unlock()
		if deadline == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-ch:
		case <-deadline:
			return
		case <-a.done:
			return
		}
	}
}

// apply derives what r changed: the provision log (its buffer, unless
// already in chunks) and identity's records into pb, and the idempotency
// records for the next checkpoint. The holdings and pending commissions the
// checkpoint takes from memory (checkpoint).
func (a *applier) apply(pb *pebble.Batch, r *jrecord) {
	index := r.seq > a.indexed
	for i := range r.calls {
		c := &r.calls[i]
		switch c.kind {
		case callIssue:
			if c.idemKey != "" {
				a.idemAdd[strings.Clone(c.idemKey)] = c.idem
				delete(a.idemDel, c.idemKey)
			}
			if c.final != nil {
				a.writeLog(pb, c.c, r.ctr.LogTime, "ACCEPT:", c.final, index)
			}
		case callResolve:
			a.writeLog(pb, c.c, r.ctr.LogTime, c.reason, c.after, index)
		case callUpdate:
			for _, x := range c.raw {
				if x.del {
					_ = pb.Delete(x.key, nil)
				} else {
					_ = pb.Set(x.key, x.value, nil)
				}
			}
		case callPruneIdem:
			for _, k := range c.keys {
				if _, ok := a.idemAdd[k]; ok {
					delete(a.idemAdd, k)
				} else {
					a.idemDel[strings.Clone(k)] = struct{}{}
				}
			}
		}
	}
	a.writeResolved(pb, r.seq)
	a.log.commit()
	clear(a.es) // keep no names alive
	a.es = a.es[:0]
	a.applied = r.seq
	if n, ok := a.l.journalSize(r.seq); ok {
		a.sinceCkpt += n
	}
}

// writeLog writes the provision log of a resolved commission: one record by
// serial, and an entry per provision in its holder's log (logindex.go).
//
// The entries go to the log buffer, unless toBuffer is false (they are in
// chunks already: the record is replayed after a crash).
func (a *applier) writeLog(pb *pebble.Batch, c *commission.Commission, lt int64, reason string, after []holdings.Value, toBuffer bool) {
	logTime := time.Unix(0, lt).UTC()
	// The entries are staged by address until the record's end: es is a
	// part of a.es that no later append moves (a longer a.es is a new
	// array; the staged entries stay where they are).
	n := max(len(c.Provisions), 1)
	at := len(a.es)
	a.es = slices.Grow(a.es, n)[:at+n]
	es := a.es[at : at+n : at+n]
	for i := range es {
		es[i] = LogEntry{Serial: c.Serial, Client: c.Client, Name: c.Name, IssueTime: c.IssueTime,
			LogTime: logTime, Reason: reason}
	}
	for i, p := range c.Provisions {
		es[i].Key = p.Key
		es[i].Quantity = p.Quantity
		es[i].After = after[i]
		if toBuffer {
			a.log.stage(p.Key.Holder, &es[i], i)
		}
	}
	start := len(a.resArena)
	a.resArena = appendResolved(a.resArena, es[0], es[:len(c.Provisions)])
	a.res = append(a.res, resolvedRec{serial: c.Serial, start: start, end: len(a.resArena)})
}

// writeResolved writes the resolved commissions of journal record seq, one
// key a block they fall in (blockKey). A record replayed after a crash
// writes the same keys again, with the same values.
func (a *applier) writeResolved(pb *pebble.Batch, seq uint64) {
	rs := a.res
	if len(rs) == 0 {
		return
	}
	slices.SortFunc(rs, func(x, y resolvedRec) int { return cmp.Compare(x.serial, y.serial) })
	for len(rs) > 0 {
		block := blockOf(rs[0].serial)
		n := 1
		for n < len(rs) && blockOf(rs[n].serial) == block {
			n++
		}
		a.key = blockKey(a.key[:0], block, seq)
		a.buf = appendResolvedBlock(a.buf[:0], rs[:n], a.resArena)
		_ = pb.Set(a.key, a.buf, nil)
		rs = rs[n:]
	}
	a.res = a.res[:0]
	a.resArena = a.resArena[:0]
}

// checkpoint writes what changed since the last checkpoint, as of the
// last journal record published (the holdings changed since, taken from
// memory, the pending commissions that came or went, the idempotency
// records, the counters), flushes the state database, and deletes the
// journal that is no longer needed.
func (a *applier) checkpoint() error {
	l := a.l
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()

	// The state under the read lock is as of pubSeq: the writer publishes
	// under the write lock.
	l.mu.RLock()
	seq, ctr := l.pubSeq, l.pubCtr
	if seq == a.ckptSeq {
		l.mu.RUnlock()
		return a.truncate()
	}
	keys := l.table.takeDirty()
	vals := make([]holdings.Value, len(keys))
	kept := make([]bool, len(keys))
	for i, k := range keys {
		vals[i], kept[i] = l.table.get(k)
	}
	pending := make(map[uint64]*commission.Commission, len(l.pending))
	for s, c := range l.pending {
		pending[s] = c
	}
	l.mu.RUnlock()

	// The log in chunks and the idempotency records to at least seq.
	for a.applied < seq {
		a.drain()
		if a.applied < seq {
			select {
			case <-a.wake:
			case <-time.After(time.Millisecond):
			}
		}
	}

	// Sized at once, as drain's batch that writes the log out.
	pb := l.db.NewBatchWithSize(a.log.encodedSize() + 64*(len(keys)+len(pending)) + 1<<20)
	for i, k := range keys {
		a.key = holdingKey(a.key[:0], k)
		if !kept[i] {
			_ = pb.Delete(a.key, nil)
			continue
		}
		a.buf = appendHoldingValue(a.buf[:0], vals[i])
		_ = pb.Set(a.key, a.buf, nil)
	}
	for s, c := range pending {
		if _, ok := a.ckptPending[s]; !ok {
			a.key = pendingKey(a.key[:0], c.Client, c.Serial)
			a.buf = appendCommission(a.buf[:0], c)
			_ = pb.Set(a.key, a.buf, nil)
		}
	}
	for s, client := range a.ckptPending {
		if _, ok := pending[s]; !ok {
			a.key = pendingKey(a.key[:0], client, s)
			_ = pb.Delete(a.key, nil)
		}
	}
	for k, r := range a.idemAdd {
		a.buf = appendIdem(a.buf[:0], &r)
		_ = pb.Set([]byte(k), a.buf, nil)
	}
	for k := range a.idemDel {
		_ = pb.Delete([]byte(k), nil)
	}
	a.flushLog(pb)
	a.buf = appendCounters(a.buf[:0], ctr)
	_ = pb.Set(keyMetaState, a.buf, nil)
	a.buf = binary.BigEndian.AppendUint64(a.buf[:0], seq)
	_ = pb.Set(keyMetaCheckpoint, a.buf, nil)
	err := a.commit(pb)
	a.logFlushed()
	if err != nil {
		return err
	}
	a.hook(checkpointCommitted)
	start := time.Now()
	if err := l.flushState(); err != nil {
		return fmt.Errorf("ledger: checkpoint: flushing the state: %w", err)
	}
	l.m.checkpointSeconds.Observe(time.Since(start).Seconds())
	a.hook(checkpointFlushed)
	a.ckptSeq = seq
	l.checkpointed(seq)
	clear(a.ckptPending)
	for s, c := range pending {
		a.ckptPending[s] = c.Client
	}
	clear(a.idemAdd)
	clear(a.idemDel)
	a.sinceCkpt = 0
	a.lastCkpt = time.Now()
	err = a.truncate()
	a.hook(checkpointTruncated)
	return err
}

// The parts of a checkpoint, for the tests that crash between them.
const (
	checkpointCommitted = iota + 1 // the state batch is in the memtable
	checkpointFlushed              // it is on disk
	checkpointTruncated            // the journal it covers is deleted
)

func (a *applier) hook(part int) {
	if h := a.l.opts.checkpointHook; h != nil {
		h(part)
	}
}

// truncate deletes the journal records that the checkpoint covers and whose
// events the relay has published. Callers hold ckptMu.
func (a *applier) truncate() error {
	l := a.l
	relayed := l.relayed.Load()
	below := a.ckptSeq + 1
	l.jmu.Lock()
	n := 0
	for n < len(l.jidx) && l.jidx[n].seq < below && l.jidx[n].lastEvent <= relayed {
		n++
	}
	if n > 0 {
		below = l.jidx[n-1].seq + 1
		l.jidx = append(l.jidx[:0:0], l.jidx[n:]...)
	}
	l.jmu.Unlock()
	if n == 0 || below <= a.truncated {
		return nil
	}
	from := a.truncated
	a.truncated = below
	// Synced, and applied as the writer applies its batches (Ledger.apply),
	// so that a failed WAL write or sync stops the ledger's writes instead
	// of the process.
	err := l.readDB(func() error {
		b := l.jdb.NewBatch()
		defer b.Close()
		_ = b.DeleteRange(journalKey(nil, from), journalKey(nil, below), nil)
		if err := l.apply(b); err != nil {
			return err
		}
		return b.SyncWait()
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("ledger: truncating the journal: %w", err)
	}
	return nil
}

// journalSince is the size of the journal written since the last
// checkpoint: what an open would replay.
func (l *Ledger) journalSince() int {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	return l.jsince
}

// checkpointed records that the checkpoint covers the journal up to seq.
func (l *Ledger) checkpointed(seq uint64) {
	l.checkpointSeq.Store(seq)
	l.jmu.Lock()
	defer l.jmu.Unlock()
	l.jsince = 0
	for i := len(l.jidx) - 1; i >= 0 && l.jidx[i].seq > seq; i-- {
		l.jsince += l.jidx[i].size
	}
}

// journalSize is the size of journal record seq, if in the index.
func (l *Ledger) journalSize(seq uint64) (int, bool) {
	l.jmu.Lock()
	defer l.jmu.Unlock()
	for i := len(l.jidx) - 1; i >= 0 && l.jidx[i].seq >= seq; i-- {
		if l.jidx[i].seq == seq {
			return l.jidx[i].size, true
		}
	}
	return 0, false
}
