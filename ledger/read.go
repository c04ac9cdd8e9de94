package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
)

// Reads never queue behind the writer: they take a read lock on the
// published state, which holds only what durable batches produced.

// QuotaFilter selects holdings; an empty list matches everything.
type QuotaFilter struct {
	Holders   []string
	Sources   []holdings.Source
	Resources []string
}

// Quotas returns the holdings that match f, ordered by holder, source (null
// first) and resource.
func (l *Ledger) Quotas(f QuotaFilter) []holdings.Holding {
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

// Holding returns one holding's durable value.
func (l *Ledger) Holding(k holdings.Key) (holdings.Value, bool) {
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

// Log queries the provision log. Entries whose batch is not yet durable are
// never shown.
func (l *Ledger) Log(f LogFilter) (page LogPage, err error) {
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
	watermark := l.durableLogTime.Load()
	match := func(e *LogEntry) bool {
		lt := e.LogTime.UnixNano()
		return lt <= watermark &&
			(f.Holder == "" || e.Key.Holder == f.Holder) &&
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
		prefix := logPrefix(nil, f.Holder)
		lower := prefix
		if !f.From.IsZero() {
			lower = appendFixed64(bytes.Clone(prefix), uint64(f.From.UnixNano()))
		}
		upper := prefixEnd(prefix)
		if !f.To.IsZero() {
			upper = appendFixed64(bytes.Clone(prefix), uint64(f.To.UnixNano()))
		}
		if after != nil {
			if !bytes.HasPrefix(after, prefix) {
				return LogPage{}, invalid("bad cursor")
			}
			after = append(after, 0) // the next key after the cursor
			if bytes.Compare(after, lower) > 0 {
				lower = after
			}
		}
		return l.scanLog(lower, upper, f.Limit, func(k, v []byte, out []LogEntry) ([]LogEntry, error) {
			e, err := decodeLogEntry(k, v)
			if err != nil {
				return out, err
			}
			if match(&e) {
				out = append(out, e)
			}
			return out, nil
		})
	default:
		lower := []byte{prefixResolved}
		if after != nil {
			lower = append(after, 0)
		}
		return l.scanLog(lower, []byte{prefixResolved + 1}, f.Limit, func(k, v []byte, out []LogEntry) ([]LogEntry, error) {
			if len(k) != 9 {
				return out, ErrCorrupt
			}
			es, _, err := decodeResolved(beUint64(k[1:]), v)
			if err != nil {
				return out, err
			}
			for i := range es {
				if match(&es[i]) {
					out = append(out, es[i])
				}
			}
			return out, nil
		})
	}
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// scanLog walks [lower, upper) adding entries until a page is full; the
// cursor is the last key visited. A page may hold a few more than limit when
// one record (a resolved commission) holds many entries.
func (l *Ledger) scanLog(lower, upper []byte, limit int,
	add func(k, v []byte, out []LogEntry) ([]LogEntry, error)) (LogPage, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return LogPage{}, err
	}
	defer it.Close()
	var page LogPage
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return LogPage{}, err
		}
		if page.Entries, err = add(it.Key(), v, page.Entries); err != nil {
			return LogPage{}, fmt.Errorf("ledger: log record: %w", err)
		}
		if len(page.Entries) >= limit {
			if it.Next() {
				it.Prev()
				page.Next = base64.RawURLEncoding.EncodeToString(it.Key())
			}
			break
		}
	}
	return page, it.Error()
}

func (l *Ledger) logOfSerial(f LogFilter, match func(*LogEntry) bool) (LogPage, error) {
	v, closer, err := l.db.Get(resolvedKey(nil, f.Serial))
	if errors.Is(err, pebble.ErrNotFound) {
		return LogPage{}, nil
	}
	if err != nil {
		return LogPage{}, err
	}
	defer closer.Close()
	es, _, err := decodeResolved(f.Serial, v)
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

// Outbox returns up to max durable outbox events after seq, in order.
func (l *Ledger) Outbox(after uint64, max int) (evs []Event, err error) {
	err = l.readDB(func() error {
		evs, err = l.outbox(after, max)
		return err
	})
	return evs, err
}

func (l *Ledger) outbox(after uint64, max int) ([]Event, error) {
	watermark := l.durableOutboxSeq.Load()
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: outboxKey(nil, after+1),
		UpperBound: outboxKey(nil, watermark+1),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Event
	for it.First(); it.Valid() && len(out) < max; it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		e, err := DecodeEvent(it.Key(), v)
		if err != nil {
			return nil, fmt.Errorf("ledger: outbox: %w", err)
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// DeleteOutbox removes the outbox events up to and including seq, once they
// are published. It does not go through the writer: the writer never touches
// outbox entries once written.
func (l *Ledger) DeleteOutbox(seq uint64) error {
	if seq > l.durableOutboxSeq.Load() {
		return invalid("outbox sequence %d is not durable yet", seq)
	}
	// Each delete starts where the last one ended. Ranges that all start
	// at 0 overlap each other: the memtable then fragments them into
	// O(n²) keys, again for every iterator opened after each new one, so
	// memory and latency grew with every delete until the memtable was
	// flushed (found by TestSoak).
	from := l.outboxDeleted.Load()
	if seq+1 <= from {
		return nil
	}
	if l.Failed() != nil {
		return ErrFailed
	}
	return l.readDB(func() error {
		// Applied as the writer applies its batches (Ledger.apply), so that
		// a failed WAL write or sync stops the ledger's writes instead of
		// the process: Pebble exits on a failed synchronous commit.
		//
		// A few events are deleted one key each: every range tombstone in
		// the memtable is fragmented again for each iterator opened after a
		// new one is added, so the relay's reads grew slower over each
		// memtable's life (measured: 5 outbox reads and a delete of 20
		// events went from 0.40 to 0.68 ms over 3,000 rounds with ranges,
		// and stayed at 0.32–0.35 ms with point deletes). A backlog (after
		// NATS was away) is one range.
		b := l.db.NewBatch()
		if seq-from < outboxPointDeleteMax {
			var k []byte
			for s := from; s <= seq; s++ {
				k = outboxKey(k[:0], s)
				if err := b.Delete(k, nil); err != nil {
					return err
				}
			}
		} else if err := b.DeleteRange(outboxKey(nil, from), outboxKey(nil, seq+1), nil); err != nil {
			return err
		}
		err := l.apply(b)
		if err == nil {
			err = b.SyncWait()
		}
		if err != nil {
			l.setFailed(err)
			return fmt.Errorf("%w: deleting the outbox: %v", ErrFailed, err)
		}
		_ = b.Close()
		for {
			old := l.outboxDeleted.Load()
			if old >= seq+1 || l.outboxDeleted.CompareAndSwap(old, seq+1) {
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
	var st OutboxStats
	err := l.readDB(func() error {
		st.Last = l.durableOutboxSeq.Load()
		it, err := l.db.NewIter(&pebble.IterOptions{
			LowerBound: outboxKey(nil, l.outboxDeleted.Load()),
			UpperBound: outboxKey(nil, st.Last+1),
		})
		if err != nil {
			return err
		}
		defer it.Close()
		if !it.First() {
			return it.Error()
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		first, err := DecodeEvent(it.Key(), v)
		if err != nil {
			return fmt.Errorf("ledger: outbox: %w", err)
		}
		st.Depth = st.Last - first.Seq + 1
		st.Oldest = first.Time
		return nil
	})
	return st, err
}

// outboxPointDeleteMax is the most events DeleteOutbox deletes one key each;
// more are deleted as one range.
const outboxPointDeleteMax = 1024
