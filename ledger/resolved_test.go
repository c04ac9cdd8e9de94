package ledger

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quotaledger/quotaledger/holdings"
)

// TestResolvedBlocks: resolved commissions are kept a block of serials a
// key per journal record, merged by serial when read, and read together
// with those a database written before blocks kept one a key. Serials are
// resolved out of order (the even ones first, then the odd ones backwards),
// so each block has many keys, and the first 300 are moved to the older
// layout by hand.
func TestResolvedBlocks(t *testing.T) {
	ctx := context.Background()
	opts := memOptions()
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	k := key("user:1", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 1 << 40}}); err != nil {
		t.Fatal(err)
	}
	const n = 700
	for i := 1; i <= n; i++ {
		res, err := l.Issue(ctx, IssueRequest{Client: "c", Name: fmt.Sprint(i),
			Provisions: []holdings.Provision{{Key: k, Quantity: int64(i)}}})
		if err != nil || res.Serial != uint64(i) {
			t.Fatalf("issue %d: %+v %v", i, res, err)
		}
	}
	accepted := func(s uint64) bool { return s%3 != 0 }
	resolve := func(s uint64) {
		if err := l.Resolve(ctx, "c", s, accepted(s), "r"); err != nil {
			t.Fatal(err)
		}
	}
	for s := uint64(2); s <= n; s += 2 {
		resolve(s)
	}
	for s := n - 1; s >= 1; s -= 2 {
		resolve(uint64(s))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if moved := toOneAKey(t, opts, 300); moved != 300 {
		t.Fatalf("moved %d commissions to keys of their own, want 300", moved)
	}

	l = mustOpen(t, opts)
	check := func(s uint64, e LogEntry) {
		t.Helper()
		want := "ACCEPT:r"
		if !accepted(s) {
			want = "REJECT:r"
		}
		if e.Serial != s || e.Reason != want || e.Quantity != int64(s) || e.Name != fmt.Sprint(s) {
			t.Fatalf("commission %d: log entry %+v, want reason %s, quantity %d", s, e, want, s)
		}
	}
	for s := uint64(1); s <= n; s++ {
		page, err := l.Log(LogFilter{Serial: s})
		if err != nil || len(page.Entries) != 1 {
			t.Fatalf("log of commission %d: %+v %v", s, page, err)
		}
		check(s, page.Entries[0])
	}
	if page, err := l.Log(LogFilter{Serial: n + 1}); err != nil || len(page.Entries) != 0 {
		t.Fatalf("log of a commission never issued: %+v %v", page, err)
	}
	whole := func() (serials []uint64) {
		t.Helper()
		f := LogFilter{Limit: 7}
		for pages := 0; ; pages++ {
			page, err := l.Log(f)
			if err != nil {
				t.Fatal(err)
			}
			if pages > 2*n {
				t.Fatal("the log's pages do not end")
			}
			for _, e := range page.Entries {
				check(uint64(len(serials)+1), e)
				serials = append(serials, e.Serial)
			}
			if page.Next == "" {
				return serials
			}
			f.After = page.Next
		}
	}
	if got := whole(); len(got) != n {
		t.Fatalf("the whole log has %d commissions, want %d", len(got), n)
	}

	// Commissions resolved after the reopen follow; the last cursor ends
	// the log; a cursor that is not one is refused.
	for i := n + 1; i <= n+10; i++ {
		res, err := l.Issue(ctx, IssueRequest{Client: "c", Name: fmt.Sprint(i),
			Provisions: []holdings.Provision{{Key: k, Quantity: int64(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		resolve(res.Serial)
	}
	if got := whole(); len(got) != n+10 {
		t.Fatalf("the whole log has %d commissions, want %d", len(got), n+10)
	}
	last := base64.RawURLEncoding.EncodeToString(resolvedKey(nil, n+10))
	if page, err := l.Log(LogFilter{After: last}); err != nil || len(page.Entries) != 0 || page.Next != "" {
		t.Fatalf("after the last commission: %+v %v", page, err)
	}
	for _, bad := range []string{"eA", base64.RawURLEncoding.EncodeToString(blockKey(nil, 1, 2))} {
		if _, err := l.Log(LogFilter{After: bad}); err == nil || !strings.Contains(err.Error(), "bad cursor") {
			t.Errorf("cursor %q: %v, want bad cursor", bad, err)
		}
	}
}

// toOneAKey rewrites the resolved commissions up to serial max of a closed
// ledger's state database as a database written before blocks kept them:
// a key each. It returns how many it moved.
func toOneAKey(t *testing.T, opts Options, max uint64) int {
	t.Helper()
	db, err := pebble.Open(opts.Dir, &pebble.Options{FS: opts.FS, FormatMajorVersion: pebble.FormatNewest, Logger: pebbleLogger{opts.Logger}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBlock}, UpperBound: []byte{prefixBlock + 1}})
	if err != nil {
		t.Fatal(err)
	}
	pb := db.NewBatch()
	moved := 0
	for it.First(); it.Valid(); it.Next() {
		var keep []resolvedRec
		var arena []byte
		block := beUint64(it.Key()[1:])
		if err := eachResolved(block, it.Value(), func(s uint64, rec []byte) bool {
			if s <= max {
				_ = pb.Set(resolvedKey(nil, s), rec, nil)
				moved++
			} else {
				keep = append(keep, resolvedRec{serial: s, start: len(arena), end: len(arena) + len(rec)})
				arena = append(arena, rec...)
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(keep) == 0 {
			_ = pb.Delete(it.Key(), nil)
		} else {
			_ = pb.Set(it.Key(), appendResolvedBlock(nil, keep, arena), nil)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pb.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return moved
}
