package ledger

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// journalRecord reads and decodes the journal record seq.
func journalRecord(t *testing.T, l *Ledger, seq uint64) *jrecord {
	t.Helper()
	v, closer, err := l.jdb.Get(journalKey(nil, seq))
	if err != nil {
		t.Fatalf("journal record %d: %v", seq, err)
	}
	defer closer.Close()
	r, err := decodeJournal(seq, slices.Clone(v), nil)
	if err != nil {
		t.Fatalf("journal record %d: %v", seq, err)
	}
	return r
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := memOptions()
	opts.Now = clock.Now
	opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
	l := mustOpen(t, opts)
	a, b, c := key("user:a", "project:a", "vm"), key("user:b", "project:b", "vm"), key("user:c", "project:c", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: a, Limit: 10}, {Key: b, Limit: 10}, {Key: c, Limit: 2}}); err != nil {
		t.Fatal(err)
	}
	issue := func(client string, accept bool, ps ...holdings.Provision) uint64 {
		t.Helper()
		res, err := l.Issue(ctx, IssueRequest{Client: client, AutoAccept: accept, Provisions: ps})
		if err != nil {
			t.Fatal(err)
		}
		return res.Serial
	}
	// a: 3 VMs, one of them deleted while its release was lost. b: 1 VM,
	// and a create that crashed between issue and accept (an orphan); c: 2
	// VMs, at its limit, and the service holds 4. Another service's old
	// commission on b is none of this one's business; a young one of this
	// service is in flight.
	issue("cyclades", true, holdings.Provision{Key: a, Quantity: 3})
	issue("cyclades", true, holdings.Provision{Key: b, Quantity: 1}, holdings.Provision{Key: c, Quantity: 2})
	orphan := issue("cyclades", false, holdings.Provision{Key: b, Quantity: 2})
	other := issue("pithos", false, holdings.Provision{Key: b, Quantity: 1})
	clock.Advance(2 * time.Hour)
	young := issue("cyclades", false, holdings.Provision{Key: a, Quantity: 1})
	count := []commission.Actual{{Key: a, Usage: 2}, {Key: b, Usage: 1}, {Key: c, Usage: 4},
		{Key: key("user:gone", "project:gone", "vm"), Usage: 1}}
	req := ReconcileRequest{Client: "cyclades", Actual: count, OlderThan: time.Hour}

	// Without Fix: the plan, and no change, no journal record.
	before, seq := ledgerState(t, l), l.durableSeq.Load()
	plan, err := l.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Orphans) != 1 || plan.Orphans[0].Serial != orphan || !plan.Time.Equal(clock.Now()) {
		t.Fatalf("orphans %+v at %v, want %d", plan.Orphans, plan.Time, orphan)
	}
	wantDrifts := fmt.Sprint([]commission.Drift{
		{Key: a, Ledger: holdings.Value{Limit: 10, UsageMin: 3, UsageMax: 4}, Actual: 2, Difference: -1},
		{Key: c, Ledger: holdings.Value{Limit: 2, UsageMin: 2, UsageMax: 2}, Actual: 4, Difference: 2},
	})
	if fmt.Sprint(plan.Drifts) != wantDrifts || len(plan.Unknown) != 1 || plan.Unknown[0].Holder != "user:gone" ||
		plan.Rejected != nil || plan.Corrections != nil {
		t.Fatalf("plan %+v\nwant drifts %s", plan, wantDrifts)
	}
	if got := ledgerState(t, l); got != before || l.durableSeq.Load() != seq {
		t.Fatalf("a plan changed the ledger:\n%s\nwant\n%s", got, before)
	}

	// With Fix: one call, one journal record, the plan applied.
	outbox := l.durableOutboxSeq.Load()
	req.Fix = true
	res, err := l.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Drifts) != wantDrifts || !slices.Equal(res.Rejected, []uint64{orphan}) || len(res.Corrections) != 1 {
		t.Fatalf("fix %+v", res)
	}
	fix := res.Corrections[0]
	if got := l.durableSeq.Load(); got != seq+1 {
		t.Fatalf("the fix wrote journal records %d to %d, want one", seq+1, got)
	}
	r := journalRecord(t, l, seq+1)
	if len(r.calls) != 3 || r.calls[0].kind != callResolve || r.calls[0].resolve != resolveRejected || r.calls[0].c.Serial != orphan ||
		r.calls[1].kind != callIssue || r.calls[1].c.Serial != fix || r.calls[1].final != nil ||
		r.calls[2].kind != callResolve || r.calls[2].resolve != resolveAccepted || r.calls[2].c.Serial != fix ||
		r.calls[2].reason != "RECONCILE:cyclades" {
		t.Fatalf("the fix's journal record: %+v", r.calls)
	}
	for k, want := range map[holdings.Key]holdings.Value{
		a: {Limit: 10, UsageMin: 2, UsageMax: 3}, // the young commission still pending
		b: {Limit: 10, UsageMin: 1, UsageMax: 2}, // the orphan released; pithos's pending
		c: {Limit: 2, UsageMin: 4, UsageMax: 4},  // forced past its limit
	} {
		if v, _ := l.FindHoldingByKey(k); v != want {
			t.Errorf("%s after the fix: %+v, want %+v", k, v, want)
		}
	}
	if got := l.Pending("cyclades"); !slices.Equal(got, []uint64{young}) {
		t.Errorf("cyclades pending after the fix: %v, want the young %d", got, young)
	}
	if got := l.Pending("pithos"); !slices.Equal(got, []uint64{other}) {
		t.Errorf("pithos pending after the fix: %v, want %d", got, other)
	}

	// The events and the provision log show every correction.
	evs, err := l.Outbox(outbox, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s %d %s %s %d", e.Type, e.Serial, e.Name, e.Reason, len(e.Holdings)))
	}
	want := []string{
		fmt.Sprintf("%s %d  REJECT:RECONCILE:cyclades 1", catalog.CommissionRejectedType, orphan),
		fmt.Sprintf("%s %d RECONCILE  2", catalog.CommissionIssuedType, fix),
		fmt.Sprintf("%s %d RECONCILE RECONCILE:cyclades 2", catalog.CommissionAcceptedType, fix),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events of the fix:\n%s\nwant\n%s", got, want)
	}
	for serial, reason := range map[uint64]string{orphan: "REJECT:RECONCILE:cyclades", fix: "RECONCILE:cyclades"} {
		page, err := l.Log(LogFilter{Serial: serial})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) == 0 {
			t.Fatalf("no provision log of %d", serial)
		}
		for _, e := range page.Entries {
			if e.Reason != reason || e.Client != "cyclades" {
				t.Errorf("log of %d: %+v, want reason %s", serial, e, reason)
			}
		}
	}

	// Done once: again, nothing to do and nothing written.
	after, seq := ledgerState(t, l), l.durableSeq.Load()
	again, err := l.Reconcile(ctx, req)
	if err != nil || len(again.Drifts) != 0 || len(again.Orphans) != 0 || again.Corrections != nil || again.Rejected != nil {
		t.Fatalf("a second fix: %+v %v", again, err)
	}
	if l.durableSeq.Load() != seq || ledgerState(t, l) != after {
		t.Fatal("a second fix changed the ledger")
	}

	// The record replays to the same ledger: reopened without a
	// checkpoint since, the journal is all it has.
	l.skipCloseCheckpoint = true
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := mustOpen(t, opts)
	if got := ledgerState(t, l2); got != after {
		t.Fatalf("replayed, the ledger reads\n%s\nwant\n%s", got, after)
	}
	if got := l2.Pending("cyclades"); !slices.Equal(got, []uint64{young}) {
		t.Fatalf("replayed, cyclades pending %v", got)
	}
}

func TestReconcileRefusals(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	a := key("user:a", "project:a", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: a, Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  ReconcileRequest
	}{
		{"NoClient", ReconcileRequest{Actual: []commission.Actual{{Key: a, Usage: 1}}}},
		{"NegativeAge", ReconcileRequest{Client: "c", OlderThan: -time.Second}},
		{"NegativeUsage", ReconcileRequest{Client: "c", Actual: []commission.Actual{{Key: a, Usage: -1}}, Fix: true}},
		{"Twice", ReconcileRequest{Client: "c", Actual: []commission.Actual{{Key: a, Usage: 1}, {Key: a, Usage: 2}}, Fix: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := l.durableSeq.Load()
			if _, err := l.Reconcile(ctx, tc.req); failure.CodeOf(err) != failure.Invalid {
				t.Fatalf("err %v, want Invalid", err)
			}
			if l.durableSeq.Load() != seq {
				t.Fatal("a refused reconciliation wrote")
			}
		})
	}
}

// TestReconcileManyDrifts: more drifts than a commission holds make one
// correction per holdings.MaxProvisions, all in the fix's one record.
func TestReconcileManyDrifts(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	n := holdings.MaxProvisions + 5
	settings := make([]HoldingSetting, n)
	count := make([]commission.Actual, n)
	for i := range settings {
		settings[i] = HoldingSetting{Key: key(fmt.Sprintf("user:%d", i), "-", "vm"), Limit: 5}
		count[i] = commission.Actual{Key: settings[i].Key, Usage: 1}
	}
	if err := l.SetHoldings(ctx, settings); err != nil {
		t.Fatal(err)
	}
	seq := l.durableSeq.Load()
	res, err := l.Reconcile(ctx, ReconcileRequest{Client: "c", Actual: count, Fix: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Drifts) != n || len(res.Corrections) != 2 || l.durableSeq.Load() != seq+1 {
		t.Fatalf("%d drifts, corrections %v, records %d", len(res.Drifts), res.Corrections, l.durableSeq.Load()-seq)
	}
	if r := journalRecord(t, l, seq+1); len(r.calls) != 4 || len(r.calls[0].c.Provisions) != holdings.MaxProvisions ||
		len(r.calls[2].c.Provisions) != 5 {
		t.Fatalf("the fix's record: %d calls", len(r.calls))
	}
	for _, s := range count {
		if v, _ := l.FindHoldingByKey(s.Key); v.UsageMin != 1 || v.UsageMax != 1 {
			t.Fatalf("%s: %+v", s.Key, v)
		}
	}
}

func TestFindPendingAndResolveManyAny(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := memOptions()
	opts.Now = clock.Now
	l := mustOpen(t, opts)
	a := key("user:a", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: a, Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	var serials []uint64
	for i, client := range []string{"cyclades", "pithos", "cyclades"} {
		if i == 2 {
			clock.Advance(time.Hour)
		}
		res, err := l.Issue(ctx, IssueRequest{Client: client, Provisions: []holdings.Provision{{Key: a, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, res.Serial)
	}
	serialsOf := func(cs []commission.Commission) []uint64 {
		var out []uint64
		for _, c := range cs {
			out = append(out, c.Serial)
		}
		return out
	}
	if got := serialsOf(l.FindPending(PendingFilter{})); !slices.Equal(got, serials) {
		t.Fatalf("every pending %v, want %v", got, serials)
	}
	if got := serialsOf(l.FindPending(PendingFilter{Client: "cyclades"})); !slices.Equal(got, []uint64{serials[0], serials[2]}) {
		t.Fatalf("cyclades's pending %v", got)
	}
	if got := serialsOf(l.FindPending(PendingFilter{IssuedBy: clock.Now().Add(-time.Minute)})); !slices.Equal(got, serials[:2]) {
		t.Fatalf("pending issued an hour ago %v", got)
	}
	res, err := l.ResolveManyAny(ctx, []uint64{serials[1]}, []uint64{serials[0], 999}, "ADMIN:u")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Accepted, serials[1:2]) || !slices.Equal(res.Rejected, serials[:1]) || !slices.Equal(res.NotFound, []uint64{999}) {
		t.Fatalf("resolved %+v", res)
	}
	if got := serialsOf(l.FindPending(PendingFilter{})); !slices.Equal(got, serials[2:]) {
		t.Fatalf("pending after %v", got)
	}
	page, err := l.Log(LogFilter{Serial: serials[1]})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Reason != "ACCEPT:ADMIN:u" || page.Entries[0].Client != "pithos" {
		t.Fatalf("log of the accepted %+v %v", page.Entries, err)
	}
	// A client's resolve-many still sees its own only.
	res, err = l.ResolveMany(ctx, "pithos", []uint64{serials[2]}, nil, "")
	if err != nil || !slices.Equal(res.NotFound, serials[2:]) {
		t.Fatalf("pithos resolving cyclades's: %+v %v", res, err)
	}
}
