package ledger

import (
	"bytes"
	"encoding/binary"
	"slices"
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
// order. The applier adds to it; readers copy from it.
type logBuffer struct {
	mu  sync.RWMutex
	by  map[string][]holderEntry
	n   int
	buf []byte
}

func (lb *logBuffer) add(holder string, e holderEntry) {
	lb.mu.Lock()
	if lb.by == nil {
		lb.by = make(map[string][]holderEntry)
	}
	// In log order: the commissions one batch resolves share its log time
	// and may come in any order of serials.
	es := append(lb.by[holder], e)
	for i := len(es) - 1; i > 0 && es[i].c.less(es[i-1].c); i-- {
		es[i], es[i-1] = es[i-1], es[i]
	}
	lb.by[holder] = es
	lb.n++
	lb.mu.Unlock()
}

// entries returns a copy of holder's buffered entries after c.
func (lb *logBuffer) entries(holder string, after *logCursor) []holderEntry {
	lb.mu.RLock()
	defer lb.mu.RUnlock()
	es := lb.by[holder]
	if after != nil {
		i, _ := slices.BinarySearchFunc(es, *after, func(e holderEntry, c logCursor) int {
			if c.less(e.c) {
				return 1
			}
			return -1
		})
		es = es[i:]
	}
	return slices.Clone(es)
}

// flush writes every buffered holder's entries to pb as one chunk each and
// empties the buffer.
func (lb *logBuffer) flush(pb *pebble.Batch) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var key []byte
	for holder, es := range lb.by {
		key = logChunkKey(key[:0], holder, es[0].c)
		lb.buf = appendLogChunk(lb.buf[:0], es)
		_ = pb.Set(key, lb.buf, nil)
	}
	clear(lb.by)
	lb.n = 0
}

func (lb *logBuffer) size() int {
	lb.mu.RLock()
	defer lb.mu.RUnlock()
	return lb.n
}

// A chunk: version, the number of entries, then each entry's place (log
// time, serial, index) and the entry as appendLogEntry writes it.
func appendLogChunk(b []byte, es []holderEntry) []byte {
	b = append(b, recordVersion)
	b = appendUvarint(b, uint64(len(es)))
	for i := range es {
		b = es[i].c.append(b)
		v := appendLogEntry(nil, &es[i].at)
		b = appendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func decodeLogChunk(holder string, v []byte) ([]holderEntry, error) {
	d := decoder{b: v}
	checkVersion(&d)
	n := d.count(19)
	out := make([]holderEntry, 0, n)
	for range n {
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
	for _, e := range l.ap.log.entries(holder, &start) {
		if !keep(e.c) {
			continue
		}
		if !fn(&e.at, e.c) {
			return nil
		}
	}
	return nil
}
