package identity

import (
	"cmp"
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"time"
)

// A JSON Logic filter over access tokens (the `filter` of a token list),
// limited to what a list needs: and, or, !, !!, var, ==, <, <=, >, >=, in
// and the three-argument < and <= (between).
//
// A filter is compiled once per query and every expression gets a static
// type, so that anything a list could not answer sensibly is refused, as
// failure.Invalid, before a token is looked at: an unknown operator or field, a
// wrong number of arguments, nesting deeper than maxFilterDepth, comparing
// a name with a number, ordering booleans.
//
// Fields: id, name, owner, kind (strings), read_only (boolean), created,
// updated, expires, last_used (times; the CVAT names created_date,
// updated_date, expiry_date and last_used_date are accepted too). A time
// that is not set (a token that never expires, or was never used) is null.
//
// Times are compared as instants, of any year (a token may expire as late
// as 9999). A time field may be compared with a string literal in RFC 3339
// ("2024-05-01T10:00:00Z", fractions and offsets allowed) or a date
// ("2024-05-01", midnight UTC), or with a number literal of unix seconds
// (fractions allowed, rounded to the nanosecond, half away from zero; a
// number beyond ±2^62 seconds, some 146 billion years, counts as ±2^62);
// the literal is converted when the filter is compiled, so a malformed date
// is a compile error. Strings are
// compared byte-wise. Null equals only null; an ordering comparison with a
// null operand is false (a token that never expires is neither before nor
// after any date). "in" is membership in an array literal, or, with two
// strings, a (case-sensitive) substring test. "and" and "or" yield booleans
// by JSON Logic truthiness (false, 0, "" and null are false).

const (
	maxFilterDepth = 32
	maxFilterBytes = 16 << 10
)

// vtype is the type of an expression and of a value.
type vtype uint8

const (
	tNull vtype = iota
	tBool
	tNumber
	tString
	tTime // a time field: at run time a time, or null when not set
)

func (t vtype) String() string {
	switch t {
	case tNull:
		return "null"
	case tBool:
		return "boolean"
	case tNumber:
		return "number"
	case tString:
		return "string"
	default:
		return "time"
	}
}

// value is a run-time value. A time is unix seconds and nanoseconds (not
// unix nanoseconds alone, which end in 2262).
type value struct {
	typ  vtype
	b    bool
	n    float64
	s    string
	sec  int64
	nsec int64 // 0 <= nsec < 1e9
}

func (v value) truthy() bool {
	switch v.typ {
	case tBool:
		return v.b
	case tNumber:
		return v.n != 0 && !math.IsNaN(v.n)
	case tString:
		return v.s != ""
	case tTime:
		return true
	}
	return false
}

// tokenRow is what a filter sees of a token: the record and its last use
// as known in memory (newer than the record's between flushes).
type tokenRow struct {
	t        *Token
	lastUsed int64 // unix ns, 0: never
}

type field uint8

const (
	fID field = iota
	fName
	fOwner
	fKind
	fReadOnly
	fCreated
	fUpdated
	fExpires
	fLastUsed
)

var filterFields = map[string]field{
	"id": fID, "name": fName, "owner": fOwner, "kind": fKind, "read_only": fReadOnly,
	"created": fCreated, "updated": fUpdated, "expires": fExpires, "last_used": fLastUsed,
	"created_date": fCreated, "updated_date": fUpdated, "expiry_date": fExpires, "last_used_date": fLastUsed,
}

func (f field) typ() vtype {
	switch f {
	case fReadOnly:
		return tBool
	case fCreated, fUpdated, fExpires, fLastUsed:
		return tTime
	}
	return tString
}

// timeValue is a time field's value: null when not set.
func timeValue(t time.Time) value {
	if t.IsZero() {
		return value{}
	}
	return instant(t)
}

// instant is t as a time value, even the zero time (a literal
// "0001-01-01" is a date, not null).
func instant(t time.Time) value {
	return value{typ: tTime, sec: t.Unix(), nsec: int64(t.Nanosecond())}
}

// cmpTime orders two time values.
func cmpTime(a, b value) int {
	if c := cmp.Compare(a.sec, b.sec); c != 0 {
		return c
	}
	return cmp.Compare(a.nsec, b.nsec)
}

func (f field) get(r *tokenRow) value {
	t := r.t
	switch f {
	case fID:
		return value{typ: tString, s: t.ID}
	case fName:
		return value{typ: tString, s: t.Name}
	case fOwner:
		return value{typ: tString, s: t.Owner}
	case fKind:
		return value{typ: tString, s: string(t.Kind)}
	case fReadOnly:
		return value{typ: tBool, b: t.ReadOnly}
	case fCreated:
		return timeValue(t.Created)
	case fUpdated:
		return timeValue(t.Updated)
	case fExpires:
		return timeValue(t.Expires)
	default:
		if r.lastUsed == 0 {
			return value{}
		}
		return instant(time.Unix(0, r.lastUsed))
	}
}

// node is a compiled expression.
type node interface {
	eval(r *tokenRow) value
}

type litNode struct{ v value }

func (n litNode) eval(*tokenRow) value { return n.v }

type fieldNode struct{ f field }

func (n fieldNode) eval(r *tokenRow) value { return n.f.get(r) }

type notNode struct {
	x      node
	negate bool // "!" (else "!!")
}

func (n notNode) eval(r *tokenRow) value {
	return value{typ: tBool, b: n.x.eval(r).truthy() != n.negate}
}

type andNode struct {
	xs []node
	or bool
}

func (n andNode) eval(r *tokenRow) value {
	for _, x := range n.xs {
		if x.eval(r).truthy() == n.or {
			return value{typ: tBool, b: n.or}
		}
	}
	return value{typ: tBool, b: !n.or}
}

type eqNode struct{ a, b node }

func (n eqNode) eval(r *tokenRow) value {
	return value{typ: tBool, b: equal(n.a.eval(r), n.b.eval(r))}
}

func equal(a, b value) bool {
	if a.typ != b.typ {
		return false // includes a null time against a date
	}
	switch a.typ {
	case tNull:
		return true
	case tBool:
		return a.b == b.b
	case tNumber:
		return a.n == b.n
	case tString:
		return a.s == b.s
	default:
		return cmpTime(a, b) == 0
	}
}

// cmpNode is <, <=, >, >= over two operands, or < and <= over three
// (a op b op c).
type cmpNode struct {
	op string
	xs []node
}

func (n cmpNode) eval(r *tokenRow) value {
	prev := n.xs[0].eval(r)
	for _, x := range n.xs[1:] {
		cur := x.eval(r)
		if !ordered(n.op, prev, cur) {
			return value{typ: tBool}
		}
		prev = cur
	}
	return value{typ: tBool, b: true}
}

func ordered(op string, a, b value) bool {
	if a.typ != b.typ {
		return false // a null time
	}
	var c int
	switch a.typ {
	case tNumber:
		switch {
		case a.n < b.n:
			c = -1
		case a.n > b.n:
			c = 1
		case a.n != b.n:
			return false // NaN cannot come from JSON, but be safe
		}
	case tString:
		c = strings.Compare(a.s, b.s)
	case tTime:
		c = cmpTime(a, b)
	default:
		return false
	}
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	default:
		return c >= 0
	}
}

type inListNode struct {
	x    node
	list []node
}

func (n inListNode) eval(r *tokenRow) value {
	v := n.x.eval(r)
	for _, e := range n.list {
		if equal(v, e.eval(r)) {
			return value{typ: tBool, b: true}
		}
	}
	return value{typ: tBool}
}

type inStringNode struct{ sub, s node }

func (n inStringNode) eval(r *tokenRow) value {
	return value{typ: tBool, b: strings.Contains(n.s.eval(r).s, n.sub.eval(r).s)}
}

// tokenFilter is a compiled filter.
type tokenFilter struct{ root node }

// match reports whether the filter keeps r; a nil filter keeps everything.
func (f *tokenFilter) match(r *tokenRow) bool {
	return f == nil || f.root.eval(r).truthy()
}

// compileFilter compiles a JSON Logic filter. An empty one is nil (keeps
// everything). Every error is failure.Invalid.
func compileFilter(raw json.RawMessage) (*tokenFilter, error) {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil, nil
	}
	if len(raw) > maxFilterBytes {
		return nil, invalidf("filter: longer than %d bytes", maxFilterBytes)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, invalidf("filter: not JSON: %s", err.Error())
	}
	c := compiler{}
	n, _, err := c.expr(tree, 0)
	if err != nil {
		return nil, err
	}
	return &tokenFilter{root: n}, nil
}

type compiler struct{}

// typed is an expression with its static type; lit is set when it is a
// literal (which a comparison with a time converts).
type typed struct {
	n   node
	typ vtype
	lit *value
}

func (c compiler) expr(v any, depth int) (node, vtype, error) {
	t, err := c.typedExpr(v, depth)
	return t.n, t.typ, err
}

func literal(v value) typed {
	return typed{n: litNode{v}, typ: v.typ, lit: &v}
}

func (c compiler) typedExpr(v any, depth int) (typed, error) {
	if depth > maxFilterDepth {
		return typed{}, invalidf("filter: nested deeper than %d", maxFilterDepth)
	}
	switch x := v.(type) {
	case nil:
		return literal(value{}), nil
	case bool:
		return literal(value{typ: tBool, b: x}), nil
	case float64:
		return literal(value{typ: tNumber, n: x}), nil
	case string:
		return literal(value{typ: tString, s: x}), nil
	case []any:
		return typed{}, invalidf("filter: an array is only allowed as the list of \"in\"")
	case map[string]any:
		if len(x) != 1 {
			return typed{}, invalidf("filter: an operation is an object with exactly one key, got %d", len(x))
		}
		for op, arg := range x {
			return c.op(op, arg, depth)
		}
	}
	return typed{}, invalidf("filter: unexpected %T", v)
}

// args returns the arguments of an operation: an array, or a single value
// (JSON Logic's unary sugar, {"!": x}).
func args(arg any) []any {
	if a, ok := arg.([]any); ok {
		return a
	}
	return []any{arg}
}

func arity(op string, a []any, lo, hi int) error {
	if len(a) < lo || len(a) > hi {
		switch {
		case lo == hi:
			return invalidf("filter: %q takes %d argument(s), got %d", op, lo, len(a))
		case hi == math.MaxInt:
			return invalidf("filter: %q takes at least %d argument(s), got %d", op, lo, len(a))
		default:
			return invalidf("filter: %q takes %d to %d arguments, got %d", op, lo, hi, len(a))
		}
	}
	return nil
}

func (c compiler) list(a []any, depth int) ([]typed, error) {
	out := make([]typed, len(a))
	for i, x := range a {
		t, err := c.typedExpr(x, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func (c compiler) op(op string, arg any, depth int) (typed, error) {
	switch op {
	case "var":
		return c.variable(arg)
	case "and", "or":
		a := args(arg)
		if err := arity(op, a, 1, math.MaxInt); err != nil {
			return typed{}, err
		}
		xs, err := c.list(a, depth)
		if err != nil {
			return typed{}, err
		}
		ns := make([]node, len(xs))
		for i, x := range xs {
			ns[i] = x.n
		}
		return typed{n: andNode{xs: ns, or: op == "or"}, typ: tBool}, nil
	case "!", "!!":
		a := args(arg)
		if err := arity(op, a, 1, 1); err != nil {
			return typed{}, err
		}
		x, err := c.typedExpr(a[0], depth+1)
		if err != nil {
			return typed{}, err
		}
		return typed{n: notNode{x: x.n, negate: op == "!"}, typ: tBool}, nil
	case "==":
		a := args(arg)
		if err := arity(op, a, 2, 2); err != nil {
			return typed{}, err
		}
		xs, err := c.list(a, depth)
		if err != nil {
			return typed{}, err
		}
		if err := unify(op, xs, true); err != nil {
			return typed{}, err
		}
		return typed{n: eqNode{xs[0].n, xs[1].n}, typ: tBool}, nil
	case "<", "<=", ">", ">=":
		a := args(arg)
		hi := 2
		if op == "<" || op == "<=" {
			hi = 3 // between
		}
		if err := arity(op, a, 2, hi); err != nil {
			return typed{}, err
		}
		xs, err := c.list(a, depth)
		if err != nil {
			return typed{}, err
		}
		if err := unify(op, xs, false); err != nil {
			return typed{}, err
		}
		ns := make([]node, len(xs))
		for i, x := range xs {
			ns[i] = x.n
		}
		return typed{n: cmpNode{op: op, xs: ns}, typ: tBool}, nil
	case "in":
		return c.in(arg, depth)
	}
	return typed{}, invalidf("filter: unsupported operator %q (allowed: and, or, !, !!, var, ==, <, <=, >, >=, in)", op)
}

func (c compiler) variable(arg any) (typed, error) {
	a := args(arg)
	if len(a) != 1 {
		return typed{}, invalidf("filter: \"var\" takes one field name, got %d arguments", len(a))
	}
	name, ok := a[0].(string)
	if !ok {
		return typed{}, invalidf("filter: \"var\" takes a field name (a string)")
	}
	f, ok := filterFields[name]
	if !ok {
		return typed{}, invalidf("filter: unknown field %q (fields: id, name, owner, kind, read_only, created, updated, expires, last_used)", name)
	}
	return typed{n: fieldNode{f}, typ: f.typ()}, nil
}

func (c compiler) in(arg any, depth int) (typed, error) {
	a, ok := arg.([]any)
	if !ok || len(a) != 2 {
		return typed{}, invalidf("filter: \"in\" takes 2 arguments: a value and an array, or two strings")
	}
	x, err := c.typedExpr(a[0], depth+1)
	if err != nil {
		return typed{}, err
	}
	if list, ok := a[1].([]any); ok {
		if depth+1 > maxFilterDepth {
			return typed{}, invalidf("filter: nested deeper than %d", maxFilterDepth)
		}
		es, err := c.list(list, depth+1)
		if err != nil {
			return typed{}, err
		}
		all := append([]typed{x}, es...)
		if err := unify("in", all, true); err != nil {
			return typed{}, err
		}
		ns := make([]node, len(es))
		for i, e := range all[1:] {
			ns[i] = e.n
		}
		x = all[0]
		return typed{n: inListNode{x: x.n, list: ns}, typ: tBool}, nil
	}
	s, err := c.typedExpr(a[1], depth+1)
	if err != nil {
		return typed{}, err
	}
	if x.typ != tString || s.typ != tString {
		return typed{}, invalidf("filter: \"in\" takes a value and an array, or two strings (got %s and %s)", x.typ, s.typ)
	}
	return typed{n: inStringNode{sub: x.n, s: s.n}, typ: tBool}, nil
}

// unify checks that the operands of op can be compared, converting
// literals compared with a time into times. With eq, null may be compared
// with anything (and is equal only to null); booleans only with booleans.
// Ordering takes numbers, strings or times, never null or booleans.
func unify(op string, xs []typed, eq bool) error {
	hasTime := false
	for _, x := range xs {
		if !eq && (x.typ == tNull || x.typ == tBool) {
			return invalidf("filter: %q cannot order %s values", op, x.typ)
		}
		hasTime = hasTime || x.typ == tTime
	}
	if hasTime {
		for i, x := range xs {
			if x.typ == tTime || (eq && x.typ == tNull) {
				continue
			}
			if x.lit == nil {
				return invalidf("filter: %q cannot compare a time with a %s", op, x.typ)
			}
			t, err := timeLiteral(*x.lit)
			if err != nil {
				return err
			}
			xs[i] = literal(t)
		}
	}
	var want vtype = tNull
	for _, x := range xs {
		switch {
		case x.typ == tNull:
			continue // eq only: ordering refused nulls above
		case want == tNull:
			want = x.typ
		case x.typ != want:
			return invalidf("filter: %q cannot compare a %s with a %s", op, want, x.typ)
		}
	}
	return nil
}

// timeLiteral converts a literal compared with a time field: an RFC 3339
// string, a date, or unix seconds.
func timeLiteral(v value) (value, error) {
	switch v.typ {
	case tString:
		for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
			if t, err := time.Parse(layout, v.s); err == nil {
				return instant(t), nil
			}
		}
		return value{}, invalidf("filter: %q is not a time (RFC 3339, e.g. 2024-05-01T10:00:00Z, or a date 2024-05-01)", v.s)
	case tNumber:
		return unixSeconds(v.n)
	}
	return value{}, invalidf("filter: a %s is not a time", v.typ)
}

// maxLiteralNanos bounds a number of unix seconds compared with a time:
// 2^62 seconds, in nanoseconds.
var maxLiteralNanos = new(big.Int).Mul(big.NewInt(1<<62), big.NewInt(1e9))

// unixSeconds converts unix seconds to a time, exactly: rounded to the
// nanosecond (half away from zero), bounded to ±2^62 seconds. A float64
// times 1e9 would be rounded first, to 256 ns and worse.
func unixSeconds(secs float64) (value, error) {
	r := new(big.Rat)
	if math.IsNaN(secs) || math.IsInf(secs, 0) || r.SetFloat64(secs) == nil {
		return value{}, invalidf("filter: not a time")
	}
	r.Mul(r, big.NewRat(1e9, 1))
	neg := r.Sign() < 0
	r.Abs(r).Add(r, big.NewRat(1, 2))
	ns := new(big.Int).Quo(r.Num(), r.Denom()) // |secs| in ns, rounded
	if ns.Cmp(maxLiteralNanos) > 0 {
		ns.Set(maxLiteralNanos)
	}
	if neg {
		ns.Neg(ns)
	}
	sec, nsec := new(big.Int).DivMod(ns, big.NewInt(1e9), new(big.Int)) // Euclidean: 0 <= nsec < 1e9
	return value{typ: tTime, sec: sec.Int64(), nsec: nsec.Int64()}, nil
}
