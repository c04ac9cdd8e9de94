package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/holdings"
)

// journalWorkload makes every kind of journal record: quota set and
// deleted, commissions issued (with an idempotency key, auto-accepted),
// accepted, rejected and expired, and an Update with records and events.
func journalWorkload(t *testing.T, l *Ledger, clock *fakeClock, round int) {
	t.Helper()
	ctx := context.Background()
	k := func(i int) holdings.Key { return key(fmt.Sprintf("user:%d", i), "project:p", "vm") }
	var settings []QuotaSetting
	for i := range 20 {
		settings = append(settings, QuotaSetting{Key: k(i), Limit: int64(100 + round)})
	}
	if err := l.SetQuota(ctx, settings); err != nil {
		t.Fatal(err)
	}
	gone := key(fmt.Sprintf("gone:%d", round), "-", "vm")
	if err := l.SetQuota(ctx, []QuotaSetting{{Key: gone, Limit: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteQuota(ctx, []holdings.Key{gone}); err != nil {
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
	clock.advance(2 * time.Minute)
	if err := l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
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
func ledgerState(t *testing.T, l *Ledger) string {
	t.Helper()
	st := l.Stats()
	s := fmt.Sprintf("serial %d holdings %d pending %d\n", st.Serial, st.Holdings, st.Pending)
	for _, h := range l.Quotas(QuotaFilter{}) {
		s += fmt.Sprintf("%s %+v\n", h.Key, h.Value)
	}
	s += fmt.Sprintf("pending %v\n", l.Pending("c"))
	page, err := l.Log(LogFilter{Limit: MaxLogPage})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		s += fmt.Sprintf("log %d %s %d %+v %s %d\n", e.Serial, e.Key, e.Quantity, e.After, e.Reason, e.LogTime.UnixNano())
	}
	evs, err := l.Outbox(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		s += fmt.Sprintf("event %d %s %d %s\n", e.Seq, e.Type, len(e.Holdings), e.Data)
	}
	ob, err := l.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	s += fmt.Sprintf("outbox %+v\n", ob)
	if err := l.ScanForeign([]byte("X"), func(k, v []byte) error {
		s += fmt.Sprintf("record %s=%s\n", k, v)
		return nil
	}); err != nil {
		t.Fatal(err)
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
				clock := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
				fs := vfs.NewCrashableMem()
				opts := memOptions()
				opts.FS, opts.Now = fs, clock.now
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
