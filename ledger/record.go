package ledger

import (
	"time"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
)

// recordVersion leads every record value. A later layout takes the next
// number and the decoders keep reading the old one.
const recordVersion = 1

func checkVersion(d *decoder) {
	if d.byte() != recordVersion {
		d.fail()
	}
}

// Holding values.

func appendHoldingValue(b []byte, v holdings.Value) []byte {
	return appendValue(append(b, recordVersion), v)
}

func decodeHoldingValue(b []byte) (holdings.Value, error) {
	d := decoder{b: b}
	checkVersion(&d)
	v := d.value()
	return v, d.done()
}

// Pending commissions.

func appendCommission(b []byte, c *commission.Commission) []byte {
	b = append(b, recordVersion)
	b = appendString(b, c.Client)
	b = appendString(b, c.Name)
	b = appendTime(b, c.IssueTime)
	b = appendTime(b, c.Deadline)
	b = appendUvarint(b, uint64(len(c.Provisions)))
	for _, p := range c.Provisions {
		b = appendKeyParts(b, p.Key)
		b = appendVarint(b, p.Quantity)
	}
	return b
}

func decodeCommission(serial uint64, b []byte, intern func([]byte) string) (*commission.Commission, error) {
	d := decoder{b: b, intern: intern}
	checkVersion(&d)
	c := &commission.Commission{Serial: serial}
	c.Client = d.string()
	c.Name = d.string()
	c.IssueTime = d.time()
	c.Deadline = d.time()
	n := d.count(5)
	if n > 0 {
		c.Provisions = make([]holdings.Provision, n)
	}
	for i := range c.Provisions {
		c.Provisions[i].Key = d.key()
		c.Provisions[i].Quantity = d.varint()
	}
	return c, d.done()
}

// LogEntry is one line of the provision log: the change one provision of a
// resolved commission made to one holding.
type LogEntry struct {
	Serial    uint64
	Client    string
	Name      string
	IssueTime time.Time
	LogTime   time.Time
	Key       holdings.Key
	Quantity  int64
	// After is the holding's limit and usage once the provision was resolved.
	After holdings.Value
	// Reason is "ACCEPT:" or "REJECT:" followed by the caller's reason.
	Reason string
}

// Resolved commissions: the header and every log entry, keyed by serial.

// appendResolved encodes the header h and the entries es (which may be
// empty: a commission without provisions still resolves).
func appendResolved(b []byte, h LogEntry, es []LogEntry) []byte {
	b = append(b, recordVersion)
	b = appendString(b, h.Client)
	b = appendString(b, h.Name)
	b = appendTime(b, h.IssueTime)
	b = appendTime(b, h.LogTime)
	b = appendString(b, h.Reason)
	b = appendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = appendChange(b, e.Key, e.Quantity, e.After)
	}
	return b
}

// appendResolvedBlock appends the value of a block's key: the resolved
// commissions rs, in order of serial, each its serial's offset in the
// block and its record (appendResolved).
func appendResolvedBlock(b []byte, rs []resolvedRec, arena []byte) []byte {
	b = append(b, recordVersion)
	b = appendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = append(b, byte(r.serial))
		b = appendUvarint(b, uint64(r.end-r.start))
		b = append(b, arena[r.start:r.end]...)
	}
	return b
}

// resolvedRec is a resolved commission's record (appendResolved) in an
// arena.
type resolvedRec struct {
	serial     uint64
	start, end int
}

// eachResolved calls fn with each commission of a block's value (the
// serial and its record, decodeResolved's input) in order of serial,
// until fn returns false. A value whose serials are not in the block or not
// increasing is corrupt.
func eachResolved(block uint64, v []byte, fn func(serial uint64, rec []byte) bool) error {
	d := decoder{b: v}
	checkVersion(&d)
	n := d.count(2)
	base := block << resolvedBlockBits
	next := 0 // the least offset the next commission may have
	for i := 0; i < n && d.err == nil; i++ {
		off := int(d.byte())
		rec := d.bytes()
		if d.err != nil {
			break
		}
		if off < next {
			d.fail()
			break
		}
		next = off + 1
		if !fn(base+uint64(off), rec) {
			return nil
		}
	}
	return d.done()
}

// decodeResolved decodes a resolved commission. A commission with no
// provision has no log entries but still one record; it decodes to a nil
// slice and its log time.
func decodeResolved(serial uint64, b []byte) ([]LogEntry, time.Time, error) {
	d := decoder{b: b}
	checkVersion(&d)
	var h LogEntry
	h.Serial = serial
	h.Client = d.string()
	h.Name = d.string()
	h.IssueTime = d.time()
	h.LogTime = d.time()
	h.Reason = d.string()
	n := d.count(8)
	var es []LogEntry
	if n > 0 {
		es = make([]LogEntry, n)
	}
	for i := range es {
		es[i] = h
		es[i].Key, es[i].Quantity, es[i].After = d.change()
	}
	if err := d.done(); err != nil {
		return nil, time.Time{}, err
	}
	return es, h.LogTime, nil
}

// Log entries by holder: holder, log time and serial are in the key.

func appendLogEntry(b []byte, e *LogEntry) []byte {
	b = append(b, recordVersion)
	b = appendString(b, e.Client)
	b = appendString(b, e.Name)
	b = appendTime(b, e.IssueTime)
	b = appendString(b, e.Reason)
	b = appendSource(b, e.Key.Source)
	b = appendString(b, e.Key.Resource)
	b = appendVarint(b, e.Quantity)
	return appendValue(b, e.After)
}

func decodeLogEntry(key, value []byte) (LogEntry, error) {
	var e LogEntry
	holder, logTime, serial, _, err := decodeLogKey(key)
	if err != nil {
		return e, err
	}
	d := decoder{b: value}
	checkVersion(&d)
	e.Serial = serial
	e.LogTime = time.Unix(0, logTime).UTC()
	e.Key.Holder = holder
	e.Client = d.string()
	e.Name = d.string()
	e.IssueTime = d.time()
	e.Reason = d.string()
	e.Key.Source = d.source()
	e.Key.Resource = d.string()
	e.Quantity = d.varint()
	e.After = d.value()
	if d.err == nil && e.Key.Resource == "" {
		d.fail()
	}
	return e, d.done()
}

// Idempotency records.

type idemRecord struct {
	Created  time.Time
	Hash     [32]byte
	Serial   uint64
	Accepted bool
}

func appendIdem(b []byte, r *idemRecord) []byte {
	b = append(b, recordVersion)
	b = appendTime(b, r.Created)
	b = append(b, r.Hash[:]...)
	b = appendUvarint(b, r.Serial)
	if r.Accepted {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeIdem(b []byte) (idemRecord, error) {
	var r idemRecord
	d := decoder{b: b}
	checkVersion(&d)
	r.Created = d.time()
	if d.err == nil && len(d.b) >= 32 {
		copy(r.Hash[:], d.b)
		d.b = d.b[32:]
	} else {
		d.fail()
	}
	r.Serial = d.uvarint()
	switch d.byte() {
	case 0:
	case 1:
		r.Accepted = true
	default:
		d.fail()
	}
	return r, d.done()
}

// The state record: the counters that must never go back across restarts.

type counters struct {
	Serial    uint64 // the last serial handed out
	OutboxSeq uint64 // the last outbox sequence written
	LogTime   int64  // the last log time (ns) used; log times strictly increase
	Holdings  int64  // how many holdings exist, to size the table on open

	// In a cluster, the last journal record's place in the log: the term
	// of the leader that wrote it (Chain.Term) and the log position of its
	// first message. Both 0 on a single node, and for a record of the
	// older layout.
	Term uint64
	Pos  uint64
}

// countersChained is the layout of a state record with a place in the log;
// one without keeps the first layout, byte for byte.
const countersChained = 2

func appendCounters(b []byte, c counters) []byte {
	if c.Term == 0 && c.Pos == 0 {
		b = append(b, recordVersion)
	} else {
		b = append(b, countersChained)
	}
	b = appendUvarint(b, c.Serial)
	b = appendUvarint(b, c.OutboxSeq)
	b = appendVarint(b, c.LogTime)
	b = appendVarint(b, c.Holdings)
	if c.Term == 0 && c.Pos == 0 {
		return b
	}
	b = appendUvarint(b, c.Term)
	return appendUvarint(b, c.Pos)
}

func decodeCounters(b []byte) (counters, error) {
	var c counters
	d := decoder{b: b}
	v := d.byte()
	if v != recordVersion && v != countersChained {
		d.fail()
	}
	c.Serial = d.uvarint()
	c.OutboxSeq = d.uvarint()
	c.LogTime = d.varint()
	c.Holdings = d.varint()
	if v == countersChained {
		c.Term = d.uvarint()
		c.Pos = d.uvarint()
	}
	return c, d.done()
}
