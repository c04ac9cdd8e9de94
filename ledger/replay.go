package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// replay reads the whole journal: every record joins the journal index,
// and those after the checkpoint (ckptSeq) are applied to memory, as the
// writer published them, and to the applier, which rewrites what the state
// database lost (the log after indexSeq, identity's records) and gathers
// them for the next checkpoint. It returns how many records it applied.
func (l *Ledger) replay(ckptSeq, indexSeq uint64) (int, error) {
	keep := l.opts.KeepJournalTo
	if l.opts.Reappend != nil {
		var err error
		if keep, err = l.reappend(keep); err != nil {
			return 0, err
		}
	}
	if keep > 0 {
		if keep < ckptSeq {
			return 0, fmt.Errorf("ledger: the state is checkpointed at record %d, after the log's end %d: %w", ckptSeq, keep, ErrPastLog)
		}
		b := l.jdb.NewBatch()
		_ = b.DeleteRange(journalKey(nil, keep+1), []byte{prefixJournal + 1}, nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return 0, fmt.Errorf("ledger: dropping the journal after %d: %w", keep, err)
		}
	}
	if l.opts.InLog != nil {
		if err := l.dropNotInLog(ckptSeq); err != nil {
			return 0, err
		}
	}
	slices.SortFunc(l.w.idemFIFO, func(a, b idemEntry) int { return a.created.Compare(b.created) })
	it, err := l.jdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixJournal}, UpperBound: []byte{prefixJournal + 1}})
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	defer it.Close()
	pb := l.db.NewBatch()
	n, first, last := 0, uint64(0), ckptSeq
	for it.First(); it.Valid(); it.Next() {
		seq, ok := journalSeqOf(it.Key())
		if !ok {
			return 0, fmt.Errorf("ledger: journal key %x: %w", it.Key(), ErrCorrupt)
		}
		if first == 0 {
			first = seq
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("ledger: %w", err)
		}
		v = bytes.Clone(v)
		if seq <= ckptSeq {
			h, err := decodeJournalHeader(v)
			if err != nil {
				return 0, fmt.Errorf("ledger: journal record %d: %w", seq, err)
			}
			l.jidx = append(l.jidx, jentry{seq: seq, firstEvent: h.firstEvent, lastEvent: h.ctr.OutboxSeq, size: len(v)})
			continue
		}
		if seq != last+1 {
			return 0, fmt.Errorf("ledger: journal record %d follows %d: %w", seq, last, ErrCorrupt)
		}
		r, err := decodeJournal(seq, v, l.w.intern)
		if err != nil {
			return 0, fmt.Errorf("ledger: journal record %d: %w", seq, err)
		}
		if r.chained && r.prevTerm != l.w.ctr.Term {
			return 0, fmt.Errorf("ledger: journal record %d was built on a record of term %x, record %d is of term %x: %w",
				seq, r.prevTerm, last, l.w.ctr.Term, ErrCorrupt)
		}
		l.jidx = append(l.jidx, jentry{seq: seq, firstEvent: r.firstEvent, lastEvent: r.ctr.OutboxSeq, size: len(v)})
		l.replayRecord(r)
		l.ap.apply(pb, r)
		last = seq
		n++
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("ledger: reading the journal: %w", err)
	}
	if indexSeq > last {
		return 0, fmt.Errorf("ledger: the log is indexed to record %d, the journal ends at %d: %w", indexSeq, last, ErrCorrupt)
	}
	if err := l.ap.commit(pb); err != nil {
		return 0, err
	}
	l.ap.truncated = max(first, 1)
	l.w.seq = last
	l.indexedSeq.Store(last)
	return n, nil
}

// reappend gives the cluster's log again the journal's records after the
// last one it holds as this journal does (Options.Reappend), in order,
// while the log takes them, and returns the last record the log now holds
// from the journal (end, if none). The log's last record, end, may be
// there in part (its last messages lost); and on a node killed while it
// led, the journal's last records may be its own while the log's are
// another leader's: those are at most maxPipelineDepth, the batches that
// may be in flight at once.
func (l *Ledger) reappend(end uint64) (uint64, error) {
	from, found := end, false // the last record the log holds as the journal does
	for from > 0 && end-from < maxPipelineDepth && l.opts.InLog != nil {
		v, closer, err := l.jdb.Get(journalKey(nil, from))
		if errors.Is(err, pebble.ErrNotFound) {
			// Below the journal's first record: in the state, which
			// takes only records the log acknowledged.
			found = true
			break
		}
		if err != nil {
			return 0, fmt.Errorf("ledger: journal record %d: %w", from, err)
		}
		in, err := l.opts.InLog(from, v)
		_ = closer.Close()
		if err != nil {
			return 0, fmt.Errorf("ledger: is journal record %d the log's: %w", from, err)
		}
		if in {
			found = true
			break
		}
		from--
	}
	if !found && from > 0 {
		return end, nil
	}
	it, err := l.jdb.NewIter(&pebble.IterOptions{LowerBound: journalKey(nil, from+1), UpperBound: []byte{prefixJournal + 1}})
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	defer it.Close()
	keep := from
	for it.First(); it.Valid(); it.Next() {
		seq, ok := journalSeqOf(it.Key())
		if !ok || seq != keep+1 {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("ledger: %w", err)
		}
		in, err := l.opts.Reappend(seq, v)
		if err != nil {
			return 0, fmt.Errorf("ledger: giving the cluster's log journal record %d again: %w", seq, err)
		}
		if !in {
			break
		}
		keep = seq
	}
	if keep > end {
		l.log.Warn().Uint64("first", end+1).Uint64("last", keep).
			Msg("gave the cluster's log again the journal records past its end: its servers had lost them (a power loss of a majority of them)")
	}
	if keep < end {
		return end, it.Error() // what the log holds of end is dropped as before
	}
	return keep, it.Error()
}

// dropNotInLog drops the journal's last records that the cluster's log
// does not hold (Options.InLog), from the last back to one it holds. The
// records up to ckptSeq are in the state, which only takes acknowledged
// ones: they are not asked about.
//
// The log may hold a record of this node's last term as leader and yet
// not have it in the cluster's chain: the log refused one before it and
// took it (journalChained), and the node was killed before it learned of
// the refusal. Such a record comes at most maxPipelineDepth-1 records after
// the refused one (no more batches are in flight at once), so a record is
// kept only with the maxPipelineDepth-1 before it held by the log too, or the
// checkpoint reached.
func (l *Ledger) dropNotInLog(ckptSeq uint64) error {
	it, err := l.jdb.NewIter(&pebble.IterOptions{LowerBound: journalKey(nil, ckptSeq+1), UpperBound: []byte{prefixJournal + 1}})
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	keep, last := ckptSeq, uint64(0)
	top, run := uint64(0), 0 // the last of the records the log holds in a row, and how many
	for it.Last(); it.Valid(); it.Prev() {
		seq, ok := journalSeqOf(it.Key())
		if !ok {
			_ = it.Close()
			return fmt.Errorf("ledger: journal key %x: %w", it.Key(), ErrCorrupt)
		}
		last = max(last, seq)
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("ledger: %w", err)
		}
		in, err := l.opts.InLog(seq, v)
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("ledger: is journal record %d the log's: %w", seq, err)
		}
		if !in {
			if run > 0 {
				l.log.Warn().Uint64("seq", top).Uint64("refused", seq).
					Msg("dropping journal records the cluster's log holds after one of the same term it refused: they are not the cluster's")
			}
			top, run = 0, 0
			l.log.Warn().Uint64("seq", seq).Msg("dropping a journal record the cluster's log does not hold: it was never acknowledged")
			continue
		}
		if run == 0 {
			top = seq
		}
		run++
		if run == maxPipelineDepth || seq == ckptSeq+1 {
			break
		}
	}
	if run > 0 {
		keep = top
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("ledger: reading the journal: %w", err)
	}
	if last <= keep {
		return nil
	}
	b := l.jdb.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(journalKey(nil, keep+1), []byte{prefixJournal + 1}, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("ledger: dropping the journal after %d: %w", keep, err)
	}
	return nil
}

// replayRecord applies a journal record to memory: what publish does for
// the batch the record came from.
func (l *Ledger) replayRecord(r *jrecord) {
	w := &l.w
	for i := range r.calls {
		c := &r.calls[i]
		switch c.kind {
		case callIssue:
			vals := c.after
			if c.final != nil {
				vals = c.final
			}
			for i, p := range c.c.Provisions {
				l.table.set(w.internKey(p.Key), vals[i])
			}
			if c.final == nil {
				l.addPending(c.c)
			}
			if c.idemKey != "" {
				w.rememberIdem(c.idemKey, c.idem)
			}
		case callResolve:
			for i, p := range c.c.Provisions {
				l.table.set(w.internKey(p.Key), c.after[i])
			}
			if pc := l.pending[c.c.Serial]; pc != nil {
				l.removePending(pc)
			}
		case callSetHoldings:
			for _, h := range c.holdings {
				l.table.set(w.internKey(h.Key), h.After)
			}
		case callDeleteHoldings:
			for _, h := range c.holdings {
				l.table.delete(h.Key)
			}
		case callPruneIdem:
			gone := make(map[string]bool, len(c.keys))
			for _, k := range c.keys {
				gone[k] = true
				delete(w.idem, k)
			}
			w.idemFIFO = slices.DeleteFunc(w.idemFIFO, func(e idemEntry) bool { return gone[e.key] })
		}
	}
	w.ctr = r.ctr
	w.seq = r.seq
}

// decodeJournalHeader decodes the header of a journal record only.
func decodeJournalHeader(v []byte) (*jrecord, error) {
	d := decoder{b: v}
	r := &jrecord{}
	d.journalHeader(r)
	return r, d.err
}

// migrateOutbox carries the events of an outbox of the older layout (one
// record per event in the state database, before the journal) into the
// journal, as one record of them, and deletes them from the state database.
// A crash between the two leaves both: the journal then has records, and
// only the deletion is done again.
func (l *Ledger) migrateOutbox(ctr counters) error {
	var evs []Event
	if err := l.scan(prefixOutbox, func(k, v []byte) error {
		e, err := DecodeEvent(k, v)
		if err != nil {
			return err
		}
		evs = append(evs, e)
		return nil
	}); err != nil {
		return fmt.Errorf("ledger: reading the outbox: %w", err)
	}
	if len(evs) == 0 {
		return nil
	}
	it, err := l.jdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixJournal}, UpperBound: []byte{prefixJournal + 1}})
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	migrated := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if !migrated {
		r := l.jdb.NewBatch()
		rec := appendJournalHeader(nil, l.opts.Now(), ctr, ctr.Term, evs[0].Seq, 1)
		rec = append(rec, callEvents)
		rec = appendUvarint(rec, uint64(len(evs)))
		for i := range evs {
			rec = appendUvarint(rec, evs[i].Seq)
			ev := appendEvent(nil, &evs[i])
			rec = appendUvarint(rec, uint64(len(ev)))
			rec = append(rec, ev...)
		}
		_ = r.Set(journalKey(nil, 1), rec, nil)
		seq := appendFixed64(nil, evs[0].Seq-1)
		_ = r.Set(keyJournalRelay, seq, nil)
		if err := r.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("ledger: moving the outbox into the journal: %w", err)
		}
		l.relayed.Store(evs[0].Seq - 1)
		l.log.Info().Int("events", len(evs)).Msg("the outbox of the older layout moved into the journal")
	}
	if err := l.db.DeleteRange([]byte{prefixOutbox}, []byte{prefixOutbox + 1}, pebble.NoSync); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return l.db.Flush()
}
