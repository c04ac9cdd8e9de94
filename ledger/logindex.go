package ledger

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// The provision log by holder. A commission's log entries reach the state
// database from the journal (applier.go). One key per entry made every
// resolved provision a memtable insert, a flush and compactions' worth of
// work, the largest cost of the whole ledger (DESIGN §7's CPU per call);
// so the applier keeps each holder's new entries in memory (logBuffer) and
// writes them, every checkpoint or once the buffer is large, as one key a
// holder: a chunk of entries in log order, named by its first entry. The
// state database records (keyMetaIndexed) the last journal record whose
// entries are in chunks; after a crash, the records after it fill the
// buffer again. Reads merge the three places an entry may be, in order:
// the per-entry keys of databases written before the journal (prefixLog),
// the chunks (prefixLogChunk), and the buffer.

// logCursor orders a holder's log entries: log time, serial, provision.
type logCursor struct {
	logTime int64
	serial  uint64
	index   uint16
}

func cursorOf(e *LogEntry, index int) logCursor {
	return logCursor{logTime: e.LogTime.UnixNano(), serial: e.Serial, index: uint16(index)}
}

func (c logCursor) append(b []byte) []byte {
	b = appendFixed64(b, uint64(c.logTime))
	b = appendFixed64(b, c.serial)
	return binary.BigEndian.AppendUint16(b, c.index)
}

func (c logCursor) less(d logCursor) bool {
	if c.logTime != d.logTime {
		return c.logTime < d.logTime
	}
	if c.serial != d.serial {
		return c.serial < d.serial
	}
	return c.index < d.index
}

// holderEntry is an entry in a holder's log with its place.
type holderEntry struct {
	at LogEntry
	c  logCursor
}

// logBuffer holds the log entries not yet in chunks, by holder, in log
// order, each encoded as in a chunk (appendChunkEntry), so that a flush
// copies bytes. The applier adds to it; readers decode from it.
type logBuffer struct {
	mu sync.RWMutex
	by map[string]*holderBuf
	n  int
	// scratch gathers one journal record's entries, to be sorted: the
	// commissions one batch resolves share its log time and may come in
	// any order of serials.
	scratch []scratchEntry
	enc     []byte
}

type holderBuf struct {
	first    logCursor // the least entry's place
	last     logCursor // the greatest entry's place
	n        int
	b        []byte
	unsorted bool // an entry came after a greater one (sortedEntries)
}

type scratchEntry struct {
	holder string
	c      logCursor
	e      *LogEntry
}

// stage adds an entry of the record being applied; commit adds them all.
func (lb *logBuffer) stage(holder string, e *LogEntry, index int) {
	lb.scratch = append(lb.scratch, scratchEntry{holder: holder, c: cursorOf(e, index), e: e})
}

// commit adds the staged entries, in log order, to their holders.
func (lb *logBuffer) commit() {
	if len(lb.scratch) == 0 {
		return
	}
	lb.mu.Lock()
	if lb.by == nil {
		lb.by = make(map[string]*holderBuf)
	}
	var hb *holderBuf
	for i := range lb.scratch {
		x := &lb.scratch[i]
		if hb == nil || x.holder != lb.scratch[i-1].holder {
			hb = lb.by[x.holder]
			if hb == nil {
				hb = &holderBuf{}
				lb.by[strings.Clone(x.holder)] = hb
			}
		}
		if hb.n == 0 {
			hb.first, hb.last = x.c, x.c
		} else if x.c.less(hb.last) {
			// The commissions one batch resolves share its log time and
			// may come in any order of serials: sorted when read or
			// flushed (sortedEntries).
			hb.unsorted = true
			if x.c.less(hb.first) {
				hb.first = x.c
			}
		} else {
			hb.last = x.c
		}
		hb.b = appendChunkEntry(hb.b, x.c, x.e)
		hb.n++
		lb.n++
	}
	lb.mu.Unlock()
	clear(lb.scratch)
	lb.scratch = lb.scratch[:0]
}

// sortEntries puts entries in log order, keeping the order of equals.
func sortEntries(es []holderEntry) {
	slices.SortStableFunc(es, func(x, y holderEntry) int {
		switch {
		case x.c.less(y.c):
			return -1
		case y.c.less(x.c):
			return 1
		}
		return 0
	})
}

// sortedEntries are the encoded entries of hb in log order.
func (hb *holderBuf) sortedEntries(holder string) ([]byte, error) {
	if !hb.unsorted {
		return hb.b, nil
	}
	es, err := decodeChunkEntries(holder, hb.b, -1)
	if err != nil {
		return nil, err
	}
	sortEntries(es)
	var b []byte
	for i := range es {
		b = appendChunkEntry(b, es[i].c, &es[i].at)
	}
	hb.b, hb.unsorted = b, false
	return b, nil
}

// entries returns holder's buffered entries after c. Callers hold mu's
// read lock (holderLog holds it over the chunks and the buffer both).
func (lb *logBuffer) entries(holder string, after *logCursor) ([]holderEntry, error) {
	hb := lb.by[holder]
	var b []byte
	if hb != nil && (after == nil || after.less(hb.last)) {
		if hb.unsorted {
			// Sorted as the records' order left them: a copy, since the
			// buffer is only changed under the write lock.
			es, err := decodeChunkEntries(holder, hb.b, -1)
			if err != nil {
				return nil, err
			}
			sortEntries(es)
			if after != nil {
				i, _ := slices.BinarySearchFunc(es, *after, func(e holderEntry, c logCursor) int {
					if c.less(e.c) {
						return 1
					}
					return -1
				})
				es = es[i:]
			}
			return es, nil
		}
		b = hb.b
	}
	if b == nil {
		return nil, nil
	}
	// b is only ever appended to: what was read stays valid.
	es, err := decodeChunkEntries(holder, b, -1)
	if err != nil || after == nil {
		return es, err
	}
	i, _ := slices.BinarySearchFunc(es, *after, func(e holderEntry, c logCursor) int {
		if c.less(e.c) {
			return 1
		}
		return -1
	})
	return es[i:], nil
}

// flush writes every buffered holder's entries to pb as one chunk each and
// empties the buffer. Callers hold mu until pb is committed, so that a
// reader sees the entries either in the buffer or in chunks, never in
// neither or both. A holder's buffer is kept, emptied, for its next
// entries (growing one from nothing again, for tens of thousands of holders
// a flush, cost a few per cent of the engine's CPU); one that had none
// since the last flush goes.
func (lb *logBuffer) flush(pb *pebble.Batch) {
	var key []byte
	for holder, hb := range lb.by {
		if hb.n == 0 {
			delete(lb.by, holder)
			continue
		}
		b, err := hb.sortedEntries(holder)
		if err != nil {
			// The applier encoded them a moment ago: a bug.
			panic("ledger: the log buffer of " + holder + " does not decode: " + err.Error())
		}
		key = logChunkKey(key[:0], holder, hb.first)
		// The chunk is its header and the entries as buffered, copied
		// once, into the batch.
		lb.enc = append(lb.enc[:0], recordVersion)
		lb.enc = appendUvarint(lb.enc, uint64(hb.n))
		op := pb.SetDeferred(len(key), len(lb.enc)+len(b))
		copy(op.Key, key)
		copy(op.Value[copy(op.Value, lb.enc):], b)
		_ = op.Finish()
		*hb = holderBuf{b: hb.b[:0]}
	}
	lb.n = 0
}

// encodedSize is about the bytes flush writes: each holder's entries, key
// and chunk header, with a quarter more for the entries added meanwhile.
func (lb *logBuffer) encodedSize() int {
	lb.mu.RLock()
	defer lb.mu.RUnlock()
	n := 0
	for holder, hb := range lb.by {
		n += len(hb.b) + len(holder) + 48
	}
	return n + n/4
}

func (lb *logBuffer) size() int {
	lb.mu.RLock()
	defer lb.mu.RUnlock()
	return lb.n
}

// A chunk: version, the number of entries, then each entry: its place (log
// time, serial, index) and the entry as appendLogEntry writes it,
// length-prefixed.
func appendChunkEntry(b []byte, c logCursor, e *LogEntry) []byte {
	b = c.append(b)
	n := len(b)
	b = append(b, 0) // the length, one byte if it fits
	b = appendLogEntry(b, e)
	if l := len(b) - n - 1; l < 0x80 {
		b[n] = byte(l)
	} else {
		var lb [binary.MaxVarintLen64]byte
		k := binary.PutUvarint(lb[:], uint64(l))
		b = append(b, lb[:k-1]...)
		copy(b[n+k:], b[n+1:len(b)-k+1])
		copy(b[n:], lb[:k])
	}
	return b
}

func decodeLogChunk(holder string, v []byte) ([]holderEntry, error) {
	d := decoder{b: v}
	checkVersion(&d)
	n := d.count(19)
	if d.err != nil {
		return nil, d.err
	}
	return decodeChunkEntries(holder, d.b, n)
}

// decodeChunkEntries decodes the entries of a chunk: n of them, or as many
// as b holds if n < 0.
func decodeChunkEntries(holder string, b []byte, n int) ([]holderEntry, error) {
	d := decoder{b: b}
	var out []holderEntry
	if n >= 0 {
		out = make([]holderEntry, 0, n)
	}
	for i := 0; (n < 0 && len(d.b) > 0) || i < n; i++ {
		var c logCursor
		c.logTime = int64(d.fixed64())
		c.serial = d.fixed64()
		if d.err == nil && len(d.b) >= 2 {
			c.index = binary.BigEndian.Uint16(d.b)
			d.b = d.b[2:]
		} else {
			d.fail()
		}
		ev := d.bytes()
		if d.err != nil {
			break
		}
		e, err := decodeLogEntry(logKey(nil, holder, c.logTime, c.serial, int(c.index)), ev)
		if err != nil {
			return nil, err
		}
		out = append(out, holderEntry{at: e, c: c})
	}
	return out, d.done()
}

// holderLog calls fn with holder's entries after cursor (all, if nil) and
// from lower (a log time; 0: the start), in log order, until fn returns
// false: the per-entry keys, then the chunks, then the buffer.
func (l *Ledger) holderLog(holder string, after *logCursor, from int64, fn func(e *LogEntry, c logCursor) bool) error {
	start := logCursor{logTime: from}
	if after != nil && start.less(*after) {
		start = *after
	}
	keep := func(c logCursor) bool { return after == nil || after.less(c) }

	// The chunks and the buffer are read under the buffer's read lock: a
	// flush moves entries from one to the other under its write lock.
	l.ap.log.mu.RLock()
	defer l.ap.log.mu.RUnlock()

	// Per-entry keys (databases written before the journal).
	prefix := logPrefix(nil, holder)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: start.append(bytes.Clone(prefix)), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		e, err := decodeLogEntry(it.Key(), v)
		if err != nil {
			_ = it.Close()
			return err
		}
		_, lt, serial, index, _ := decodeLogKey(it.Key())
		c := logCursor{logTime: lt, serial: serial, index: uint16(index)}
		if keep(c) && !fn(&e, c) {
			return it.Close()
		}
	}
	if err := it.Close(); err != nil {
		return err
	}

	// Chunks: from the last one that starts at or before start.
	cprefix := logChunkPrefix(nil, holder)
	it, err = l.db.NewIter(&pebble.IterOptions{LowerBound: cprefix, UpperBound: prefixEnd(cprefix)})
	if err != nil {
		return err
	}
	seek := logChunkKey(nil, holder, start)
	if !it.SeekLT(append(seek, 0xff)) {
		it.First()
	}
	for ; it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		es, err := decodeLogChunk(holder, v)
		if err != nil {
			_ = it.Close()
			return err
		}
		for i := range es {
			if es[i].c.less(start) || !keep(es[i].c) {
				continue
			}
			if !fn(&es[i].at, es[i].c) {
				return it.Close()
			}
		}
	}
	if err := it.Close(); err != nil {
		return err
	}

	// The buffer.
	es, err := l.ap.log.entries(holder, &start)
	if err != nil {
		return err
	}
	for i := range es {
		if !keep(es[i].c) {
			continue
		}
		if !fn(&es[i].at, es[i].c) {
			return nil
		}
	}
	return nil
}
