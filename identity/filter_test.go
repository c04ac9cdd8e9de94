package identity

import (
	"encoding/json"
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

func matching(t *testing.T, f *tokenFilter) string {
	t.Helper()
	var names []string
	for _, r := range filterRows() {
		if f.match(&r) {
			names = append(names, r.t.Name)
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
			if got := matching(t, f); got != tc.want {
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
// failure.Invalid, and a compiled filter evaluates on every row.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		``, `true`, `null`, `[]`, `{}`, `{"var":"name"}`,
		`{"and":[{"==":[{"var":"owner"},"alice"]},{"!":{"var":"read_only"}}]}`,
		`{"<=":["2025-03-01",{"var":"created"},1740837600]}`,
		`{"in":[{"var":"kind"},["personal","session"]]}`,
		`{"in":["ci",{"var":"name"}]}`,
		`{"or":[{">":[{"var":"last_used"},0]},{"==":[{"var":"expires"},null]}]}`,
		`{"!!":[{"var":["id"]}]}`, `{"substr":[1]}`, `{"<":[{"var":"expires"},null]}`,
	} {
		f.Add([]byte(s))
	}
	rows := filterRows()
	f.Fuzz(func(t *testing.T, raw []byte) {
		flt, err := compileFilter(raw)
		if err != nil {
			if failure.CodeOf(err) != failure.Invalid {
				t.Fatalf("compileFilter(%q): %v is not failure.Invalid", raw, err)
			}
			return
		}
		for i := range rows {
			flt.match(&rows[i])
		}
	})
}
