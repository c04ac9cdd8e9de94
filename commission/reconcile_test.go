package commission

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

var (
	recCutoff = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	recOld    = recCutoff.Add(-time.Hour)
	recYoung  = recCutoff.Add(time.Minute)
)

func TestPlanReconcile(t *testing.T) {
	a, b, c := k("user:a", "vm"), k("user:b", "vm"), k("user:c", "vm")
	// The ledger: a holds 3 committed; b holds 1 committed, 2 pending import
	// from an orphan and 1 pending import from a commission in flight; c 5.
	orphan := &Commission{Serial: 7, Client: "cyclades", IssueTime: recOld, Provisions: []holdings.Provision{p(b, 2)}}
	young := &Commission{Serial: 9, Client: "cyclades", IssueTime: recYoung, Provisions: []holdings.Provision{p(b, 1)}}
	atCutoff := &Commission{Serial: 8, Client: "cyclades", IssueTime: recCutoff, Provisions: []holdings.Provision{p(c, -2)}}
	ledger := map[holdings.Key]holdings.Value{a: val(10, 3, 3), b: val(10, 1, 4), c: val(10, 3, 5)}
	get := func(key holdings.Key) (holdings.Value, bool) { v, ok := ledger[key]; return v, ok }
	pending := []*Commission{young, orphan, atCutoff}

	for _, tc := range []struct {
		name       string
		actual     []Actual
		drifts     []Drift
		unknown    []holdings.Key
		err        failure.Code
		errMessage string
	}{
		{name: "OK/Agrees", actual: []Actual{{a, 3}, {b, 1}, {c, 5}}},
		{name: "OK/LostRelease", actual: []Actual{{a, 1}},
			drifts: []Drift{{Key: a, Ledger: val(10, 3, 3), Actual: 1, Difference: -2}}},
		{name: "OK/LostAccept", actual: []Actual{{a, 4}},
			drifts: []Drift{{Key: a, Ledger: val(10, 3, 3), Actual: 4, Difference: 1}}},
		// b once the orphan is rejected: [1, 2]; 2 may be the commission in
		// flight, done.
		{name: "OK/InFlightDone", actual: []Actual{{b, 2}}},
		{name: "OK/OrphanCounted", actual: []Actual{{b, 3}},
			drifts: []Drift{{Key: b, Ledger: val(10, 1, 4), Actual: 3, Difference: 1}}},
		{name: "OK/BelowRange", actual: []Actual{{b, 0}},
			drifts: []Drift{{Key: b, Ledger: val(10, 1, 4), Actual: 0, Difference: -1}}},
		// c once the release at the cutoff is rejected: [5, 5].
		{name: "OK/ReleaseOrphan", actual: []Actual{{c, 3}},
			drifts: []Drift{{Key: c, Ledger: val(10, 3, 5), Actual: 3, Difference: -2}}},
		{name: "OK/OverTheLimit", actual: []Actual{{a, 25}},
			drifts: []Drift{{Key: a, Ledger: val(10, 3, 3), Actual: 25, Difference: 22}}},
		{name: "OK/Unknown", actual: []Actual{{k("user:nobody", "vm"), 2}, {a, 3}}, unknown: []holdings.Key{k("user:nobody", "vm")}},
		{name: "ErrInvalid/Negative", actual: []Actual{{a, -1}}, err: failure.Invalid, errMessage: `count 0: the usage of ("user:a", "system", "vm") is negative`},
		{name: "ErrInvalid/Twice", actual: []Actual{{a, 1}, {b, 1}, {a, 2}}, err: failure.Invalid, errMessage: `count 2: ("user:a", "system", "vm") is counted twice`},
		{name: "ErrInvalid/Key", actual: []Actual{{holdings.Key{Holder: "", Source: holdings.NullSource, Resource: "vm"}, 1}}, err: failure.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := PlanReconcile(get, pending, tc.actual, recCutoff)
			if tc.err != "" {
				if failure.CodeOf(err) != tc.err || (tc.errMessage != "" && err.Error() != tc.errMessage) {
					t.Fatalf("err %v (%s), want %s %q", err, failure.CodeOf(err), tc.err, tc.errMessage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Orphans) != 2 || r.Orphans[0] != orphan || r.Orphans[1] != atCutoff {
				t.Fatalf("orphans %v, want serials 7 and 8 (at or before the cutoff), in order", r.Orphans)
			}
			if fmt.Sprint(r.Drifts) != fmt.Sprint(tc.drifts) || fmt.Sprint(r.Unknown) != fmt.Sprint(tc.unknown) {
				t.Fatalf("drifts %v unknown %v\nwant %v %v", r.Drifts, r.Unknown, tc.drifts, tc.unknown)
			}
			if len(r.Correction) != len(r.Drifts) {
				t.Fatalf("correction %v for drifts %v", r.Correction, r.Drifts)
			}
			for i, d := range r.Drifts {
				if r.Correction[i] != p(d.Key, d.Difference) {
					t.Fatalf("correction %v for drift %+v", r.Correction[i], d)
				}
			}
			if ledger[a] != val(10, 3, 3) {
				t.Fatal("the plan changed the ledger")
			}
		})
	}
}

func TestPlanReconcileOverflow(t *testing.T) {
	a := k("user:a", "vm")
	get := func(holdings.Key) (holdings.Value, bool) {
		return val(math.MaxInt64, math.MinInt64+1, math.MinInt64+1), true
	}
	_, err := PlanReconcile(get, nil, []Actual{{a, math.MaxInt64}}, recCutoff)
	if !errors.Is(err, holdings.ErrOverflow) {
		t.Fatalf("err %v, want ErrOverflow", err)
	}
}

// TestPlanReconcileSetsRight: on random holdings with random commissions
// pending, old and young, applying the plan (the orphans rejected, the
// correction issued forced and accepted) leaves every counted holding
// with its count within [usage_min, usage_max], leaves the holdings not
// counted as the orphans left them, and planning again finds nothing.
func TestPlanReconcileSetsRight(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(t, "holdings")
		ledger := map[holdings.Key]holdings.Value{}
		keys := make([]holdings.Key, n)
		for i := range keys {
			keys[i] = k(fmt.Sprintf("user:%d", i), "vm")
			u := rapid.Int64Range(0, 20).Draw(t, "usage")
			ledger[keys[i]] = val(rapid.Int64Range(0, 30).Draw(t, "limit"), u, u)
		}
		get := func(key holdings.Key) (holdings.Value, bool) { v, ok := ledger[key]; return v, ok }
		var pending []*Commission
		for s := range rapid.IntRange(0, 5).Draw(t, "pending") {
			key := keys[rapid.IntRange(0, n-1).Draw(t, "key")]
			q := rapid.Int64Range(-5, 5).Draw(t, "quantity")
			after, err := Issue(get, []holdings.Provision{p(key, q)}, true)
			if err != nil {
				continue // a release below zero: never issued
			}
			ledger[key] = after[0]
			issued := recYoung
			if rapid.Bool().Draw(t, "old") {
				issued = recOld
			}
			pending = append(pending, &Commission{Serial: uint64(s + 1), IssueTime: issued, Provisions: []holdings.Provision{p(key, q)}})
		}
		var actual []Actual
		counted := map[holdings.Key]int64{}
		for _, key := range keys {
			if rapid.Bool().Draw(t, "counted") {
				u := rapid.Int64Range(0, 30).Draw(t, "actual")
				actual = append(actual, Actual{key, u})
				counted[key] = u
			}
		}
		r, err := PlanReconcile(get, pending, actual, recCutoff)
		if err != nil {
			t.Fatal(err)
		}
		// Apply it as the ledger does.
		for _, c := range r.Orphans {
			after, err := Resolve(get, c, false)
			if err != nil {
				t.Fatal(err)
			}
			for i, pr := range c.Provisions {
				ledger[pr.Key] = after[i]
			}
		}
		beforeCorrection := map[holdings.Key]holdings.Value{}
		for key, v := range ledger {
			beforeCorrection[key] = v
		}
		after, err := Issue(get, r.Correction, true)
		if err != nil {
			t.Fatalf("the correction does not issue: %v", err)
		}
		for i, pr := range r.Correction {
			if ledger[pr.Key], err = after[i].Accept(pr.Quantity); err != nil {
				t.Fatalf("the correction does not accept: %v", err)
			}
		}
		for key, v := range ledger {
			u, ok := counted[key]
			switch {
			case ok && (u < v.UsageMin || u > v.UsageMax):
				t.Fatalf("%s: count %d outside [%d, %d] after the fix", key, u, v.UsageMin, v.UsageMax)
			case !ok && v != beforeCorrection[key]:
				t.Fatalf("%s, not counted, changed by the correction", key)
			case v.UsageMin < 0:
				t.Fatalf("%s: usage_min %d", key, v.UsageMin)
			}
		}
		var young []*Commission
		for _, c := range pending {
			if c.IssueTime.After(recCutoff) {
				young = append(young, c)
			}
		}
		again, err := PlanReconcile(get, young, actual, recCutoff)
		if err != nil || len(again.Drifts) != 0 || len(again.Orphans) != 0 {
			t.Fatalf("planning again: %+v %v", again, err)
		}
	})
}
