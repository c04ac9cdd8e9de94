package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// journalWorkload makes every kind of journal record: quota set and
// deleted, commissions issued (with an idempotency key, auto-accepted),
// accepted, rejected and expired, a reconciliation's fix (orphans
// rejected, a correction issued and accepted, in one record), and an
// Update with records and events.
func journalWorkload(t *testing.T, l *Ledger, clock *testkit.Clock, round int) {
	t.Helper()
	ctx := context.Background()
	k := func(i int) holdings.Key { return key(fmt.Sprintf("user:%d", i), "project:p", "vm") }
	var settings []HoldingSetting
	for i := range 20 {
		settings = append(settings, HoldingSetting{Key: k(i), Limit: int64(100 + round)})
	}
	if err := l.SetHoldings(ctx, settings); err != nil {
		t.Fatal(err)
	}
	gone := key(fmt.Sprintf("gone:%d", round), "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: gone, Limit: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteHoldings(ctx, []holdings.Key{gone}); err != nil {
		t.Fatal(err)
	}
	var serials []uint64
	for i := range 10 {
		req := IssueRequest{Client: "c", Name: fmt.Sprint("n", i), Provisions: []holdings.Provision{{Key: k(i), Quantity: 2}, {Key: k(i + 1), Quantity: 1}}}
		switch i % 4 {
		case 1:
			req.AutoAccept = true
		case 2:
			req.IdempotencyKey = fmt.Sprintf("key-%d-%d", round, i)
		case 3:
			req.TTL = time.Minute
		}
		res, err := l.Issue(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Accepted {
			serials = append(serials, res.Serial)
		}
	}
	for i, s := range serials[:4] {
		if err := l.Resolve(ctx, "c", s, i%2 == 0, "why"); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Minute)
	if err := l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	// A reconciliation: the commissions pending since a minute ago
	// rejected, and k(0) and k(19) corrected, in one record.
	if _, err := l.Issue(ctx, IssueRequest{Client: "c", Name: "orphan", Provisions: []holdings.Provision{{Key: k(19), Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	rec, err := l.Reconcile(ctx, ReconcileRequest{Client: "c", OlderThan: time.Minute, Fix: true,
		Actual: []commission.Actual{{Key: k(0), Usage: 7}, {Key: k(19), Usage: 0}}})
	if err != nil || len(rec.Rejected) == 0 || len(rec.Corrections) != 1 {
		t.Fatalf("reconcile: %+v %v", rec, err)
	}
	if err := l.Update(ctx, func(tx *Tx) error {
		if err := tx.Put([]byte(fmt.Sprintf("Xrecord-%d", round)), []byte("value")); err != nil {
			return err
		}
		tx.Emit("identity.test", []byte(`{"round":1}`))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// ledgerState is what a user can read of a ledger, to compare two.
func ledgerState(t testkit.TB, l *Ledger) string {
	t.Helper()
	st := l.Stats()
	s := fmt.Sprintf("serial %d holdings %d pending %d\n", st.Serial, st.Holdings, st.Pending)
	for _, h := range l.FindHoldings(HoldingFilter{}) {
		s += fmt.Sprintf("%s %+v\n", h.Key, h.Value)
	}
	s += fmt.Sprintf("pending %v\n", l.Pending("c"))
	page, err := l.Log(LogFilter{Limit: MaxLogPage})
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, e := range page.Entries {
		s += fmt.Sprintf("log %d %s %d %+v %s %d\n", e.Serial, e.Key, e.Quantity, e.After, e.Reason, e.LogTime.UnixNano())
	}
	evs, err := l.Outbox(0, 1<<20)
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, e := range evs {
		s += fmt.Sprintf("event %d %s %d %s\n", e.Seq, e.Type, len(e.Holdings), e.Data)
	}
	ob, err := l.OutboxStats()
	if err != nil {
		t.Fatalf("%v", err)
	}
	s += fmt.Sprintf("outbox %+v\n", ob)
	if err := l.ScanForeign([]byte("X"), func(k, v []byte) error {
		s += fmt.Sprintf("record %s=%s\n", k, v)
		return nil
	}); err != nil {
		t.Fatalf("%v", err)
	}
	return s
}

// TestCheckpointCrash crashes after each part of a checkpoint (the state
// batch committed, flushed, the journal truncated) and checks that the
// reopened ledger reads exactly as the one that crashed, whether the relay
// had published the events the journal holds or not.
func TestCheckpointCrash(t *testing.T) {
	for part := checkpointCommitted; part <= checkpointTruncated; part++ {
		for _, relayed := range []bool{false, true} {
			t.Run(fmt.Sprintf("part%d/relayed=%v", part, relayed), func(t *testing.T) {
				clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
				fs := vfs.NewCrashableMem()
				opts := memOptions()
				opts.FS, opts.Now = fs, clock.Now
				opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
				var crashed *vfs.MemFS
				armed := false
				opts.checkpointHook = func(p int) {
					if armed && p == part {
						crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0, RNG: rand.New(rand.NewPCG(1, 2))})
					}
				}
				l, err := Open(opts)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = l.Close() }()
				for round := range 3 {
					journalWorkload(t, l, clock, round)
					if round == 0 {
						if err := l.CheckpointNow(); err != nil {
							t.Fatal(err)
						}
					}
				}
				if relayed {
					st, _ := l.OutboxStats()
					if err := l.DeleteOutbox(st.Last); err != nil {
						t.Fatal(err)
					}
				}
				want := ledgerState(t, l)
				armed = true
				if err := l.CheckpointNow(); err != nil {
					t.Fatal(err)
				}
				if crashed == nil {
					t.Fatalf("the checkpoint did not reach part %d", part)
				}
				opts.FS = crashed
				l2, err := Open(opts)
				if err != nil {
					t.Fatalf("reopen after a crash after part %d: %v", part, err)
				}
				defer func() { _ = l2.Close() }()
				if got := ledgerState(t, l2); got != want {
					t.Fatalf("after a crash after part %d the ledger reads\n%s\nwant\n%s", part, got, want)
				}
			})
		}
	}
}

// TestHolderLog reads a holder's log that lies in chunks of two checkpoints
// and in the buffer, in pages of every size and in time ranges, before and
// after a reopen that rebuilds the buffer from the journal.
func TestHolderLog(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	opts := memOptions()
	fs := vfs.NewCrashableMem()
	opts.Now, opts.FS = clock.Now, fs
	opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	ctx := context.Background()
	h1, h2 := key("user:h", "project:p", "vm"), key("user:h", "-", "ram")
	other := key("user:other", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: h1, Limit: 1000}, {Key: h2, Limit: 1000}, {Key: other, Limit: 1000}}); err != nil {
		t.Fatal(err)
	}
	var want []string // serial/provision of user:h's entries, in order
	for round := range 3 {
		for i := range 7 {
			clock.Advance(time.Second)
			ps := []holdings.Provision{{Key: other, Quantity: 1}, {Key: h1, Quantity: 1}}
			if i%2 == 0 {
				ps = append(ps, holdings.Provision{Key: h2, Quantity: 2})
			}
			res, err := l.Issue(ctx, IssueRequest{Client: "c", AutoAccept: true, Provisions: ps})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%d/1", res.Serial))
			if i%2 == 0 {
				want = append(want, fmt.Sprintf("%d/2", res.Serial))
			}
		}
		if round < 2 {
			if err := l.CheckpointNow(); err != nil { // the entries so far go into chunks
				t.Fatal(err)
			}
		}
	}
	read := func(l *Ledger, f LogFilter) []string {
		t.Helper()
		var got []string
		for pages := 0; ; pages++ {
			page, err := l.Log(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) > f.Limit {
				t.Fatalf("a page of %d entries, limit %d", len(page.Entries), f.Limit)
			}
			for _, e := range page.Entries {
				i := 1
				if e.Key == h2 {
					i = 2
				}
				got = append(got, fmt.Sprintf("%d/%d", e.Serial, i))
			}
			if page.Next == "" || pages > 100 {
				return got
			}
			f.After = page.Next
		}
	}
	check := func(l *Ledger) {
		t.Helper()
		for limit := 1; limit <= 8; limit++ {
			if got := read(l, LogFilter{Holder: "user:h", Limit: limit}); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("log of user:h in pages of %d:\n%v\nwant\n%v", limit, got, want)
			}
		}
		// Seconds 5 to 16 of the run: commissions 4 to 15 (the first was the
		// quota's batch time), straddling both checkpoints.
		from, to := opts.Now().Add(-time.Duration(21-4)*time.Second), opts.Now().Add(-time.Duration(21-16)*time.Second)
		var inRange []string
		page, err := l.Log(LogFilter{Holder: "user:h", From: from, To: to, Limit: MaxLogPage})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			if e.LogTime.Before(from) || !e.LogTime.Before(to) {
				t.Fatalf("entry of %v outside [%v, %v)", e.LogTime, from, to)
			}
			inRange = append(inRange, fmt.Sprint(e.Serial))
		}
		if len(inRange) == 0 {
			t.Fatal("no entry in the time range")
		}
		if got := read(l, LogFilter{Holder: "user:h", From: from, To: to, Limit: 2}); len(got) != len(inRange) {
			t.Fatalf("the time range in pages of 2: %d entries, want %d", len(got), len(inRange))
		}
	}
	check(l)
	// A crash: the buffer is gone, and the journal after the last
	// checkpoint fills it again.
	opts.FS = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0, RNG: rand.New(rand.NewPCG(1, 2))})
	_ = l.Close()
	if l, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	check(l)
}

// TestHolderLogOrder resolves, in one call, a commission after one of a
// greater serial, both of one holder: the holder's log still reads in
// serial order (they share a log time), from the buffer and from a chunk.
func TestHolderLogOrder(t *testing.T) {
	opts := memOptions()
	opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
	l := mustOpen(t, opts)
	ctx := context.Background()
	k := key("user:a", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 100}}); err != nil {
		t.Fatal(err)
	}
	var serials []uint64
	for range 3 {
		res, err := l.Issue(ctx, IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, res.Serial)
	}
	// Accepts first, then rejects: serial 3 is logged before 1 and 2.
	if _, err := l.ResolveMany(ctx, "c", []uint64{serials[2]}, []uint64{serials[0], serials[1]}, ""); err != nil {
		t.Fatal(err)
	}
	check := func(where string) {
		t.Helper()
		for _, limit := range []int{1, 2, 10} {
			var got []uint64
			f := LogFilter{Holder: "user:a", Limit: limit}
			for {
				page, err := l.Log(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Entries {
					got = append(got, e.Serial)
				}
				if page.Next == "" {
					break
				}
				f.After = page.Next
			}
			if fmt.Sprint(got) != fmt.Sprint(serials) {
				t.Fatalf("%s, pages of %d: the log reads serials %v, want %v", where, limit, got, serials)
			}
		}
	}
	check("in the buffer")
	if err := l.CheckpointNow(); err != nil {
		t.Fatal(err)
	}
	check("in a chunk")
}
