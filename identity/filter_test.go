package identity

import (
	"cmp"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/failure"
)

// filterRows are three tokens to filter: "ci" never expires and was never
// used; "deploy" is read-only, expires and was used; "laptop" is bob's.
func filterRows() []tokenRow {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return []tokenRow{
		{t: &Token{ID: "00000000000000a1", Name: "ci", Owner: "alice", Kind: KindPersonal,
			Created: t0, Updated: t0}},
		{t: &Token{ID: "00000000000000b2", Name: "deploy", Owner: "alice", Kind: KindPersonal, ReadOnly: true,
			Expires: t0.Add(48 * time.Hour), Created: t0.Add(time.Hour), Updated: t0.Add(2 * time.Hour)},
			lastUsed: t0.Add(3 * time.Hour).UnixNano()},
		{t: &Token{ID: "00000000000000c3", Name: "laptop", Owner: "bob", Kind: KindPersonal,
			Expires: t0.Add(24 * time.Hour), Created: t0.Add(2 * time.Hour), Updated: t0.Add(2 * time.Hour)}},
	}
}

// matching names the rows of filterRows that f keeps, checking each answer
// against the reference evaluator (refMatch) of raw, the source of f.
func matching(t *testing.T, f *tokenFilter, raw string) string {
	t.Helper()
	return matchingIn(t, f, raw, filterRows())
}

// matchingIn is matching over rows; a token without a name (a session) is
// named "-".
func matchingIn(t *testing.T, f *tokenFilter, raw string, rows []tokenRow) string {
	t.Helper()
	var names []string
	for _, r := range rows {
		got := f.match(&r)
		if want := refMatch(t, []byte(raw), &r); got != want {
			t.Errorf("%s on token %q: match %v, the reference says %v", raw, r.t.Name, got, want)
		}
		if got {
			names = append(names, cmp.Or(r.t.Name, "-"))
		}
	}
	return strings.Join(names, " ")
}

func TestFilterMatch(t *testing.T) {
	for _, tc := range []struct {
		name, filter, want string
	}{
		{"Empty", ``, "ci deploy laptop"},
		{"Literal/true", `true`, "ci deploy laptop"},
		{"Literal/null", `null`, ""},
		{"Eq/owner", `{"==":[{"var":"owner"},"alice"]}`, "ci deploy"},
		{"Eq/var-array-form", `{"==":[{"var":["name"]},"ci"]}`, "ci"},
		{"Eq/cvat-wrapper", `{"and":[{"==":[{"var":"owner"},"bob"]}]}`, "laptop"},
		{"Eq/bool", `{"==":[{"var":"read_only"},true]}`, "deploy"},
		{"Eq/null-time", `{"==":[{"var":"expires"},null]}`, "ci"},
		{"Eq/null-string", `{"==":[{"var":"name"},null]}`, ""},
		{"Eq/time-rfc3339", `{"==":[{"var":"created"},"2025-03-01T13:00:00Z"]}`, "deploy"},
		{"Eq/time-offset", `{"==":[{"var":"created"},"2025-03-01T15:00:00+02:00"]}`, "deploy"},
		{"Eq/time-unix", `{"==":[{"var":"created"},1740830400]}`, "ci"},
		{"Eq/fields", `{"==":[{"var":"created"},{"var":"updated"}]}`, "ci laptop"},
		{"Var/truthy-bool", `{"var":"read_only"}`, "deploy"},
		{"Var/truthy-time", `{"var":"last_used"}`, "deploy"},
		{"Not", `{"!":{"var":"read_only"}}`, "ci laptop"},
		{"NotNot/expires", `{"!!":[{"var":"expires"}]}`, "deploy laptop"},
		{"Or", `{"or":[{"==":[{"var":"name"},"ci"]},{"var":"read_only"}]}`, "ci deploy"},
		{"Lt/time-date", `{"<":[{"var":"expires"},"2025-03-03"]}`, "laptop"},
		{"Lt/null-never-ordered", `{"!":{"<":[{"var":"expires"},"9999-01-01"]}}`, "ci"},
		{"Gt/time-fields", `{">":[{"var":"updated"},{"var":"created"}]}`, "deploy"},
		{"Ge/unix-fraction", `{">=":[{"var":"created"},1740834000.5]}`, "laptop"},
		{"Le/string", `{"<=":[{"var":"name"},"deploy"]}`, "ci deploy"},
		{"Between/times", `{"<=":["2025-03-01T12:30:00Z",{"var":"created"},"2025-03-01T14:00:00Z"]}`, "deploy laptop"},
		{"Between/strict", `{"<":["2025-03-01T12:00:00Z",{"var":"created"},"2025-03-01T14:00:00Z"]}`, "deploy"},
		{"Between/numbers-literal", `{"<=":[1,2,3]}`, "ci deploy laptop"},
		{"In/list", `{"in":[{"var":"name"},["ci","laptop","x"]]}`, "ci laptop"},
		{"In/list-times", `{"in":[{"var":"created"},["2025-03-01T12:00:00Z",1740837600]]}`, "ci laptop"},
		{"In/substring", `{"in":["lo",{"var":"name"}]}`, "deploy"},
		{"In/id-prefix", `{"in":["00c",{"var":"id"}]}`, "laptop"},
		{"Far-future-date", `{"<":[{"var":"created"},"9999-12-31T23:59:59Z"]}`, "ci deploy laptop"},
		{"Huge-unix", `{">":[{"var":"created"},1e300]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := compileFilter(json.RawMessage(tc.filter))
			if err != nil {
				t.Fatal(err)
			}
			if got := matching(t, f, tc.filter); got != tc.want {
				t.Fatalf("%s matches %q, want %q", tc.filter, got, tc.want)
			}
		})
	}
}

// TestFilterFarTimes: times after 2262 (a token may expire as late as 9999)
// order as the instants they are, as do number literals of seconds.
func TestFilterFarTimes(t *testing.T) {
	for _, tc := range []struct {
		name, filter, want string
	}{
		{"Eq/another-far-date", `{"==":[{"var":"expires"},"2400-01-01"]}`, ""},
		{"Eq/far-instant", `{"==":[{"var":"expires"},"2500-06-01T12:00:00.5Z"]}`, "archive"},
		{"Eq/last-nanosecond", `{"==":[{"var":"expires"},"9999-12-31T23:59:59.999999Z"]}`, "forever-ish"},
		{"Lt/far-date", `{"<":[{"var":"expires"},"2400-01-01"]}`, "Vault -"},
		{"Gt/far-date", `{">":[{"var":"expiry_date"},"2300-01-01"]}`, "archive forever-ish"},
		{"Between/far-literals", `{"<":[{"var":"created"},"3000-01-01","9999-01-01"]}`, "Vault archive forever-ish -"},
		{"Between/far-expiries", `{"<=":["2300-01-01",{"var":"expires"},"2500-06-01T12:00:00.5Z"]}`, "Vault archive"},
		{"Ge/huge-unix", `{">=":[{"var":"expires"},1e300]}`, ""},
		{"Le/huge-unix-bound", `{"<=":[{"var":"created"},1e300,1e301]}`, "Vault archive forever-ish -"},
		// 2^-22 s past the hour (the float64 nearest to it): 238.4 ns, not
		// 256 as a float64 of nanoseconds would have it.
		{"Eq/unix-nanosecond", `{"==":[{"var":"last_used"},1740834000.0000002384185791015625]}`, "Vault"},
		{"Eq/year-one", `{"<":["0001-01-01",{"var":"created"}]}`, "Vault archive forever-ish -"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := compileFilter(json.RawMessage(tc.filter))
			if err != nil {
				t.Fatal(err)
			}
			if got := matchingIn(t, f, tc.filter, farRows()); got != tc.want {
				t.Fatalf("%s matches %q, want %q", tc.filter, got, tc.want)
			}
		})
	}
}

func TestFilterCompileErrors(t *testing.T) {
	deep := strings.Repeat(`{"!":`, 40) + `true` + strings.Repeat(`}`, 40)
	for _, tc := range []struct {
		name, filter, msg string
	}{
		{"ErrInvalid/not-json", `{"==":`, "not JSON"},
		{"ErrInvalid/trailing", `true false`, "not JSON"},
		{"ErrInvalid/unknown-op", `{"substr":[{"var":"name"},0,2]}`, `unsupported operator "substr"`},
		{"ErrInvalid/two-keys", `{"==":[1,1],"!":true}`, "exactly one key"},
		{"ErrInvalid/empty-object", `{}`, "exactly one key"},
		{"ErrInvalid/unknown-field", `{"var":"secret"}`, `unknown field "secret"`},
		{"ErrInvalid/dotted-field", `{"var":"owner.name"}`, "unknown field"},
		{"ErrInvalid/var-default", `{"var":["name","x"]}`, "one field name"},
		{"ErrInvalid/var-number", `{"var":1}`, "field name"},
		{"ErrInvalid/eq-arity", `{"==":[1]}`, `"==" takes 2`},
		{"ErrInvalid/gt-three", `{">":[1,2,3]}`, `">" takes 2`},
		{"ErrInvalid/le-four", `{"<=":[1,2,3,4]}`, `"<=" takes 2 to 3`},
		{"ErrInvalid/and-empty", `{"and":[]}`, "at least 1"},
		{"ErrInvalid/not-two", `{"!":[true,false]}`, `"!" takes 1`},
		{"ErrInvalid/in-arity", `{"in":["a"]}`, `"in" takes 2`},
		{"ErrInvalid/in-number", `{"in":[1,{"var":"name"}]}`, `"in" takes`},
		{"ErrInvalid/in-mixed-list", `{"in":[{"var":"name"},["a",1]]}`, "cannot compare"},
		{"ErrInvalid/array-operand", `{"==":[{"var":"name"},["a"]]}`, "array"},
		{"ErrInvalid/string-vs-number", `{"==":[{"var":"name"},1]}`, "cannot compare a string with a number"},
		{"ErrInvalid/order-bool", `{"<":[{"var":"read_only"},true]}`, "cannot order boolean"},
		{"ErrInvalid/order-null", `{"<":[{"var":"expires"},null]}`, "cannot order null"},
		{"ErrInvalid/bad-date", `{"<":[{"var":"created"},"yesterday"]}`, "not a time"},
		{"ErrInvalid/time-vs-string-field", `{"<":[{"var":"created"},{"var":"name"}]}`, "cannot compare a time with a string"},
		{"ErrInvalid/time-vs-bool", `{"==":[{"var":"created"},true]}`, "is not a time"},
		{"ErrInvalid/time-vs-expression", `{"==":[{"var":"created"},{"!":true}]}`, "cannot compare a time with a boolean"},
		{"ErrInvalid/huge-number", `{"<":[1e400,1]}`, "not JSON"},
		{"ErrInvalid/too-deep", deep, "deeper than 32"},
		{"ErrInvalid/too-long", `"` + strings.Repeat("a", maxFilterBytes) + `"`, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := compileFilter(json.RawMessage(tc.filter))
			if failure.CodeOf(err) != failure.Invalid || f != nil {
				t.Fatalf("compileFilter(%.60s) = %v, %v; want failure.Invalid", tc.filter, f, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
		})
	}
	ok := strings.Repeat(`{"!":`, 32) + `true` + strings.Repeat(`}`, 32)
	if _, err := compileFilter(json.RawMessage(ok)); err != nil {
		t.Fatalf("32 levels: %v", err)
	}
}

// FuzzFilter compiles arbitrary input: it never panics, every error is
// failure.Invalid, and a compiled filter keeps exactly the tokens that
// refMatch, an evaluator of the documented semantics written apart from the
// compiler, keeps (on the rows of filterRows and farRows).
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		``, `true`, `null`, `[]`, `{}`, `{"var":"name"}`,
		`{"and":[{"==":[{"var":"owner"},"alice"]},{"!":{"var":"read_only"}}]}`,
		`{"<=":["2025-03-01",{"var":"created"},1740837600]}`,
		`{"in":[{"var":"kind"},["personal","session"]]}`,
		`{"in":["ci",{"var":"name"}]}`,
		`{"or":[{">":[{"var":"last_used"},0]},{"==":[{"var":"expires"},null]}]}`,
		`{"!!":[{"var":["id"]}]}`, `{"substr":[1]}`, `{"<":[{"var":"expires"},null]}`,
		`{"==":[{"var":"expires"},"2400-01-01"]}`,
		`{"<":[{"var":"expires"},"2400-01-01"]}`,
		`{"<":[{"var":"created"},"3000-01-01","9999-01-01"]}`,
		`{">=":[{"var":"expires"},1e300]}`,
		`{"in":["2025-03-01",[{"var":"expires"},"2025-03-01T00:00:00Z"]]}`,
		`{"==":[{"var":"last_used"},1740834000.0000002384185791015625]}`,
		`{"<":[{"var":"expiry_date"},{"var":"last_used_date"}]}`,
		`{"<":["0001-01-01",{"var":"created"}]}`,
	} {
		f.Add([]byte(s))
	}
	rows := append(filterRows(), farRows()...)
	f.Fuzz(func(t *testing.T, raw []byte) {
		flt, err := compileFilter(raw)
		if err != nil {
			if failure.CodeOf(err) != failure.Invalid {
				t.Fatalf("compileFilter(%q): %v is not failure.Invalid", raw, err)
			}
			return
		}
		for i := range rows {
			got, want := flt.match(&rows[i]), refMatch(t, raw, &rows[i])
			if got != want {
				t.Fatalf("%s on token %q: match %v, the reference says %v", raw, rows[i].t.Name, got, want)
			}
		}
	})
}

// farRows are tokens whose times lie past what a time.Duration since 1970
// can hold (after 2262), as a token's expiry may (up to the year 9999), a
// session, and a last use with nanoseconds.
func farRows() []tokenRow {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return []tokenRow{
		{t: &Token{ID: "00000000000000d4", Name: "Vault", Owner: "carol", Kind: KindPersonal,
			Expires: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Created: t0, Updated: t0},
			lastUsed: t0.Add(time.Hour).UnixNano() + 238},
		{t: &Token{ID: "00000000000000e5", Name: "archive", Owner: "carol", Kind: KindPersonal, ReadOnly: true,
			Expires: time.Date(2500, 6, 1, 12, 0, 0, 500_000_000, time.UTC), Created: t0.Add(time.Second), Updated: t0.Add(time.Second)}},
		{t: &Token{ID: "00000000000000f6", Name: "forever-ish", Owner: "dave", Kind: KindPersonal,
			Expires: time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC), Created: t0, Updated: t0.Add(time.Minute)}},
		{t: &Token{ID: "0000000000000107", Name: "", Owner: "alice", Kind: KindSession,
			Expires: t0.Add(24 * time.Hour), Created: t0, Updated: t0}, lastUsed: t0.UnixNano()},
	}
}

// refMatch evaluates the filter raw on r by the rules of filter.go's doc
// comment, walking the JSON tree directly: no types, no compiled nodes. A
// time is an exact number of seconds (a big.Rat), so that dates of any
// year order as the instants they are. raw must compile.
func refMatch(t *testing.T, raw []byte, r *tokenRow) bool {
	t.Helper()
	if len(strings.TrimSpace(string(raw))) == 0 {
		return true
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatalf("%s compiled but is not JSON: %v", raw, err)
	}
	return refTruthy(refEval(t, tree, r))
}

// refVal is a value of the reference evaluator: nil (null), bool, float64,
// string, or *big.Rat (a time, in seconds since 1970).
type refVal = any

func refTruthy(v refVal) bool {
	switch x := v.(type) {
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case *big.Rat:
		return true
	}
	return false
}

// refTimeFields are the fields that hold times, under both their names.
var refTimeFields = map[string]bool{"created": true, "updated": true, "expires": true, "last_used": true,
	"created_date": true, "updated_date": true, "expiry_date": true, "last_used_date": true}

// refSeconds is a time field's value: null when not set.
func refSeconds(tm time.Time) refVal {
	if tm.IsZero() {
		return nil
	}
	return refInstant(tm)
}

func refInstant(tm time.Time) *big.Rat {
	s := new(big.Rat).SetInt64(tm.Unix())
	return s.Add(s, big.NewRat(int64(tm.Nanosecond()), 1e9))
}

func refField(t *testing.T, name string, r *tokenRow) refVal {
	switch name {
	case "id":
		return r.t.ID
	case "name":
		return r.t.Name
	case "owner":
		return r.t.Owner
	case "kind":
		return string(r.t.Kind)
	case "read_only":
		return r.t.ReadOnly
	case "created", "created_date":
		return refSeconds(r.t.Created)
	case "updated", "updated_date":
		return refSeconds(r.t.Updated)
	case "expires", "expiry_date":
		return refSeconds(r.t.Expires)
	case "last_used", "last_used_date":
		if r.lastUsed == 0 {
			return nil
		}
		return big.NewRat(r.lastUsed, 1e9)
	}
	t.Fatalf("the filter compiled with an unknown field %q", name)
	return nil
}

// refIsTimeVar reports whether the expression x reads a time field: the
// literals compared with it are times.
func refIsTimeVar(x any) bool {
	m, ok := x.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	arg, ok := m["var"]
	if !ok {
		return false
	}
	if a, ok := arg.([]any); ok && len(a) == 1 {
		arg = a[0]
	}
	name, _ := arg.(string)
	return refTimeFields[name]
}

// refTime reads a literal compared with a time: an RFC 3339 time or a
// date, or unix seconds, rounded to the nanosecond (half away from zero)
// and bounded to ±2^62 seconds.
func refTime(t *testing.T, v refVal) refVal {
	switch x := v.(type) {
	case string:
		for _, layout := range []string{time.RFC3339, "2006-01-02"} {
			if tm, err := time.Parse(layout, x); err == nil {
				return refInstant(tm) // year 1 too: a literal is never null
			}
		}
		t.Fatalf("the filter compiled with %q compared with a time", x)
	case float64:
		ns := new(big.Rat).SetFloat64(x)
		ns.Mul(ns, big.NewRat(1e9, 1))
		// Round half away from zero: truncate |ns| + 1/2.
		neg := ns.Sign() < 0
		ns.Abs(ns).Add(ns, big.NewRat(1, 2))
		n := new(big.Int).Quo(ns.Num(), ns.Denom())
		if neg {
			n.Neg(n)
		}
		s := new(big.Rat).SetFrac(n, big.NewInt(1e9))
		bound := new(big.Rat).SetInt64(1 << 62)
		switch {
		case s.Cmp(bound) > 0:
			s = bound
		case s.Cmp(new(big.Rat).Neg(bound)) < 0:
			s = bound.Neg(bound)
		}
		return s
	}
	return v // null (==, in) stays null
}

// refOperands evaluates the operands of a comparison, reading the literals
// among them as times if one of them is a time field.
func refOperands(t *testing.T, xs []any, r *tokenRow) []refVal {
	timed := false
	for _, x := range xs {
		timed = timed || refIsTimeVar(x)
	}
	vs := make([]refVal, len(xs))
	for i, x := range xs {
		vs[i] = refEval(t, x, r)
		if timed && !refIsTimeVar(x) {
			vs[i] = refTime(t, vs[i])
		}
	}
	return vs
}

func refEqual(a, b refVal) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case *big.Rat:
		y, ok := b.(*big.Rat)
		return ok && x.Cmp(y) == 0
	case bool, float64, string:
		return a == b
	}
	return false
}

// refCompare orders a and b: -1, 0, 1, or ok false if they cannot be
// ordered (a null, or values of two kinds).
func refCompare(a, b refVal) (int, bool) {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	case *big.Rat:
		if y, ok := b.(*big.Rat); ok {
			return x.Cmp(y), true
		}
	}
	return 0, false
}

func refEval(t *testing.T, x any, r *tokenRow) refVal {
	m, ok := x.(map[string]any)
	if !ok {
		return x // a literal: nil, bool, float64 or string
	}
	var op string
	var arg any
	for op, arg = range m {
	}
	args, ok := arg.([]any)
	if !ok {
		args = []any{arg}
	}
	switch op {
	case "var":
		return refField(t, args[0].(string), r)
	case "and":
		for _, a := range args {
			if !refTruthy(refEval(t, a, r)) {
				return false
			}
		}
		return true
	case "or":
		for _, a := range args {
			if refTruthy(refEval(t, a, r)) {
				return true
			}
		}
		return false
	case "!":
		return !refTruthy(refEval(t, args[0], r))
	case "!!":
		return refTruthy(refEval(t, args[0], r))
	case "==":
		vs := refOperands(t, args, r)
		return refEqual(vs[0], vs[1])
	case "<", "<=", ">", ">=":
		vs := refOperands(t, args, r)
		for i := 1; i < len(vs); i++ {
			c, ok := refCompare(vs[i-1], vs[i])
			if !ok {
				return false
			}
			if !map[string]bool{"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op] {
				return false
			}
		}
		return true
	case "in":
		if list, ok := args[1].([]any); ok {
			vs := refOperands(t, append([]any{args[0]}, list...), r)
			for _, v := range vs[1:] {
				if refEqual(vs[0], v) {
					return true
				}
			}
			return false
		}
		sub, s := refEval(t, args[0], r).(string), refEval(t, args[1], r).(string)
		return strings.Contains(s, sub)
	}
	t.Fatalf("the filter compiled with the operator %q", op)
	return nil
}
