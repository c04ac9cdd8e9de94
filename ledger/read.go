package ledger

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
)

// Reads never queue behind the writer: they take a read lock on the
// published state, which holds only what durable batches produced.

// HoldingFilter selects holdings; an empty list matches everything.
type HoldingFilter struct {
	Holders   []string
	Sources   []holdings.Source
	Resources []string
}

// FindHoldings returns the holdings that match f, ordered by holder, source (null
// first) and resource.
func (l *Ledger) FindHoldings(f HoldingFilter) []holdings.Holding {
	var out []holdings.Holding
	keep := func(k holdings.Key, v holdings.Value) bool {
		if (len(f.Sources) == 0 || slices.Contains(f.Sources, k.Source)) &&
			(len(f.Resources) == 0 || slices.Contains(f.Resources, k.Resource)) {
			out = append(out, holdings.Holding{Key: k, Value: v})
		}
		return true
	}
	l.mu.RLock()
	if len(f.Holders) == 0 {
		l.table.each(nil, keep)
	} else {
		for _, h := range f.Holders {
			l.table.each(&h, keep)
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b holdings.Holding) int { return compareKeys(a.Key, b.Key) })
	return slices.CompactFunc(out, func(a, b holdings.Holding) bool { return a.Key == b.Key })
}

func compareKeys(a, b holdings.Key) int {
	if c := cmpString(a.Holder, b.Holder); c != 0 {
		return c
	}
	switch {
	case a.Source.IsNull() && !b.Source.IsNull():
		return -1
	case !a.Source.IsNull() && b.Source.IsNull():
		return 1
	}
	if c := cmpString(a.Source.Name(), b.Source.Name()); c != 0 {
		return c
	}
	return cmpString(a.Resource, b.Resource)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FindHoldingByKey returns one holding's durable value.
func (l *Ledger) FindHoldingByKey(k holdings.Key) (holdings.Value, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.table.get(k)
}

// Pending returns the serials of the commissions pending for client, in
// increasing order.
func (l *Ledger) Pending(client string) []uint64 {
	l.mu.RLock()
	m := l.byClient[client]
	out := make([]uint64, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	l.mu.RUnlock()
	slices.Sort(out)
	return out
}

// Commission returns a copy of a commission pending for client, or
// ErrNotFound (also when it is another client's).
func (l *Ledger) Commission(client string, serial uint64) (commission.Commission, error) {
	l.mu.RLock()
	c := l.pending[serial]
	l.mu.RUnlock()
	if c == nil || c.Client != client {
		return commission.Commission{}, notPending(serial)
	}
	cp := *c
	cp.Provisions = slices.Clone(c.Provisions)
	return cp, nil
}

// Stats are counts of the durable state.
type Stats struct {
	Holdings int
	Pending  int
	Serial   uint64 // the last serial handed out
	// Batches is the number of batches committed, Calls the number of write
	// calls they carried: Calls/Batches is the mean group-commit size.
	Batches, Calls uint64
}

// Stats returns counts of the durable state.
func (l *Ledger) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return Stats{Holdings: l.table.n, Pending: len(l.pending), Serial: l.lastSerial.Load(),
		Batches: l.batches.Load(), Calls: l.batchedCalls.Load()}
}

// LogFilter selects provision log entries. Holder or Serial narrow the scan
// to a range; without either, the log is scanned by serial and filtered.
type LogFilter struct {
	Holder   string // entries of this holder, in log time order
	Serial   uint64 // entries of this commission
	Resource string // only entries of this resource
	Client   string // only entries of commissions of this client
	From, To time.Time
	// After is the cursor of the previous page (LogPage.Next).
	After string
	// Limit is the page size: 100 if zero, at most 1000.
	Limit int
}

// LogPage is one page of the provision log.
type LogPage struct {
	Entries []LogEntry
	// Next is the cursor of the following page, "" on the last one.
	Next string
}

// MaxLogPage is the largest page Log returns.
const MaxLogPage = 1000

// Log queries the provision log. It is written off the critical path from
// the journal (applier.go): Log first waits, up to logWait, until every
// call answered before it was made is in the log. Entries of calls not yet
// durable are never shown.
func (l *Ledger) Log(f LogFilter) (page LogPage, err error) {
	l.ap.wait(l.shownSeq(), logWait)
	err = l.readDB(func() error {
		page, err = l.queryLog(f)
		return err
	})
	return page, err
}

func (l *Ledger) queryLog(f LogFilter) (LogPage, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, MaxLogPage)
	match := func(e *LogEntry) bool {
		return (f.Holder == "" || e.Key.Holder == f.Holder) &&
			(f.Serial == 0 || e.Serial == f.Serial) &&
			(f.Resource == "" || e.Key.Resource == f.Resource) &&
			(f.Client == "" || e.Client == f.Client) &&
			(f.From.IsZero() || !e.LogTime.Before(f.From)) &&
			(f.To.IsZero() || e.LogTime.Before(f.To))
	}
	var after []byte
	if f.After != "" {
		var err error
		if after, err = base64.RawURLEncoding.DecodeString(f.After); err != nil {
			return LogPage{}, invalid("bad cursor")
		}
	}
	switch {
	case f.Serial != 0:
		return l.logOfSerial(f, match)
	case f.Holder != "":
		var cur *logCursor
		if after != nil {
			if len(after) != 19 || after[0] != 'h' {
				return LogPage{}, invalid("bad cursor")
			}
			cur = &logCursor{logTime: int64(beUint64(after[1:])), serial: beUint64(after[9:]),
				index: uint16(after[17])<<8 | uint16(after[18])}
		}
		var from int64
		if !f.From.IsZero() {
			from = f.From.UnixNano()
		}
		var page LogPage
		var last logCursor
		more := false
		err := l.holderLog(f.Holder, cur, from, func(e *LogEntry, c logCursor) bool {
			if !f.To.IsZero() && !e.LogTime.Before(f.To) {
				return false
			}
			if !match(e) {
				return true
			}
			if len(page.Entries) == f.Limit {
				more = true
				return false
			}
			page.Entries = append(page.Entries, *e)
			last = c
			return true
		})
		if err != nil {
			return LogPage{}, fmt.Errorf("ledger: log record: %w", err)
		}
		if more {
			page.Next = base64.RawURLEncoding.EncodeToString(last.append([]byte{'h'}))
		}
		return page, nil
	default:
		// The cursor is the last serial shown, as the key of the layout
		// before blocks ('r' serial), which the ledger still reads.
		var from uint64
		if after != nil {
			if len(after) != 9 || after[0] != prefixResolved {
				return LogPage{}, invalid("bad cursor")
			}
			if from = beUint64(after[1:]) + 1; from == 0 {
				return LogPage{}, nil
			}
		}
		return l.scanResolved(from, f.Limit, match)
	}
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// scanResolved pages through the resolved commissions in order of serial,
// from serial from on, adding the entries that match until a page holds
// limit (or a few more: a commission's entries are never split); the
// cursor is the last serial shown. Commissions are in blocks (blockKey) and,
// in databases written before blocks, one a key (resolvedKey): each block
// of serials is read from both and merged.
func (l *Ledger) scanResolved(from uint64, limit int, match func(*LogEntry) bool) (LogPage, error) {
	one, err := l.db.NewIter(&pebble.IterOptions{LowerBound: resolvedKey(nil, from), UpperBound: []byte{prefixResolved + 1}})
	if err != nil {
		return LogPage{}, err
	}
	defer one.Close()
	blocks, err := l.db.NewIter(&pebble.IterOptions{LowerBound: blockPrefix(nil, blockOf(from)), UpperBound: []byte{prefixBlock + 1}})
	if err != nil {
		return LogPage{}, err
	}
	defer blocks.Close()
	one.First()
	blocks.First()
	var page LogPage
	var recs []serialRec
	for one.Valid() || blocks.Valid() {
		// The next block either iterator is at: its commissions from both.
		block := uint64(math.MaxUint64)
		if one.Valid() {
			if len(one.Key()) != 9 {
				return LogPage{}, fmt.Errorf("ledger: log record: %w", ErrCorrupt)
			}
			block = blockOf(beUint64(one.Key()[1:]))
		}
		if blocks.Valid() {
			if len(blocks.Key()) != 17 {
				return LogPage{}, fmt.Errorf("ledger: log record: %w", ErrCorrupt)
			}
			block = min(block, beUint64(blocks.Key()[1:]))
		}
		recs = recs[:0]
		for ; one.Valid() && blockOf(beUint64(one.Key()[1:])) == block; one.Next() {
			v, err := one.ValueAndErr()
			if err != nil {
				return LogPage{}, err
			}
			recs = append(recs, serialRec{beUint64(one.Key()[1:]), bytes.Clone(v)})
		}
		for ; blocks.Valid() && len(blocks.Key()) == 17 && beUint64(blocks.Key()[1:]) == block; blocks.Next() {
			v, err := blocks.ValueAndErr()
			if err != nil {
				return LogPage{}, err
			}
			v = bytes.Clone(v)
			if err := eachResolved(block, v, func(serial uint64, rec []byte) bool {
				if serial >= from {
					recs = append(recs, serialRec{serial, rec})
				}
				return true
			}); err != nil {
				return LogPage{}, fmt.Errorf("ledger: log record: %w", err)
			}
		}
		slices.SortFunc(recs, func(x, y serialRec) int { return cmp.Compare(x.serial, y.serial) })
		for i, r := range recs {
			es, _, err := decodeResolved(r.serial, r.rec)
			if err != nil {
				return LogPage{}, fmt.Errorf("ledger: log record: %w", err)
			}
			for j := range es {
				if match(&es[j]) {
					page.Entries = append(page.Entries, es[j])
				}
			}
			if len(page.Entries) >= limit {
				if i < len(recs)-1 || one.Valid() || blocks.Valid() {
					page.Next = base64.RawURLEncoding.EncodeToString(resolvedKey(nil, r.serial))
				}
				return page, nil
			}
		}
	}
	if err := one.Error(); err != nil {
		return LogPage{}, err
	}
	return page, blocks.Error()
}

// serialRec is a resolved commission's record (appendResolved).
type serialRec struct {
	serial uint64
	rec    []byte
}

func (l *Ledger) logOfSerial(f LogFilter, match func(*LogEntry) bool) (LogPage, error) {
	rec, err := l.resolvedRecord(f.Serial)
	if rec == nil || err != nil {
		return LogPage{}, err
	}
	es, _, err := decodeResolved(f.Serial, rec)
	if err != nil {
		return LogPage{}, fmt.Errorf("ledger: log record: %w", err)
	}
	var page LogPage
	for i := range es {
		if match(&es[i]) {
			page.Entries = append(page.Entries, es[i])
		}
	}
	return page, nil
}

// resolvedRecord is the record of resolved commission serial (nil: none):
// in its block, or a key of its own in a database written before blocks.
func (l *Ledger) resolvedRecord(serial uint64) ([]byte, error) {
	v, closer, err := l.db.Get(resolvedKey(nil, serial))
	if err == nil {
		defer closer.Close()
		return bytes.Clone(v), nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	block := blockOf(serial)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: blockPrefix(nil, block), UpperBound: blockPrefix(nil, block+1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var rec []byte
	for it.First(); it.Valid() && rec == nil; it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		if err := eachResolved(block, v, func(s uint64, r []byte) bool {
			if s == serial {
				rec = bytes.Clone(r)
			}
			return s < serial
		}); err != nil {
			return nil, fmt.Errorf("ledger: log record: %w", err)
		}
	}
	return rec, it.Error()
}

// logWait bounds how long Log waits for the applier.
const logWait = 10 * time.Second

// shownSeq is the last journal record readers can see: a query of what
// the applier derives waits for it. A batch is shown (publish) a moment
// before it is counted durable (journaled) and handed to the applier, so
// that a reader who saw a change without calling for it (a commission
// expired by the writer, gone from the pending list) would otherwise ask
// before its record is waited for.
func (l *Ledger) shownSeq() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return max(l.pubSeq, l.durableSeq.Load())
}

// Outbox returns up to max durable events after seq, in order: the events
// the relay has not yet published (DeleteOutbox), rendered from the
// journal.
func (l *Ledger) Outbox(after uint64, max int) (evs []Event, err error) {
	err = l.readDB(func() error {
		evs, err = l.outbox(after, max)
		return err
	})
	return evs, err
}

func (l *Ledger) outbox(after uint64, max int) ([]Event, error) {
	after = maxUint(after, l.relayed.Load())
	last := l.durableOutboxSeq.Load()
	if after >= last || max <= 0 {
		return nil, nil
	}
	l.jmu.Lock()
	i, _ := slices.BinarySearchFunc(l.jidx, after+1, func(e jentry, ev uint64) int {
		if e.lastEvent < ev {
			return -1
		}
		return 1
	})
	var seqs []uint64
	for ; i < len(l.jidx) && len(seqs) < max && l.jidx[i].firstEvent <= last; i++ {
		if l.jidx[i].lastEvent >= l.jidx[i].firstEvent {
			seqs = append(seqs, l.jidx[i].seq)
		}
	}
	l.jmu.Unlock()
	var out []Event
	var key []byte
	for _, seq := range seqs {
		key = journalKey(key[:0], seq)
		v, closer, err := l.jdb.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue // truncated meanwhile: the relay had published it
		}
		if err != nil {
			return nil, err
		}
		r, err := decodeJournal(seq, bytes.Clone(v), nil)
		_ = closer.Close()
		if err != nil {
			return nil, fmt.Errorf("ledger: journal record %d: %w", seq, err)
		}
		for _, e := range r.events() {
			if e.Seq > after && e.Seq <= last && len(out) < max {
				out = append(out, e)
			}
		}
		if len(out) >= max {
			break
		}
	}
	return out, nil
}

func maxUint(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// DeleteOutbox records that the events up to and including seq are
// published: the outbox is what comes after, and the journal records holding
// only published events may go once checkpointed. It does not go through the
// writer. The mark is synced, so that a restart does not publish again what
// was acknowledged.
func (l *Ledger) DeleteOutbox(seq uint64) error {
	if seq > l.durableOutboxSeq.Load() {
		return invalid("outbox sequence %d is not durable yet", seq)
	}
	if seq <= l.relayed.Load() {
		return nil
	}
	if l.Failed() != nil {
		return ErrFailed
	}
	return l.readDB(func() error {
		// Applied as the writer applies its batches (Ledger.apply), so that
		// a failed WAL write or sync stops the ledger's writes instead of
		// the process: Pebble exits on a failed synchronous commit.
		b := l.jdb.NewBatch()
		_ = b.Set(keyJournalRelay, appendFixed64(nil, seq), nil)
		err := l.apply(b)
		if err == nil {
			err = b.SyncWait()
		}
		if err != nil {
			l.setFailed(err)
			return fmt.Errorf("%w: recording the published events: %v", ErrFailed, err)
		}
		_ = b.Close()
		for {
			old := l.relayed.Load()
			if old >= seq || l.relayed.CompareAndSwap(old, seq) {
				return nil
			}
		}
	})
}

// OutboxStats describes the outbox: how many durable events wait to be
// published (deleted), and the time of the oldest of them (zero if none).
type OutboxStats struct {
	Depth  uint64
	Oldest time.Time
	// Last is the sequence of the last durable event.
	Last uint64
}

// OutboxStats returns the state of the outbox.
func (l *Ledger) OutboxStats() (OutboxStats, error) {
	st := OutboxStats{Last: l.durableOutboxSeq.Load()}
	relayed := l.relayed.Load()
	if st.Last <= relayed {
		return st, nil
	}
	evs, err := l.Outbox(relayed, 1)
	if err != nil || len(evs) == 0 {
		return st, err
	}
	st.Depth = st.Last - evs[0].Seq + 1
	st.Oldest = evs[0].Time
	return st, nil
}
