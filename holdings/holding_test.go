package holdings

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

func TestSource(t *testing.T) {
	t.Run("NullIsNotEmpty", func(t *testing.T) {
		if NullSource == SourceOf("") {
			t.Fatal("null source equals the empty source")
		}
		if !NullSource.IsNull() || SourceOf("").IsNull() {
			t.Fatalf("IsNull: null %v, empty %v", NullSource.IsNull(), SourceOf("").IsNull())
		}
		var zero Source
		if zero != NullSource {
			t.Fatal("zero Source is not null")
		}
		if NullSource.Name() != "" || SourceOf("").Name() != "" || SourceOf("system").Name() != "system" {
			t.Fatal("Name")
		}
		if got := NullSource.String(); got != "<null>" {
			t.Fatalf("String of null = %q", got)
		}
		if got := SourceOf("").String(); got != `""` {
			t.Fatalf("String of empty = %q", got)
		}
	})
	t.Run("DistinctMapKeys", func(t *testing.T) {
		m := map[Key]int{
			{Holder: "u", Source: NullSource, Resource: "r"}:   1,
			{Holder: "u", Source: SourceOf(""), Resource: "r"}: 2,
		}
		if len(m) != 2 {
			t.Fatalf("null and empty source collide as keys: %v", m)
		}
	})
	t.Run("PtrRoundTrip", func(t *testing.T) {
		if NullSource.Ptr() != nil {
			t.Fatal("null Ptr is not nil")
		}
		for _, s := range []Source{NullSource, SourceOf(""), SourceOf("system"), SourceOf("π:ü")} {
			if got := SourceFromPtr(s.Ptr()); got != s {
				t.Errorf("SourceFromPtr(%v.Ptr()) = %v", s, got)
			}
		}
		// Ptr returns a copy: writing through it does not change the source.
		s := SourceOf("a")
		*s.Ptr() = "b"
		if s.Name() != "a" {
			t.Fatal("Ptr aliases the source")
		}
		e := ""
		if got := SourceFromPtr(&e); got != SourceOf("") {
			t.Fatalf("SourceFromPtr(&\"\") = %v", got)
		}
	})
}

func TestSourceJSON(t *testing.T) {
	marshal := []struct {
		name string
		in   Source
		want string
	}{
		{"Null", NullSource, `null`},
		{"Empty", SourceOf(""), `""`},
		{"String", SourceOf("system"), `"system"`},
		{"Escaped", SourceOf("a\"b<"), `"a\"b\u003c"`},
	}
	for _, tc := range marshal {
		t.Run("Marshal/"+tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.in)
			if err != nil || string(b) != tc.want {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tc.want)
			}
			var back Source
			if err := json.Unmarshal(b, &back); err != nil || back != tc.in {
				t.Fatalf("round trip = %v, %v; want %v", back, err, tc.in)
			}
		})
	}

	unmarshal := []struct {
		name    string
		in      string
		want    Source
		wantErr bool
	}{
		{"Null", `null`, NullSource, false},
		{"NullSpaced", ` null `, NullSource, false},
		{"Empty", `""`, SourceOf(""), false},
		{"String", `"system"`, SourceOf("system"), false},
		{"Unicode", `"\u03c0"`, SourceOf("π"), false},
		{"ErrNumber", `1`, Source{}, true},
		{"ErrObject", `{}`, Source{}, true},
		{"ErrBool", `true`, Source{}, true},
	}
	for _, tc := range unmarshal {
		t.Run("Unmarshal/"+tc.name, func(t *testing.T) {
			s := SourceOf("previous")
			err := s.UnmarshalJSON([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("UnmarshalJSON(%s) = %v, want an error", tc.in, s)
				}
				return
			}
			if err != nil || s != tc.want {
				t.Fatalf("UnmarshalJSON(%s) = %v, %v; want %v", tc.in, s, err, tc.want)
			}
		})
	}

	t.Run("InStruct", func(t *testing.T) {
		var v struct {
			A Source `json:"a"`
			B Source `json:"b"`
			C Source `json:"c"`
		}
		v.A = SourceOf("previous")
		v.C = SourceOf("x")
		if err := json.Unmarshal([]byte(`{"a":null,"b":""}`), &v); err != nil {
			t.Fatal(err)
		}
		// encoding/json calls UnmarshalJSON with a literal null too, so an
		// explicit null overwrites the field; an absent one leaves it be.
		if !v.A.IsNull() || v.B != SourceOf("") || v.C != SourceOf("x") {
			t.Fatalf("got %+v", v)
		}
		b, err := json.Marshal(v)
		if err != nil || string(b) != `{"a":null,"b":"","c":"x"}` {
			t.Fatalf("Marshal = %s, %v", b, err)
		}
	})
}

func prov(q int64) Provision {
	return Provision{Key: Key{Holder: "user:1", Source: SourceOf("system"), Resource: "cpu"}, Quantity: q}
}

func TestValueIssue(t *testing.T) {
	tests := []struct {
		name    string
		v       Value
		q       int64
		force   bool
		want    Value
		wantErr error // a sentinel, or a *NoCapacityError/*NoQuantityError to compare
	}{
		{"OK/ImportWithinLimit", Value{10, 2, 5}, 5, false, Value{10, 2, 10}, nil},
		{"OK/ImportZero", Value{10, 2, 5}, 0, false, Value{10, 2, 5}, nil},
		{"OK/ImportOnEmpty", Value{10, 0, 0}, 10, false, Value{10, 0, 10}, nil},
		{"ErrNoCapacity", Value{10, 2, 5}, 6, false, Value{10, 2, 5},
			&NoCapacityError{Provision: prov(6), Limit: 10, Usage: 5}},
		{"ErrNoCapacity/ZeroLimit", Value{0, 0, 0}, 1, false, Value{0, 0, 0},
			&NoCapacityError{Provision: prov(1), Limit: 0, Usage: 0}},
		// A holding over its limit (the limit was lowered) refuses even a zero import.
		{"ErrNoCapacity/ZeroOverLimit", Value{3, 5, 5}, 0, false, Value{3, 5, 5},
			&NoCapacityError{Provision: prov(0), Limit: 3, Usage: 5}},
		{"OK/ForcedPastLimit", Value{10, 2, 5}, 100, true, Value{10, 2, 105}, nil},
		{"OK/Release", Value{10, 4, 6}, -3, false, Value{10, 1, 6}, nil},
		{"OK/ReleaseToZero", Value{10, 4, 6}, -4, false, Value{10, 0, 6}, nil},
		{"OK/ReleaseOverLimit", Value{3, 5, 5}, -2, false, Value{3, 3, 5}, nil},
		{"ErrNoQuantity", Value{10, 4, 6}, -5, false, Value{10, 4, 6},
			&NoQuantityError{Provision: prov(-5), Limit: 0, Usage: 4}},
		{"ErrNoQuantity/Forced", Value{10, 4, 6}, -5, true, Value{10, 4, 6},
			&NoQuantityError{Provision: prov(-5), Limit: 0, Usage: 4}},
		{"ErrNoQuantity/Empty", Value{10, 0, 0}, -1, true, Value{10, 0, 0},
			&NoQuantityError{Provision: prov(-1), Limit: 0, Usage: 0}},
		{"ErrOverflow/Import", Value{math.MaxInt64, 0, math.MaxInt64 - 1}, 2, false,
			Value{math.MaxInt64, 0, math.MaxInt64 - 1}, ErrOverflow},
		{"ErrOverflow/ImportForced", Value{10, 0, 1}, math.MaxInt64, true, Value{10, 0, 1}, ErrOverflow},
		{"OK/ImportToMaxInt64", Value{math.MaxInt64, 0, 1}, math.MaxInt64 - 1, false,
			Value{math.MaxInt64, 0, math.MaxInt64}, nil},
		{"ErrOverflow/MinInt64", Value{10, 5, 5}, math.MinInt64, false, Value{10, 5, 5}, ErrOverflow},
		{"ErrOverflow/MinInt64Forced", Value{math.MaxInt64, math.MaxInt64, math.MaxInt64},
			math.MinInt64, true, Value{math.MaxInt64, math.MaxInt64, math.MaxInt64}, ErrOverflow},
		{"OK/ReleaseMinInt64Plus1", Value{math.MaxInt64, math.MaxInt64, math.MaxInt64},
			math.MinInt64 + 1, false, Value{math.MaxInt64, 0, math.MaxInt64}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := prov(tc.q)
			got, err := tc.v.Issue(p, tc.force)
			if got != tc.want {
				t.Errorf("value = %+v, want %+v", got, tc.want)
			}
			testkit.CheckErr(t, err, tc.wantErr)
		})
	}
}

func TestValueResolve(t *testing.T) {
	tests := []struct {
		name    string
		v       Value
		q       int64
		accept  bool
		want    Value
		wantErr error
	}{
		{"OK/AcceptImport", Value{10, 2, 7}, 5, true, Value{10, 7, 7}, nil},
		{"OK/RejectImport", Value{10, 2, 7}, 5, false, Value{10, 2, 2}, nil},
		{"OK/AcceptRelease", Value{10, 1, 4}, -3, true, Value{10, 1, 1}, nil},
		{"OK/RejectRelease", Value{10, 1, 4}, -3, false, Value{10, 4, 4}, nil},
		{"OK/AcceptZero", Value{10, 1, 4}, 0, true, Value{10, 1, 4}, nil},
		{"OK/RejectZero", Value{10, 1, 4}, 0, false, Value{10, 1, 4}, nil},
		// No capacity check at resolve time.
		{"OK/AcceptOverLimit", Value{1, 0, 5}, 5, true, Value{1, 5, 5}, nil},
		{"OK/AcceptMinInt64", Value{0, 0, 0}, math.MinInt64, true, Value{0, 0, math.MinInt64}, nil},
		{"ErrOverflow/AcceptImport", Value{0, math.MaxInt64, math.MaxInt64}, 1, true,
			Value{0, math.MaxInt64, math.MaxInt64}, ErrOverflow},
		{"ErrOverflow/AcceptRelease", Value{0, -1, -1}, math.MinInt64, true, Value{0, -1, -1}, ErrOverflow},
		{"ErrOverflow/RejectMinInt64", Value{0, 0, 0}, math.MinInt64, false, Value{0, 0, 0}, ErrOverflow},
		{"ErrOverflow/RejectImport", Value{0, 0, -2}, math.MaxInt64, false, Value{0, 0, -2}, ErrOverflow},
		{"ErrOverflow/RejectRelease", Value{0, 2, 2}, -math.MaxInt64, false, Value{0, 2, 2}, ErrOverflow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Value
			var err error
			if tc.accept {
				got, err = tc.v.Accept(tc.q)
			} else {
				got, err = tc.v.Reject(tc.q)
			}
			if got != tc.want {
				t.Errorf("value = %+v, want %+v", got, tc.want)
			}
			testkit.CheckErr(t, err, tc.wantErr)
			got2, err2 := tc.v.Resolve(tc.q, tc.accept)
			if got2 != got || !errors.Is(err2, err) {
				t.Errorf("Resolve = %+v, %v; want %+v, %v", got2, err2, got, err)
			}
		})
	}
}

// TestIssueThenResolve checks that issue followed by accept or reject gives
// what the design says, for imports and releases.
func TestIssueThenResolve(t *testing.T) {
	tests := []struct {
		name         string
		v            Value
		q            int64
		wantAccepted Value
		wantRejected Value
	}{
		{"OK/Import", Value{10, 3, 3}, 4, Value{10, 7, 7}, Value{10, 3, 3}},
		{"OK/Release", Value{10, 3, 3}, -2, Value{10, 1, 1}, Value{10, 3, 3}},
		{"OK/Zero", Value{10, 3, 3}, 0, Value{10, 3, 3}, Value{10, 3, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			issued, err := tc.v.Issue(prov(tc.q), false)
			if err != nil {
				t.Fatal(err)
			}
			if err := issued.Check(false); err != nil {
				t.Fatalf("after issue: %v", err)
			}
			acc, err := issued.Accept(tc.q)
			if err != nil || acc != tc.wantAccepted {
				t.Fatalf("accept = %+v, %v; want %+v", acc, err, tc.wantAccepted)
			}
			rej, err := issued.Reject(tc.q)
			if err != nil || rej != tc.wantRejected {
				t.Fatalf("reject = %+v, %v; want %+v", rej, err, tc.wantRejected)
			}
		})
	}
}

func TestValueWithLimit(t *testing.T) {
	tests := []struct {
		name    string
		v       Value
		limit   int64
		want    Value
		wantErr error
	}{
		{"OK/Raise", Value{10, 2, 5}, 20, Value{20, 2, 5}, nil},
		{"OK/Zero", Value{10, 0, 0}, 0, Value{0, 0, 0}, nil},
		{"OK/BelowUsage", Value{10, 2, 5}, 3, Value{3, 2, 5}, nil},
		{"OK/MaxInt64", Value{10, 2, 5}, math.MaxInt64, Value{math.MaxInt64, 2, 5}, nil},
		{"ErrNegativeLimit", Value{10, 2, 5}, -1, Value{10, 2, 5}, ErrNegativeLimit},
		{"ErrNegativeLimit/MinInt64", Value{10, 2, 5}, math.MinInt64, Value{10, 2, 5}, ErrNegativeLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.WithLimit(tc.limit)
			if got != tc.want {
				t.Errorf("value = %+v, want %+v", got, tc.want)
			}
			testkit.CheckErr(t, err, tc.wantErr)
		})
	}
}

func TestValueCheck(t *testing.T) {
	tests := []struct {
		name    string
		v       Value
		forced  bool
		wantErr bool
	}{
		{"OK", Value{10, 2, 5}, false, false},
		{"OK/Full", Value{10, 10, 10}, false, false},
		{"OK/Empty", Value{0, 0, 0}, false, false},
		{"OK/ForcedOverLimit", Value{10, 2, 15}, true, false},
		{"ErrOverLimit", Value{10, 2, 15}, false, true},
		{"ErrMinAboveMax", Value{10, 6, 5}, false, true},
		{"ErrMinAboveMax/Forced", Value{10, 6, 5}, true, true},
		{"ErrNegativeMin", Value{10, -1, 5}, false, true},
		{"ErrNegativeMin/Forced", Value{10, -1, 5}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.v.Check(tc.forced)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Check(%v) of %+v = %v, want error %v", tc.forced, tc.v, err, tc.wantErr)
			}
		})
	}
}

func TestValueUsagePending(t *testing.T) {
	v := Value{Limit: 10, UsageMin: 3, UsageMax: 8}
	if v.Usage() != 8 || v.Pending() != 5 {
		t.Fatalf("Usage %d Pending %d", v.Usage(), v.Pending())
	}
}

func TestProvisionIsImport(t *testing.T) {
	for q, want := range map[int64]bool{0: true, 1: true, math.MaxInt64: true, -1: false, math.MinInt64: false} {
		if got := prov(q).IsImport(); got != want {
			t.Errorf("IsImport(%d) = %v", q, got)
		}
	}
}

func TestAdd(t *testing.T) {
	tests := []struct {
		name   string
		a, b   int64
		want   int64
		wantOK bool
	}{
		{"OK", 2, 3, 5, true},
		{"OK/Negative", -2, -3, -5, true},
		{"OK/Mixed", math.MaxInt64, math.MinInt64, -1, true},
		{"OK/ToMax", math.MaxInt64 - 1, 1, math.MaxInt64, true},
		{"OK/ToMin", math.MinInt64 + 1, -1, math.MinInt64, true},
		{"OK/MaxPlusZero", math.MaxInt64, 0, math.MaxInt64, true},
		{"OK/MinPlusZero", math.MinInt64, 0, math.MinInt64, true},
		{"OK/MinMinusMin", 0, math.MinInt64, math.MinInt64, true},
		{"ErrOverflow/Max", math.MaxInt64, 1, 0, false},
		{"ErrOverflow/MaxMax", math.MaxInt64, math.MaxInt64, 0, false},
		{"ErrOverflow/Min", math.MinInt64, -1, 0, false},
		{"ErrOverflow/MinMin", math.MinInt64, math.MinInt64, 0, false},
		{"ErrOverflow/NegMin", -1, math.MinInt64, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Add(tc.a, tc.b)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("Add(%d, %d) = %d, %v; want %d, %v", tc.a, tc.b, got, ok, tc.want, tc.wantOK)
			}
			// Addition commutes, overflow included.
			got, ok = Add(tc.b, tc.a)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("Add(%d, %d) = %d, %v; want %d, %v", tc.b, tc.a, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestKeyString(t *testing.T) {
	k := Key{Holder: "user:1", Source: NullSource, Resource: "cpu"}
	if got, want := k.String(), `("user:1", <null>, "cpu")`; got != want {
		t.Fatalf("String = %s, want %s", got, want)
	}
	k.Source = SourceOf("")
	if got, want := k.String(), `("user:1", "", "cpu")`; got != want {
		t.Fatalf("String = %s, want %s", got, want)
	}
}
