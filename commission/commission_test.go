package commission

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

func k(holder, resource string) holdings.Key {
	return holdings.Key{Holder: holder, Source: holdings.SourceOf("system"), Resource: resource}
}

func kNull(holder, resource string) holdings.Key {
	return holdings.Key{Holder: holder, Source: holdings.NullSource, Resource: resource}
}

func kEmpty(holder, resource string) holdings.Key {
	return holdings.Key{Holder: holder, Source: holdings.SourceOf(""), Resource: resource}
}

func val(limit, usageMin, usageMax int64) holdings.Value {
	return holdings.Value{Limit: limit, UsageMin: usageMin, UsageMax: usageMax}
}

func p(key holdings.Key, q int64) holdings.Provision {
	return holdings.Provision{Key: key, Quantity: q}
}

// many returns n provisions over n distinct keys, quantity 1 each.
func many(n int) []holdings.Provision {
	ps := make([]holdings.Provision, n)
	for i := range ps {
		ps[i] = p(k(fmt.Sprintf("pad:%d", i), "pad"), 1)
	}
	return ps
}

func TestMerge(t *testing.T) {
	a, b, c := k("user:1", "cpu"), k("user:1", "ram"), k("user:2", "cpu")
	type test struct {
		name    string
		in      []holdings.Provision
		want    []holdings.Provision
		wantErr error
	}
	tests := []test{
		{"OK/Nil", nil, nil, nil},
		{"OK/Empty", []holdings.Provision{}, nil, nil},
		{"OK/Single", []holdings.Provision{p(a, 3)}, []holdings.Provision{p(a, 3)}, nil},
		{"OK/Distinct", []holdings.Provision{p(b, 1), p(a, 2), p(c, 3)},
			[]holdings.Provision{p(b, 1), p(a, 2), p(c, 3)}, nil},
		{"OK/SameKeySummed", []holdings.Provision{p(a, 3), p(b, 1), p(a, 4)},
			[]holdings.Provision{p(a, 7), p(b, 1)}, nil},
		{"OK/FirstAppearanceOrder", []holdings.Provision{p(c, 1), p(a, 1), p(c, 1), p(b, 1), p(a, 1)},
			[]holdings.Provision{p(c, 2), p(a, 2), p(b, 1)}, nil},
		{"OK/ImportAndReleaseNet", []holdings.Provision{p(a, 5), p(a, -8)},
			[]holdings.Provision{p(a, -3)}, nil},
		{"OK/SumToZeroKept", []holdings.Provision{p(a, 5), p(a, -5)},
			[]holdings.Provision{p(a, 0)}, nil},
		{"OK/NullAndEmptySourceDistinct",
			[]holdings.Provision{p(kNull("u", "r"), 1), p(kEmpty("u", "r"), 2), p(kNull("u", "r"), 3)},
			[]holdings.Provision{p(kNull("u", "r"), 4), p(kEmpty("u", "r"), 2)}, nil},
		{"OK/SumToMaxInt64", []holdings.Provision{p(a, math.MaxInt64-1), p(a, 1)},
			[]holdings.Provision{p(a, math.MaxInt64)}, nil},
		{"OK/SumToMinInt64", []holdings.Provision{p(a, math.MinInt64+1), p(a, -1)},
			[]holdings.Provision{p(a, math.MinInt64)}, nil},
		{"ErrEmptyName/Holder", []holdings.Provision{p(a, 1), p(k("", "cpu"), 1)}, nil, ErrEmptyName},
		{"ErrEmptyName/Resource", []holdings.Provision{p(k("user:1", ""), 1)}, nil, ErrEmptyName},
		{"ErrEmptyName/NullSource", []holdings.Provision{p(kNull("", ""), 1)}, nil, ErrEmptyName},
		{"ErrOverflow", []holdings.Provision{p(a, math.MaxInt64), p(b, 1), p(a, 1)}, nil, holdings.ErrOverflow},
		{"ErrOverflow/Negative", []holdings.Provision{p(a, math.MinInt64), p(a, -1)}, nil, holdings.ErrOverflow},
	}

	// The same cases past 16 provisions, where Merge indexes keys with a map:
	// pad each input with 17 distinct keys at the end and expect them after.
	pad := many(17)
	for _, tc := range append([]test(nil), tests...) {
		if len(tc.in) == 0 {
			continue
		}
		in := append(append([]holdings.Provision(nil), tc.in...), pad...)
		var want []holdings.Provision
		if tc.wantErr == nil {
			want = append(append([]holdings.Provision(nil), tc.want...), pad...)
		}
		tests = append(tests, test{"Map/" + tc.name, in, want, tc.wantErr})
		// And with the padding first, so the interesting keys are found in
		// the map after it was filled.
		in = append(append([]holdings.Provision(nil), pad...), tc.in...)
		if tc.wantErr == nil {
			want = append(append([]holdings.Provision(nil), pad...), tc.want...)
		}
		tests = append(tests, test{"MapPadFirst/" + tc.name, in, want, tc.wantErr})
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]holdings.Provision(nil), tc.in...)
			got, err := Merge(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				// A bad request, said without a package prefix.
				if code, msg := failure.CodeOf(err), err.Error(); code != failure.Invalid ||
					strings.HasPrefix(msg, "commission:") || strings.Contains(msg, "holdings:") {
					t.Fatalf("err %q has code %q, want %q and no package prefix", msg, code, failure.Invalid)
				}
				if got != nil {
					t.Fatalf("got %v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Merge =\n%v\nwant\n%v", got, tc.want)
			}
			if !reflect.DeepEqual(before, tc.in) && len(before) > 0 {
				t.Fatalf("Merge changed its input")
			}
		})
	}
}

// TestMergePaths checks that the linear and the map path agree on inputs
// around the threshold with many repeats.
func TestMergePaths(t *testing.T) {
	keys := []holdings.Key{k("a", "r"), kNull("a", "r"), kEmpty("a", "r"), k("b", "r"), k("a", "s")}
	for n := 1; n <= 40; n++ {
		t.Run(fmt.Sprintf("OK/%d", n), func(t *testing.T) {
			ps := make([]holdings.Provision, n)
			want := map[holdings.Key]int64{}
			var order []holdings.Key
			for i := range ps {
				key := keys[(i*7+i/3)%len(keys)]
				q := int64(i - 10)
				ps[i] = p(key, q)
				if _, ok := want[key]; !ok {
					order = append(order, key)
				}
				want[key] += q
			}
			got, err := Merge(ps)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(order) {
				t.Fatalf("got %d provisions, want %d", len(got), len(order))
			}
			for i, g := range got {
				if g.Key != order[i] || g.Quantity != want[g.Key] {
					t.Fatalf("provision %d = %v, want %v %d", i, g, order[i], want[order[i]])
				}
			}
		})
	}
}

// table is a Lookup over a map.
type table map[holdings.Key]holdings.Value

func (t table) get(key holdings.Key) (holdings.Value, bool) {
	v, ok := t[key]
	return v, ok
}

func TestIssue(t *testing.T) {
	a, b, c := k("user:1", "cpu"), k("user:1", "ram"), kNull("project:1", "cpu")
	hs := table{
		a: {Limit: 10, UsageMin: 2, UsageMax: 4},
		b: {Limit: 5, UsageMin: 1, UsageMax: 1},
		c: {Limit: 0, UsageMin: 0, UsageMax: 0},
	}
	tests := []struct {
		name    string
		ps      []holdings.Provision
		force   bool
		want    []holdings.Value
		wantErr error
	}{
		{"OK/Empty", nil, false, []holdings.Value{}, nil},
		{"OK", []holdings.Provision{p(a, 6), p(b, -1)}, false,
			[]holdings.Value{val(10, 2, 10), val(5, 0, 1)}, nil},
		{"OK/Forced", []holdings.Provision{p(a, 100), p(c, 1)}, true,
			[]holdings.Value{val(10, 2, 104), val(0, 0, 1)}, nil},
		{"ErrNoHolding", []holdings.Provision{p(a, 1), p(kEmpty("project:1", "cpu"), 1), p(b, 100)}, false, nil,
			&holdings.NoHoldingError{Provision: p(kEmpty("project:1", "cpu"), 1)}},
		{"ErrNoCapacity/FirstInOrder", []holdings.Provision{p(a, 1), p(b, 5), p(c, 1)}, false, nil,
			&holdings.NoCapacityError{Provision: p(b, 5), Limit: 5, Usage: 1}},
		{"ErrNoQuantity/BeforeNoCapacity", []holdings.Provision{p(b, -2), p(a, 100)}, false, nil,
			&holdings.NoQuantityError{Provision: p(b, -2), Limit: 0, Usage: 1}},
		{"ErrNoHolding/Forced", []holdings.Provision{p(a, 100), p(k("user:1", "x"), 0), p(b, -2)}, true, nil,
			&holdings.NoHoldingError{Provision: p(k("user:1", "x"), 0)}},
		{"ErrNoQuantity/ForcedNoWaiver", []holdings.Provision{p(a, 100), p(b, -2)}, true, nil,
			&holdings.NoQuantityError{Provision: p(b, -2), Limit: 0, Usage: 1}},
		{"ErrNoHolding/BeforeLaterFailure", []holdings.Provision{p(k("nobody", "cpu"), 1), p(b, 100)}, false, nil,
			&holdings.NoHoldingError{Provision: p(k("nobody", "cpu"), 1)}},
		{"ErrOverflow", []holdings.Provision{p(a, math.MaxInt64)}, true, nil, holdings.ErrOverflow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snapshot := table{}
			for key, v := range hs {
				snapshot[key] = v
			}
			got, err := Issue(hs.get, tc.ps, tc.force)
			testkit.CheckErr(t, err, tc.wantErr)
			if tc.wantErr != nil {
				if got != nil {
					t.Fatalf("got %v with an error", got)
				}
			} else if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Issue = %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(hs, snapshot) {
				t.Fatal("Issue changed the holdings")
			}
		})
	}
}

func TestResolve(t *testing.T) {
	a, b, c := k("user:1", "cpu"), kNull("project:1", "ram"), k("user:1", "disk")
	// The holdings as they are after issuing +3 on a and -2 on b, and +5
	// forced on c whose limit was then lowered to 2.
	hs := table{
		a: {Limit: 10, UsageMin: 1, UsageMax: 4},
		b: {Limit: 8, UsageMin: 3, UsageMax: 5},
		c: {Limit: 2, UsageMin: 0, UsageMax: 5},
	}
	tests := []struct {
		name    string
		ps      []holdings.Provision
		accept  bool
		want    []holdings.Value
		wantErr error
	}{
		{"OK/AcceptEmpty", nil, true, []holdings.Value{}, nil},
		{"OK/RejectEmpty", nil, false, []holdings.Value{}, nil},
		{"OK/Accept", []holdings.Provision{p(a, 3), p(b, -2)}, true,
			[]holdings.Value{val(10, 4, 4), val(8, 3, 3)}, nil},
		{"OK/Reject", []holdings.Provision{p(a, 3), p(b, -2)}, false,
			[]holdings.Value{val(10, 1, 1), val(8, 5, 5)}, nil},
		// No capacity check at resolve time, whatever the limit is now.
		{"OK/AcceptOverLimit", []holdings.Provision{p(c, 5)}, true,
			[]holdings.Value{val(2, 5, 5)}, nil},
		{"ErrNoHolding", []holdings.Provision{p(a, 3), p(k("gone", "cpu"), 1)}, true, nil,
			&holdings.NoHoldingError{Provision: p(k("gone", "cpu"), 1)}},
		{"ErrOverflow", []holdings.Provision{p(a, math.MinInt64)}, false, nil, holdings.ErrOverflow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cm := &Commission{Serial: 1, Client: "cyclades", Provisions: tc.ps}
			got, err := Resolve(hs.get, cm, tc.accept)
			testkit.CheckErr(t, err, tc.wantErr)
			if tc.wantErr != nil {
				if got != nil {
					t.Fatalf("got %v with an error", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Resolve = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestIssueResolve runs a merged commission through Issue and then Resolve
// and checks the holdings come out as the design says.
func TestIssueResolve(t *testing.T) {
	a, b := k("user:1", "cpu"), k("user:1", "ram")
	start := table{a: {Limit: 10, UsageMin: 2, UsageMax: 2}, b: {Limit: 10, UsageMin: 5, UsageMax: 5}}
	merged, err := Merge([]holdings.Provision{p(a, 2), p(b, -3), p(a, 1)})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := Issue(start.get, merged, false)
	if err != nil {
		t.Fatal(err)
	}
	after := table{}
	for i, pr := range merged {
		after[pr.Key] = issued[i]
	}
	c := &Commission{Serial: 7, Provisions: merged}
	for _, tc := range []struct {
		name   string
		accept bool
		want   table
	}{
		{"Accept", true, table{a: val(10, 5, 5), b: val(10, 2, 2)}},
		{"Reject", false, start},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := Resolve(after.get, c, tc.accept)
			if err != nil {
				t.Fatal(err)
			}
			got := table{}
			for i, pr := range c.Provisions {
				got[pr.Key] = vs[i]
				if err := vs[i].Check(false); err != nil {
					t.Errorf("%v: %v", pr.Key, err)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlanResolve(t *testing.T) {
	pendingSet := func(ss ...uint64) func(uint64) bool {
		m := map[uint64]bool{}
		for _, s := range ss {
			m[s] = true
		}
		return func(s uint64) bool { return m[s] }
	}
	tests := []struct {
		name    string
		accept  []uint64
		reject  []uint64
		pending func(uint64) bool
		want    Plan
	}{
		{"Empty", nil, nil, pendingSet(), Plan{}},
		{"Accept", []uint64{3, 1, 2}, nil, pendingSet(1, 2, 3), Plan{Accept: []uint64{3, 1, 2}}},
		{"Reject", nil, []uint64{2, 1}, pendingSet(1, 2), Plan{Reject: []uint64{2, 1}}},
		{"Both", []uint64{1}, []uint64{2}, pendingSet(1, 2), Plan{Accept: []uint64{1}, Reject: []uint64{2}}},
		{"Duplicates", []uint64{1, 2, 1, 1}, []uint64{3, 3}, pendingSet(1, 2, 3),
			Plan{Accept: []uint64{1, 2}, Reject: []uint64{3}}},
		{"NotFound", []uint64{1, 9}, []uint64{8, 2}, pendingSet(1, 2),
			Plan{Accept: []uint64{1}, Reject: []uint64{2}, NotFound: []uint64{9, 8}}},
		{"Conflicting/RepeatedNotPending", []uint64{9, 9}, []uint64{9}, pendingSet(), Plan{Conflicting: []uint64{9}}},
		{"NotFound/RepeatedOnce", []uint64{9, 9}, []uint64{8, 8}, pendingSet(), Plan{NotFound: []uint64{9, 8}}},
		{"Conflicting", []uint64{1, 2, 3}, []uint64{3, 4, 1}, pendingSet(1, 2, 3, 4),
			Plan{Accept: []uint64{2}, Reject: []uint64{4}, Conflicting: []uint64{1, 3}}},
		// A serial in both lists is conflicting, not not-found, even when it
		// is not pending.
		{"Conflicting/NotPending", []uint64{7, 1}, []uint64{7}, pendingSet(1),
			Plan{Accept: []uint64{1}, Conflicting: []uint64{7}}},
		{"Conflicting/OnlyInReject", []uint64{5}, []uint64{6, 5, 5}, pendingSet(5, 6),
			Plan{Reject: []uint64{6}, Conflicting: []uint64{5}}},
		{"Zero", []uint64{0}, nil, pendingSet(), Plan{NotFound: []uint64{0}}},
		{"MaxUint64", nil, []uint64{math.MaxUint64}, pendingSet(math.MaxUint64),
			Plan{Reject: []uint64{math.MaxUint64}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := map[uint64]int{}
			pending := func(s uint64) bool {
				calls[s]++
				return tc.pending(s)
			}
			got := PlanResolve(tc.accept, tc.reject, pending)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("PlanResolve(%v, %v) =\n%+v\nwant\n%+v", tc.accept, tc.reject, got, tc.want)
			}
			for s, n := range calls {
				if n > 1 {
					t.Errorf("pending(%d) called %d times", s, n)
				}
			}
		})
	}
}
