package ledger

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// The disk format of the ledger, pinned. The fuzzers of record_fuzz_test.go
// check decode -> encode -> decode, which holds just as well after a change
// made to an encoder and its decoder together (two fields swapped in both):
// every test would pass while the databases already on disk were misread
// after the upgrade. TestFormat holds each key and record kind the ledger
// writes to Pebble against bytes committed in testdata/format (one .hex file
// each), in both directions: encoding a fixed value gives exactly those
// bytes, and decoding those bytes gives back that value, field by field.
//
// A failure here means existing databases would be read differently. If the
// change is meant, it needs a new recordVersion (the decoders keep reading
// the old one) and new golden files beside the old ones, never old files
// rewritten. Regenerating is explicit:
//
//	go test ./ledger -run TestFormat -update
var update = flag.Bool("update", false, "rewrite the golden files of testdata (TestFormat) from today's encoders")

// formatDir holds the golden bytes of the ledger's keys and records.
const formatDir = "testdata/format"

// formatUpdate writes the golden files (a new record kind needs one).
const formatUpdate = "go test ./ledger -run TestFormat -update"

// Fixed values of the golden records. Every field differs from every other
// field of its record, so that two fields swapped in both encoder and
// decoder fail the decode direction too.
var (
	fmtIssue    = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	fmtDeadline = time.Date(2025, 1, 2, 4, 4, 5, 987654321, time.UTC)
	fmtLog      = time.Date(2025, 1, 2, 3, 5, 6, 111222333, time.UTC)

	fmtUserKey    = holdings.Key{Holder: "user:alice", Source: holdings.SourceOf("project:alpha"), Resource: "compute.vm"}
	fmtProjectKey = holdings.Key{Holder: "project:alpha", Source: holdings.NullSource, Resource: "compute.ram"}
	fmtEmptySrc   = holdings.Key{Holder: "user:bob", Source: holdings.SourceOf(""), Resource: "storage.disk"}

	fmtValue = holdings.Value{Limit: 100, UsageMin: 30, UsageMax: 45}
	fmtHash  = [32]byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
		0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}
)

func fmtCommission() *commission.Commission {
	return &commission.Commission{Serial: 7, Client: "compute", Name: "vm-create", IssueTime: fmtIssue, Deadline: fmtDeadline,
		Provisions: []holdings.Provision{{Key: fmtUserKey, Quantity: 4}, {Key: fmtProjectKey, Quantity: -2048}}}
}

// fmtResolved is commission 7 resolved: its header and its two entries,
// as decodeResolved returns them.
func fmtResolved() (LogEntry, []LogEntry) {
	h := LogEntry{Serial: 7, Client: "compute", Name: "vm-create", IssueTime: fmtIssue, LogTime: fmtLog, Reason: "ACCEPT:done"}
	e0, e1 := h, h
	e0.Key, e0.Quantity, e0.After = fmtUserKey, 4, holdings.Value{Limit: 10, UsageMin: 6, UsageMax: 8}
	e1.Key, e1.Quantity, e1.After = fmtProjectKey, -2048, holdings.Value{Limit: 4096, UsageMin: -1, UsageMax: 1024}
	return h, []LogEntry{e0, e1}
}

// fmtJournal is a journal record with one call of every kind, as the writer
// builds it (batch.record*, seal), and the record decodeJournal must give
// back for it.
func fmtJournal() ([]byte, *jrecord) {
	b := &batch{now: fmtLog, start: counters{Serial: 6, OutboxSeq: 22, LogTime: 5, Holdings: 11},
		ctr: counters{Serial: 9, OutboxSeq: 30, LogTime: fmtLog.UnixNano(), Holdings: 12}}
	issued := fmtCommission()
	issued.IssueTime = fmtLog // an issue's time is its record's
	after := []holdings.Value{{Limit: 10, UsageMin: 2, UsageMax: 8}, {Limit: 4096, UsageMin: -1, UsageMax: 3072}}
	final := []holdings.Value{{Limit: 10, UsageMin: 6, UsageMax: 8}, {Limit: 4096, UsageMin: -1, UsageMax: 1024}}
	auto := &commission.Commission{Serial: 8, Client: "storage", Name: "disk", IssueTime: fmtLog,
		Provisions: []holdings.Provision{{Key: fmtEmptySrc, Quantity: 3}}}
	idem := idemRecord{Created: fmtLog, Hash: fmtHash, Serial: 7}
	settings := []EventHolding{{Key: fmtEmptySrc, After: holdings.Value{Limit: 5, UsageMin: 1, UsageMax: 3}}}
	gone := []EventHolding{{Key: fmtProjectKey, After: fmtValue}}
	var raw records
	raw.set([]byte("Ukey"), []byte(`{"uuid":"u-1"}`))
	raw.del([]byte("Tgone"))
	data := []byte(`{"uuid":"u-1","by":"admin"}`)

	b.recordIssue(issued, after, nil, "i\x07compute\x08req-0001", &idem)
	b.recordIssue(auto, []holdings.Value{{Limit: 5, UsageMin: 1, UsageMax: 6}}, []holdings.Value{{Limit: 5, UsageMin: 4, UsageMax: 6}}, "", nil)
	b.recordResolve(fmtCommission(), resolveAccepted, "ACCEPT:done", final)
	b.recordHoldings(callSetHoldings, settings)
	b.recordHoldings(callDeleteHoldings, gone)
	b.recordUpdate(&raw, []*Event{{Type: "identity.user.registered", Data: data}})
	b.recordPruneIdem([]string{"i\x07compute\x04old1", "i\x07compute\x04old2"})
	b.seal()

	want := &jrecord{seq: 42, now: fmtLog, ctr: b.ctr, firstEvent: 23, calls: []jcall{
		{kind: callIssue, c: issued, after: after, idemKey: "i\x07compute\x08req-0001", idem: idem},
		{kind: callIssue, c: auto, after: []holdings.Value{{Limit: 5, UsageMin: 1, UsageMax: 6}}, final: []holdings.Value{{Limit: 5, UsageMin: 4, UsageMax: 6}}},
		{kind: callResolve, c: &commission.Commission{Serial: 7, Client: "compute", Name: "vm-create", IssueTime: fmtIssue,
			Provisions: fmtCommission().Provisions}, resolve: resolveAccepted, reason: "ACCEPT:done", after: final},
		{kind: callSetHoldings, holdings: settings},
		{kind: callDeleteHoldings, holdings: gone},
		{kind: callUpdate, raw: []rawRecord{{key: []byte("Ukey"), value: []byte(`{"uuid":"u-1"}`)}, {key: []byte("Tgone"), del: true}},
			events: []Event{{Type: "identity.user.registered", Data: data}}},
		{kind: callPruneIdem, keys: []string{"i\x07compute\x04old1", "i\x07compute\x04old2"}},
	}}
	return b.rec, want
}

// formatCase is one key or record kind: its bytes from today's encoder, and
// a check that decoding the golden bytes gives the fixed value back (nil
// for keys the ledger never decodes: it only builds them to look up).
type formatCase struct {
	name   string
	encode func() []byte
	decode func(t *testing.T, golden []byte)
}

func formatCases() []formatCase {
	eventCommission := Event{Seq: 23, Type: catalog.CommissionAcceptedType, Time: fmtLog, Serial: 7, Client: "compute",
		Name: "vm-create", Reason: "ACCEPT:done", IssueTime: fmtIssue,
		Holdings: []EventHolding{
			{Key: fmtUserKey, Quantity: 4, After: holdings.Value{Limit: 10, UsageMin: 6, UsageMax: 8}},
			{Key: fmtProjectKey, Quantity: -2048, After: holdings.Value{Limit: 4096, UsageMin: -1, UsageMax: 1024}},
		}}
	eventQuota := Event{Seq: 24, Type: catalog.HoldingChangedType, Time: fmtDeadline,
		Holdings: []EventHolding{{Key: fmtEmptySrc, After: holdings.Value{Limit: 5, UsageMin: 1, UsageMax: 3}}}}
	eventData := Event{Seq: 25, Type: "identity.user.registered", Time: fmtIssue, Data: []byte(`{"uuid":"u-1","by":"admin"}`)}

	h, es := fmtResolved()
	emptyResolved := LogEntry{Serial: 8, Client: "storage", Name: "noop", IssueTime: fmtDeadline, LogTime: fmtLog.Add(1), Reason: "REJECT:EXPIRED"}

	return []formatCase{
		// Keys, one per prefix of keys.go.
		{"key-meta-id", func() []byte { return keyMetaID }, nil},
		{"key-meta-state", func() []byte { return keyMetaState }, nil},
		{"key-holding", func() []byte { return holdingKey(nil, fmtUserKey) }, func(t *testing.T, g []byte) {
			k, err := decodeHoldingKey(g, nil, nil)
			checkDecoded(t, k, fmtUserKey, err)
		}},
		{"key-holding-null-source", func() []byte { return holdingKey(nil, fmtProjectKey) }, func(t *testing.T, g []byte) {
			holder := "" // as Open decodes them: with the last holder kept
			k, err := decodeHoldingKey(g, internMap(), &holder)
			checkDecoded(t, k, fmtProjectKey, err)
		}},
		{"key-holding-empty-source", func() []byte { return holdingKey(nil, fmtEmptySrc) }, func(t *testing.T, g []byte) {
			k, err := decodeHoldingKey(g, nil, nil)
			checkDecoded(t, k, fmtEmptySrc, err)
		}},
		{"key-holder-prefix", func() []byte { return holderPrefix(nil, "user:alice") }, nil},
		{"key-pending", func() []byte { return pendingKey(nil, "compute", 7) }, func(t *testing.T, g []byte) {
			client, serial, err := decodePendingKey(g)
			checkDecoded(t, struct {
				Client string
				Serial uint64
			}{client, serial}, struct {
				Client string
				Serial uint64
			}{"compute", 7}, err)
		}},
		{"key-resolved", func() []byte { return resolvedKey(nil, 0x0102030405060708) }, func(t *testing.T, g []byte) {
			// As Log reads them (read.go): a prefix byte and the serial.
			if len(g) != 9 || g[0] != prefixResolved {
				t.Fatalf("resolved key %x: want prefix %q and 8 bytes", g, prefixResolved)
			}
			checkDecoded(t, beUint64(g[1:]), uint64(0x0102030405060708), nil)
		}},
		{"key-resolved-block", func() []byte { return blockKey(nil, 0x01020304050607, 0x1112131415161718) }, func(t *testing.T, g []byte) {
			// As Log reads them (read.go): a prefix byte, the block, the record.
			if len(g) != 17 || g[0] != prefixBlock {
				t.Fatalf("block key %x: want prefix %q and 16 bytes", g, prefixBlock)
			}
			checkDecoded(t, [2]uint64{beUint64(g[1:]), beUint64(g[9:])}, [2]uint64{0x01020304050607, 0x1112131415161718}, nil)
		}},
		{"key-log-prefix", func() []byte { return logPrefix(nil, "user:alice") }, nil},
		{"key-log", func() []byte { return logKey(nil, "user:alice", fmtLog.UnixNano(), 7, 1) }, func(t *testing.T, g []byte) {
			holder, lt, serial, index, err := decodeLogKey(g)
			type parts struct {
				Holder  string
				LogTime int64
				Serial  uint64
				Index   int
			}
			checkDecoded(t, parts{holder, lt, serial, index}, parts{"user:alice", fmtLog.UnixNano(), 7, 1}, err)
		}},
		{"key-idempotency", func() []byte { return idemKey(nil, "compute", "req-0001") }, nil},
		{"key-outbox", func() []byte { return outboxKey(nil, 0x0a0b0c0d0e0f1011) }, func(t *testing.T, g []byte) {
			e, err := DecodeEvent(g, appendEvent(nil, &Event{Type: "x"}))
			checkDecoded(t, e.Seq, uint64(0x0a0b0c0d0e0f1011), err)
		}},

		// Values.
		{"value-meta-id", func() []byte { return []byte("0123456789abcdef") }, nil},
		{"value-meta-state", func() []byte {
			return appendCounters(nil, counters{Serial: 9, OutboxSeq: 23, LogTime: fmtLog.UnixNano(), Holdings: 12})
		}, func(t *testing.T, g []byte) {
			c, err := decodeCounters(g)
			checkDecoded(t, c, counters{Serial: 9, OutboxSeq: 23, LogTime: fmtLog.UnixNano(), Holdings: 12}, err)
		}},
		{"value-meta-state-chained", func() []byte {
			return appendCounters(nil, counters{Serial: 9, OutboxSeq: 23, LogTime: fmtLog.UnixNano(), Holdings: 12, Term: 0x0123456789abcdef, Pos: 77})
		}, func(t *testing.T, g []byte) {
			c, err := decodeCounters(g)
			checkDecoded(t, c, counters{Serial: 9, OutboxSeq: 23, LogTime: fmtLog.UnixNano(), Holdings: 12, Term: 0x0123456789abcdef, Pos: 77}, err)
		}},
		{"value-holding", func() []byte { return appendHoldingValue(nil, fmtValue) }, func(t *testing.T, g []byte) {
			v, err := decodeHoldingValue(g)
			checkDecoded(t, v, fmtValue, err)
		}},
		{"value-holding-negative", func() []byte {
			return appendHoldingValue(nil, holdings.Value{Limit: 1 << 40, UsageMin: -3, UsageMax: 0})
		}, func(t *testing.T, g []byte) {
			v, err := decodeHoldingValue(g)
			checkDecoded(t, v, holdings.Value{Limit: 1 << 40, UsageMin: -3, UsageMax: 0}, err)
		}},
		{"value-pending", func() []byte { return appendCommission(nil, fmtCommission()) }, func(t *testing.T, g []byte) {
			c, err := decodeCommission(7, g, internMap())
			checkDecoded(t, c, fmtCommission(), err)
		}},
		{"value-pending-bare", func() []byte {
			return appendCommission(nil, &commission.Commission{Serial: 1, Client: "compute"})
		}, func(t *testing.T, g []byte) {
			c, err := decodeCommission(1, g, nil)
			checkDecoded(t, c, &commission.Commission{Serial: 1, Client: "compute"}, err)
		}},
		{"value-resolved", func() []byte { return appendResolved(nil, h, es) }, func(t *testing.T, g []byte) {
			got, logTime, err := decodeResolved(7, g)
			checkDecoded(t, got, es, err)
			checkDecoded(t, logTime, fmtLog, nil)
		}},
		{"value-resolved-empty", func() []byte { return appendResolved(nil, emptyResolved, nil) }, func(t *testing.T, g []byte) {
			got, logTime, err := decodeResolved(8, g)
			checkDecoded(t, got, []LogEntry(nil), err)
			checkDecoded(t, logTime, fmtLog.Add(1), nil)
		}},
		{"value-resolved-block", func() []byte {
			arena := appendResolved(nil, h, es)
			n := len(arena)
			arena = appendResolved(arena, emptyResolved, nil)
			return appendResolvedBlock(nil, []resolvedRec{{serial: 7, end: n}, {serial: 8, start: n, end: len(arena)}}, arena)
		}, func(t *testing.T, g []byte) {
			var serials []uint64
			var got [][]LogEntry
			err := eachResolved(0, g, func(serial uint64, rec []byte) bool {
				serials = append(serials, serial)
				e, _, err := decodeResolved(serial, rec)
				if err != nil {
					t.Fatalf("commission %d: %v", serial, err)
				}
				got = append(got, e)
				return true
			})
			checkDecoded(t, serials, []uint64{7, 8}, err)
			checkDecoded(t, got, [][]LogEntry{es, nil}, nil)
		}},
		{"value-log", func() []byte { return appendLogEntry(nil, &es[1]) }, func(t *testing.T, g []byte) {
			e, err := decodeLogEntry(logKey(nil, "project:alpha", fmtLog.UnixNano(), 7, 1), g)
			checkDecoded(t, e, es[1], err)
		}},
		{"value-idempotency", func() []byte {
			return appendIdem(nil, &idemRecord{Created: fmtIssue, Hash: fmtHash, Serial: 7, Accepted: true})
		}, func(t *testing.T, g []byte) {
			r, err := decodeIdem(g)
			checkDecoded(t, r, idemRecord{Created: fmtIssue, Hash: fmtHash, Serial: 7, Accepted: true}, err)
		}},
		{"value-idempotency-issued", func() []byte {
			return appendIdem(nil, &idemRecord{Created: fmtDeadline, Hash: fmtHash, Serial: 300})
		}, func(t *testing.T, g []byte) {
			r, err := decodeIdem(g)
			checkDecoded(t, r, idemRecord{Created: fmtDeadline, Hash: fmtHash, Serial: 300}, err)
		}},
		// The hash an idempotency record keeps of its request: a retry after
		// an upgrade is compared with it, so it is part of the format too.
		{"value-idempotency-request-hash", func() []byte {
			h := requestHash(&IssueRequest{Client: "compute", Name: "vm-create", Force: true, TTL: 90 * time.Second,
				IdempotencyKey: "req-0001", Provisions: fmtCommission().Provisions})
			return h[:]
		}, nil},
		{"value-outbox-commission", func() []byte { return appendEvent(nil, &eventCommission) }, func(t *testing.T, g []byte) {
			e, err := DecodeEvent(outboxKey(nil, 23), g)
			checkDecoded(t, e, eventCommission, err)
		}},
		{"value-outbox-quota", func() []byte { return appendEvent(nil, &eventQuota) }, func(t *testing.T, g []byte) {
			e, err := DecodeEvent(outboxKey(nil, 24), g)
			checkDecoded(t, e, eventQuota, err)
		}},
		{"value-outbox-data", func() []byte { return appendEvent(nil, &eventData) }, func(t *testing.T, g []byte) {
			e, err := DecodeEvent(outboxKey(nil, 25), g)
			checkDecoded(t, e, eventData, err)
		}},

		// The journal (journal.go) and the sequences of the state database.
		{"key-journal", func() []byte { return journalKey(nil, 0x0102030405060708) }, func(t *testing.T, g []byte) {
			seq, ok := journalSeqOf(g)
			if !ok {
				t.Fatalf("journal key %x does not decode", g)
			}
			checkDecoded(t, seq, uint64(0x0102030405060708), nil)
		}},
		{"key-journal-relay", func() []byte { return keyJournalRelay }, nil},
		{"key-meta-checkpoint", func() []byte { return keyMetaCheckpoint }, nil},
		{"key-meta-indexed", func() []byte { return keyMetaIndexed }, nil},
		{"value-journal", func() []byte { rec, _ := fmtJournal(); return rec }, func(t *testing.T, g []byte) {
			_, want := fmtJournal()
			r, err := decodeJournal(42, g, nil)
			if err != nil {
				t.Fatalf("golden bytes do not decode: %v", err)
			}
			for i := range max(len(r.calls), len(want.calls)) {
				if i >= len(r.calls) || i >= len(want.calls) {
					t.Fatalf("%d calls, want %d", len(r.calls), len(want.calls))
				}
				checkDecoded(t, r.calls[i], want.calls[i], nil)
			}
			r.calls, want.calls = nil, nil
			checkDecoded(t, *r, *want, nil)
			// The events a relay renders from it, in their order.
			var types []string
			for _, e := range (&jrecord{firstEvent: 23, now: fmtLog, calls: mustDecodeJournal(t, g).calls}).events() {
				types = append(types, fmt.Sprintf("%d %s", e.Seq, e.Type))
			}
			checkDecoded(t, types, []string{"23 " + catalog.CommissionIssuedType, "24 " + catalog.CommissionIssuedType, "25 " + catalog.CommissionAcceptedType,
				"26 " + catalog.CommissionAcceptedType, "27 " + catalog.HoldingChangedType, "28 " + catalog.HoldingDeletedType, "29 identity.user.registered"}, nil)
		}},
		{"value-journal-chained", func() []byte { rec, _ := fmtJournalChained(); return rec }, func(t *testing.T, g []byte) {
			_, want := fmtJournalChained()
			r, err := decodeJournal(42, g, nil)
			checkDecoded(t, *r, *want, err)
			term, pos, ok := RecordPlace(g)
			checkDecoded(t, [3]any{term, pos, ok}, [3]any{want.ctr.Term, want.ctr.Pos, true}, nil)
		}},
	}
}

// fmtJournalChained is a record of a cluster's log (journalChained): one
// call, its place in the log and the term of the record before it.
func fmtJournalChained() ([]byte, *jrecord) {
	start := counters{Serial: 6, OutboxSeq: 22, LogTime: 5, Holdings: 11, Term: 0x1111111111111111, Pos: 40}
	b := &batch{now: fmtLog, start: start,
		ctr: counters{Serial: 6, OutboxSeq: 23, LogTime: 5, Holdings: 12, Term: 0x0123456789abcdef, Pos: 41}}
	settings := []EventHolding{{Key: fmtEmptySrc, After: holdings.Value{Limit: 5}}}
	b.recordHoldings(callSetHoldings, settings)
	b.seal()
	return b.rec, &jrecord{seq: 42, now: fmtLog, ctr: b.ctr, firstEvent: 23, chained: true, prevTerm: start.Term,
		calls: []jcall{{kind: callSetHoldings, holdings: settings}}}
}

func mustDecodeJournal(t *testing.T, g []byte) *jrecord {
	t.Helper()
	r, err := decodeJournal(42, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFormat checks every key and record kind of the ledger against its
// golden bytes, both ways (see update).
func TestFormat(t *testing.T) {
	names := map[string]bool{}
	for _, c := range formatCases() {
		names[c.name+".hex"] = true
		t.Run(c.name, func(t *testing.T) {
			got := c.encode()
			path := filepath.Join(formatDir, c.name+".hex")
			if *update {
				testkit.WriteHex(t, path, c.name, formatUpdate, got)
			}
			want := testkit.ReadHex(t, path, formatUpdate)
			if !bytes.Equal(got, want) {
				t.Errorf("encoding changed: existing databases hold the bytes of %s\n got %x\nwant %x", path, got, want)
			}
			if c.decode != nil {
				c.decode(t, want)
			}
		})
	}
	// A golden file no case reads is a record kind whose test was lost.
	files, err := os.ReadDir(formatDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".hex") && !names[f.Name()] {
			t.Errorf("%s/%s is checked by no case of TestFormat", formatDir, f.Name())
		}
	}
}

// TestFormatKeyPrefixes pins the leading byte of each key space: the
// identity layer and every reader of a database rely on them.
func TestFormatKeyPrefixes(t *testing.T) {
	got := map[string]byte{"meta": prefixMeta, "holding": prefixHolding, "pending": prefixPending,
		"resolved": prefixResolved, "log": prefixLog, "idempotency": prefixIdem, "outbox": prefixOutbox,
		"resolved blocks": prefixBlock, "log chunks": prefixLogChunk}
	want := map[string]byte{"meta": 0x00, "holding": 'h', "pending": 'p', "resolved": 'r', "log": 'g',
		"idempotency": 'i', "outbox": 'o', "resolved blocks": 's', "log chunks": 'l'}
	checkDecoded(t, got, want, nil)
	if prefixJournal != 'j' || journalVersion != 1 {
		t.Errorf("the journal's prefix %q or version %d changed: a new version needs golden files of its own", prefixJournal, journalVersion)
	}
	if recordVersion != 1 {
		t.Errorf("recordVersion is %d: a new version needs golden files of its own, and the old ones kept", recordVersion)
	}
}

// checkDecoded fails t unless err is nil and got equals want, naming every
// field that differs.
func checkDecoded(t *testing.T, got, want any, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("golden bytes do not decode: %v", err)
	}
	if diffs := testkit.FieldDiffs(got, want); len(diffs) > 0 {
		t.Errorf("golden bytes decode to another value:\n\t%s", strings.Join(diffs, "\n\t"))
	}
}
