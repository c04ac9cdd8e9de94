package ledger

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
)

// The journal is the only record a write puts on the critical path: each
// batch the writer commits becomes one journal record, the calls of the
// batch as the writer decided them (serials, times, outcomes, and every
// holding's value after the change), written with one synced WAL write. The
// rest of the durable state (holdings, pending commissions, idempotency
// records, the provision log, identity's records) is derived from the
// journal, off the critical path, into the state database (applier.go); the
// events the relay publishes are rendered from it.
//
// A record is self-contained and deterministic to apply: applying it needs
// no request, no clock and no rule of the ledger, only the state the
// records before it left. That is what a replica applies, and what Open
// replays after the last checkpoint of the state.
//
// Layout of a record (the value of key journalKey(seq)):
//
//	version, time, counters after the batch, first event sequence,
//	number of calls, then each call: a kind byte and its fields
//
// A record of a cluster's log (version journalChained) also has, after the
// counters, its place in the log (the leader's term and the log position
// of its first message) and the term of the record it was built on: a
// follower applies it only if that is the term of the last record it
// applied, and it is the next sequence (Follow). The log fences appends by
// its sequence only, and a leader pipelines them: when another writer
// appended as many messages as the leader had sent before one the log
// refused, the log takes the leader's next records, built on the refused
// one. The chain makes every node skip them alike.
//
// The kinds: callIssue, callResolve, callSetHoldings, callDeleteHoldings,
// callUpdate, callPruneIdem, callEvents (see appendJournal*).
const (
	journalVersion = 1
	journalChained = 2
)

const (
	callIssue          = 'i'
	callResolve        = 'r'
	callSetHoldings    = 'q'
	callDeleteHoldings = 'd'
	callUpdate         = 'u'
	callPruneIdem      = 'x'
	callEvents         = 'e' // events carried over from an outbox of an older layout
)

// Resolve kinds of callResolve.
const (
	resolveAccepted = 'a'
	resolveRejected = 'r'
	resolveExpired  = 'x'
)

const flagAutoAccept = 1

// Journal keys: a byte of their own in the journal database.
const prefixJournal = 'j'

var (
	keyJournalRelay = []byte{prefixMeta, 'r', 'e', 'l', 'a', 'y'}
)

func journalKey(b []byte, seq uint64) []byte {
	return appendFixed64(append(b, prefixJournal), seq)
}

// The calls of a batch are appended to batch.body as the ops apply, each
// only once its op has succeeded; seal puts the header in front.

func (b *batch) beginCall(kind byte) {
	b.ncalls++
	b.body = append(b.body, kind)
}

// keep adds a call, as decodeJournal would decode it, to those the applier
// takes from the writer (batch.calls). The writer's values it refers to
// are not changed after (a commission, the holdings after it).
func (b *batch) keep(c *jcall) {
	if !b.undecoded {
		if b.calls == nil {
			// A call a request, mostly (ResolveMany's are more), and the
			// pruned idempotency keys'. A slice made new for each batch
			// (and grown by doubling, at first) was most of the engine's
			// allocation: the applier gives them back (recycle).
			if b.l != nil {
				b.calls = b.l.ap.spareCalls(len(b.reqs) + 2)
			} else { // a batch a test encodes a record with
				b.calls = make([]jcall, 0, 4)
			}
		}
		b.calls = append(b.calls, *c)
	}
}

func (b *batch) appendProvisionChanges(ps []holdings.Provision, after []holdings.Value) {
	b.body = appendUvarint(b.body, uint64(len(ps)))
	for i, p := range ps {
		b.body = appendChange(b.body, p.Key, p.Quantity, after[i])
	}
}

func (b *batch) appendHoldingChanges(hs []EventHolding) {
	b.body = appendUvarint(b.body, uint64(len(hs)))
	for _, h := range hs {
		b.body = appendKeyParts(b.body, h.Key)
		b.body = appendValue(b.body, h.After)
	}
}

// recordIssue appends an issued commission: the commission, the holdings
// after the issue and, when auto-accepted, after the accept.
func (b *batch) recordIssue(c *commission.Commission, after, final []holdings.Value, ikey string, idem *idemRecord) {
	b.beginCall(callIssue)
	b.body = appendUvarint(b.body, c.Serial)
	b.body = appendString(b.body, c.Client)
	b.body = appendString(b.body, c.Name)
	var flags byte
	if final != nil {
		flags |= flagAutoAccept
	}
	b.body = append(b.body, flags)
	b.body = appendTime(b.body, c.Deadline)
	b.body = appendString(b.body, ikey)
	if ikey != "" {
		b.body = append(b.body, idem.Hash[:]...)
	}
	b.appendProvisionChanges(c.Provisions, after)
	for _, v := range final {
		b.body = appendValue(b.body, v)
	}
	jc := jcall{kind: callIssue, c: c, after: after, final: final, idemKey: ikey}
	if ikey != "" {
		jc.idem = *idem
	}
	b.keep(&jc)
}

// recordResolve appends a resolved commission with the holdings after it.
func (b *batch) recordResolve(c *commission.Commission, kind byte, reason string, after []holdings.Value) {
	b.beginCall(callResolve)
	b.body = append(b.body, kind)
	b.body = appendUvarint(b.body, c.Serial)
	b.body = appendString(b.body, c.Client)
	b.body = appendString(b.body, c.Name)
	b.body = appendTime(b.body, c.IssueTime)
	b.body = appendString(b.body, reason)
	b.appendProvisionChanges(c.Provisions, after)
	b.keep(&jcall{kind: callResolve, c: c, resolve: kind, reason: reason, after: after})
}

// recordHoldings appends a SetHoldings (the holdings after) or a
// DeleteHoldings (the holdings before they went).
func (b *batch) recordHoldings(kind byte, hs []EventHolding) {
	b.beginCall(kind)
	b.appendHoldingChanges(hs)
	b.keep(&jcall{kind: kind}) // the applier takes holdings from memory
}

// recordUpdate appends the records and events an Update staged (its holding
// settings are a callSetHoldings of their own, just before it).
func (b *batch) recordUpdate(raw *records, events []*Event) {
	b.beginCall(callUpdate)
	b.undecoded = true // the applier decodes the record
	b.body = appendUvarint(b.body, uint64(len(raw.list)))
	a := raw.arena
	for _, r := range raw.list {
		if r.del {
			b.body = append(b.body, 1)
		} else {
			b.body = append(b.body, 0)
		}
		b.body = appendUvarint(b.body, uint64(r.k1-r.k0))
		b.body = append(b.body, a[r.k0:r.k1]...)
		if !r.del {
			b.body = appendUvarint(b.body, uint64(r.v1-r.k1))
			b.body = append(b.body, a[r.k1:r.v1]...)
		}
	}
	b.body = appendUvarint(b.body, uint64(len(events)))
	for _, e := range events {
		b.body = appendString(b.body, e.Type)
		b.body = appendUvarint(b.body, uint64(len(e.Data)))
		b.body = append(b.body, e.Data...)
	}
}

// recordPruneIdem appends the idempotency keys pruned past their retention.
func (b *batch) recordPruneIdem(keys []string) {
	b.beginCall(callPruneIdem)
	b.body = appendUvarint(b.body, uint64(len(keys)))
	for _, k := range keys {
		b.body = appendUvarint(b.body, uint64(len(k)))
		b.body = append(b.body, k...)
	}
	b.keep(&jcall{kind: callPruneIdem, keys: slices.Clone(keys)})
}

// seal writes the batch's record: the header, then the calls.
func (b *batch) seal() {
	r := appendJournalHeader(b.rec[:0], b.now, b.ctr, b.start.Term, b.start.OutboxSeq+1, b.ncalls)
	b.rec = append(r, b.body...)
}

// appendJournalHeader appends a record's header: ctr are the counters after
// it, prevTerm the term of the record before it (chained records only: ctr
// has a term).
func appendJournalHeader(r []byte, now time.Time, ctr counters, prevTerm, firstEvent uint64, ncalls int) []byte {
	chained := ctr.Term != 0
	if chained {
		r = append(r, journalChained)
	} else {
		r = append(r, journalVersion)
	}
	r = appendTime(r, now)
	r = appendUvarint(r, ctr.Serial)
	r = appendUvarint(r, ctr.OutboxSeq)
	r = appendVarint(r, ctr.LogTime)
	r = appendVarint(r, ctr.Holdings)
	if chained {
		r = appendUvarint(r, ctr.Term)
		r = appendUvarint(r, ctr.Pos)
		r = appendUvarint(r, prevTerm)
	}
	r = appendUvarint(r, firstEvent)
	return appendUvarint(r, uint64(ncalls))
}

// journalHeader decodes a record's header, up to and with its number of
// calls.
func (d *decoder) journalHeader(r *jrecord) int {
	v := d.byte()
	if v != journalVersion && v != journalChained {
		d.fail()
	}
	r.now = d.time()
	r.ctr.Serial = d.uvarint()
	r.ctr.OutboxSeq = d.uvarint()
	r.ctr.LogTime = d.varint()
	r.ctr.Holdings = d.varint()
	if v == journalChained {
		r.chained = true
		r.ctr.Term = d.uvarint()
		r.ctr.Pos = d.uvarint()
		r.prevTerm = d.uvarint()
		if r.ctr.Term == 0 {
			d.fail()
		}
	}
	r.firstEvent = d.uvarint()
	return d.count(1)
}

// RecordPlace returns the place in a cluster's log that journal record rec
// names for itself (the term of the leader that wrote it, the log position
// of its first message), and ok false for a record without one (a single
// node's, or of the older layout) or that does not decode.
func RecordPlace(rec []byte) (term, pos uint64, ok bool) {
	d := decoder{b: rec}
	var r jrecord
	d.journalHeader(&r)
	if d.err != nil || !r.chained {
		return 0, 0, false
	}
	return r.ctr.Term, r.ctr.Pos, true
}

// jrecord is a decoded journal record.
type jrecord struct {
	seq        uint64
	now        time.Time
	ctr        counters // after the batch
	firstEvent uint64   // the sequence of its first event
	calls      []jcall
	chained    bool   // a record of a cluster's log, with its place in it
	prevTerm   uint64 // chained: the term of the record it was built on
	kept       bool   // the writer's calls (batch.keep), not decoded: the applier recycles them
}

// jcall is one call of a journal record; which fields are set depends on
// kind.
type jcall struct {
	kind byte
	// callIssue: c (IssueTime is the record's time), after the issue,
	// final after the accept (auto-accept), idemKey and idem.
	// callResolve: c, resolve, reason, after.
	c       *commission.Commission
	after   []holdings.Value
	final   []holdings.Value
	idemKey string
	idem    idemRecord
	resolve byte
	reason  string
	// callSetHoldings, callDeleteHoldings.
	holdings []EventHolding
	// callUpdate.
	raw    []rawRecord
	events []Event
	// callPruneIdem.
	keys []string
}

type rawRecord struct {
	key, value []byte
	del        bool
}

// decodeJournal decodes the journal record seq. intern, when set,
// deduplicates holding names (replay on open).
func decodeJournal(seq uint64, v []byte, intern func([]byte) string) (*jrecord, error) {
	d := decoder{b: v, intern: intern}
	r := &jrecord{seq: seq}
	n := d.journalHeader(r)
	r.calls = make([]jcall, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		r.calls = append(r.calls, d.call(r.now))
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return r, nil
}

func (d *decoder) changes() ([]holdings.Provision, []holdings.Value) {
	n := d.count(6)
	ps := make([]holdings.Provision, n)
	vs := make([]holdings.Value, n)
	for i := range ps {
		ps[i].Key, ps[i].Quantity, vs[i] = d.change()
	}
	return ps, vs
}

func (d *decoder) holdingChanges() []EventHolding {
	n := d.count(6)
	hs := make([]EventHolding, n)
	for i := range hs {
		hs[i].Key = d.key()
		hs[i].After = d.value()
	}
	return hs
}

func (d *decoder) call(now time.Time) jcall {
	c := jcall{kind: d.byte()}
	switch c.kind {
	case callIssue:
		cm := &commission.Commission{IssueTime: now}
		cm.Serial = d.uvarint()
		cm.Client = d.string()
		cm.Name = d.string()
		flags := d.byte()
		cm.Deadline = d.time()
		c.idemKey = d.string()
		if c.idemKey != "" {
			if d.err == nil && len(d.b) >= 32 {
				copy(c.idem.Hash[:], d.b)
				d.b = d.b[32:]
			} else {
				d.fail()
			}
			c.idem.Created, c.idem.Serial, c.idem.Accepted = now, cm.Serial, flags&flagAutoAccept != 0
		}
		cm.Provisions, c.after = d.changes()
		if flags&flagAutoAccept != 0 {
			c.final = make([]holdings.Value, len(c.after))
			for i := range c.final {
				c.final[i] = d.value()
			}
		}
		c.c = cm
	case callResolve:
		c.resolve = d.byte()
		switch c.resolve {
		case resolveAccepted, resolveRejected, resolveExpired:
		default:
			d.fail()
		}
		cm := &commission.Commission{}
		cm.Serial = d.uvarint()
		cm.Client = d.string()
		cm.Name = d.string()
		cm.IssueTime = d.time()
		c.reason = d.string()
		cm.Provisions, c.after = d.changes()
		c.c = cm
	case callSetHoldings, callDeleteHoldings:
		c.holdings = d.holdingChanges()
	case callUpdate:
		n := d.count(2)
		c.raw = make([]rawRecord, n)
		for i := range c.raw {
			switch d.byte() {
			case 0:
				c.raw[i].key = d.bytes()
				c.raw[i].value = d.bytes()
			case 1:
				c.raw[i].key = d.bytes()
				c.raw[i].del = true
			default:
				d.fail()
			}
		}
		n = d.count(2)
		c.events = make([]Event, n)
		for i := range c.events {
			c.events[i].Type = d.string()
			if data := d.bytes(); len(data) > 0 {
				c.events[i].Data = data
			}
		}
	case callPruneIdem:
		n := d.count(1)
		c.keys = make([]string, n)
		for i := range c.keys {
			c.keys[i] = string(d.bytes())
		}
	case callEvents:
		n := d.count(1)
		c.events = make([]Event, n)
		for i := range c.events {
			seq := d.uvarint()
			e, err := decodeEventValue(d.bytes())
			if err != nil {
				d.fail()
			}
			e.Seq = seq
			c.events[i] = e
		}
	default:
		d.fail()
	}
	return c
}

// resolveType is the event type of a resolve kind.
func resolveType(kind byte) string {
	switch kind {
	case resolveAccepted:
		return catalog.CommissionAcceptedType
	case resolveExpired:
		return catalog.CommissionExpiredType
	}
	return catalog.CommissionRejectedType
}

// events renders the events of a record in outbox order, with their
// sequences: the same events the writer counted for the batch.
func (r *jrecord) events() []Event {
	var out []Event
	seq := r.firstEvent
	add := func(e Event) {
		e.Seq = seq
		seq++
		if e.Time.IsZero() {
			e.Time = r.now
		}
		out = append(out, e)
	}
	addChunked := func(e Event) {
		hs := e.Holdings
		for len(hs) > MaxEventHoldings {
			part := e
			part.Holdings = hs[:MaxEventHoldings]
			add(part)
			hs = hs[MaxEventHoldings:]
		}
		e.Holdings = hs
		add(e)
	}
	for i := range r.calls {
		c := &r.calls[i]
		switch c.kind {
		case callIssue:
			add(*commissionEvent(catalog.CommissionIssuedType, c.c, c.after, ""))
			if c.final != nil {
				add(*commissionEvent(catalog.CommissionAcceptedType, c.c, c.final, "ACCEPT:"))
			}
		case callResolve:
			add(*commissionEvent(resolveType(c.resolve), c.c, c.after, c.reason))
		case callSetHoldings:
			addChunked(Event{Type: catalog.HoldingChangedType, Holdings: c.holdings})
		case callDeleteHoldings:
			if len(c.holdings) > 0 {
				addChunked(Event{Type: catalog.HoldingDeletedType, Holdings: c.holdings})
			}
		case callUpdate:
			for _, e := range c.events {
				add(e)
			}
		case callEvents:
			out = append(out, c.events...) // they keep their own sequence and time
			if n := len(c.events); n > 0 {
				seq = c.events[n-1].Seq + 1
			}
		}
	}
	return out
}

// journalSeqOf reads the sequence of a journal key.
func journalSeqOf(k []byte) (uint64, bool) {
	if len(k) != 9 || k[0] != prefixJournal {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}
