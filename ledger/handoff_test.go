package ledger

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/commission"
)

// Every test of the package runs with the applier checking that the calls
// the writer (or a follower) hands over decoded are what the record's
// bytes decode to: the applier derives the log, the idempotency records
// and identity's records from them, and replay after a crash derives them
// from the bytes.
func init() { checkHandoff = mustMatchRecord }

func mustMatchRecord(seq uint64, rec []byte, got *jrecord) {
	want, err := decodeJournal(seq, rec, nil)
	if err != nil {
		panic(fmt.Sprintf("handed-over record %d does not decode: %v", seq, err))
	}
	if err := sameRecord(got, want); err != nil {
		panic(fmt.Sprintf("record %d handed over by the writer differs from its bytes: %v", seq, err))
	}
}

// sameRecord compares what the applier reads of two records.
func sameRecord(got, want *jrecord) error {
	if got.seq != want.seq || got.ctr != want.ctr {
		return fmt.Errorf("header: seq %d, %+v; want %d, %+v", got.seq, got.ctr, want.seq, want.ctr)
	}
	if len(got.calls) != len(want.calls) {
		return fmt.Errorf("%d calls, want %d", len(got.calls), len(want.calls))
	}
	for i := range got.calls {
		g, w := &got.calls[i], &want.calls[i]
		if g.kind != w.kind {
			return fmt.Errorf("call %d: kind %c, want %c", i, g.kind, w.kind)
		}
		var diff string
		switch g.kind {
		case callIssue:
			diff = differ(
				"commission", sameCommission(g.c, w.c) && sameTime(g.c.Deadline, w.c.Deadline),
				"after", reflect.DeepEqual(g.after, w.after),
				"final", reflect.DeepEqual(g.final, w.final),
				"idempotency key", g.idemKey == w.idemKey,
				"idempotency record", sameIdem(g.idem, w.idem))
		case callResolve:
			// A resolve's record has no deadline: the applier reads none.
			diff = differ(
				"commission", sameCommission(g.c, w.c),
				"kind", g.resolve == w.resolve,
				"reason", g.reason == w.reason,
				"after", reflect.DeepEqual(g.after, w.after))
		case callPruneIdem:
			diff = differ("keys", reflect.DeepEqual(g.keys, w.keys))
		}
		if diff != "" {
			return fmt.Errorf("call %d (%c): %s differs:\n%+v\nwant\n%+v", i, g.kind, diff, *g, *w)
		}
	}
	return nil
}

// differ names the first of what/ok pairs that is not ok.
func differ(pairs ...any) string {
	for i := 0; i < len(pairs); i += 2 {
		if !pairs[i+1].(bool) {
			return pairs[i].(string)
		}
	}
	return ""
}

func sameTime(a, b time.Time) bool {
	return a.IsZero() == b.IsZero() && (a.IsZero() || a.UnixNano() == b.UnixNano())
}

func sameCommission(a, b *commission.Commission) bool {
	return a.Serial == b.Serial && a.Client == b.Client && a.Name == b.Name &&
		sameTime(a.IssueTime, b.IssueTime) &&
		(len(a.Provisions) == 0 && len(b.Provisions) == 0 || reflect.DeepEqual(a.Provisions, b.Provisions))
}

func sameIdem(a, b idemRecord) bool {
	return sameTime(a.Created, b.Created) && a.Hash == b.Hash && a.Serial == b.Serial && a.Accepted == b.Accepted
}

// TestHandoffChecked: the check above is on, and finds a difference.
func TestHandoffChecked(t *testing.T) {
	if checkHandoff == nil {
		t.Fatal("the applier does not check handed-over records in tests")
	}
	rec, _ := fmtJournal()
	r, err := decodeJournal(7, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := decodeJournal(7, rec, nil)
	if err := sameRecord(r, want); err != nil {
		t.Fatalf("a record differs from itself: %v", err)
	}
	for i := range r.calls {
		if c := &r.calls[i]; c.kind == callResolve {
			c.after = append(c.after[:len(c.after):len(c.after)], c.after[0])
			break
		}
	}
	if err := sameRecord(r, want); err == nil {
		t.Fatal("a resolve's holdings after it changed, and the check saw no difference")
	}
}
