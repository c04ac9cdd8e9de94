// Package holdings defines the account of one resource that one holder draws
// from one source, and the arithmetic of the ledger on it: imports and
// releases at issue time, accept and reject at resolve time. It is pure logic
// with no I/O; every operation is checked for int64 overflow.
package holdings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/quotaledger/quotaledger/failure"
)

// ErrOverflow is returned when a quantity, a sum of quantities or a usage
// would not fit in a signed 64-bit integer (failure.Invalid).
var ErrOverflow = failure.New(failure.Invalid, "arithmetic overflow")

// ErrNegativeLimit is returned when a limit below zero is set
// (failure.Invalid).
var ErrNegativeLimit = failure.New(failure.Invalid, "negative limit")

// Source is the source a holding draws from: a string, or null. Null and the
// empty string are different sources. The zero value is null.
type Source struct {
	name  string
	valid bool
}

// NullSource is the null source (a project's own holding).
var NullSource = Source{}

// SourceOf returns the non-null source named s (which may be empty).
func SourceOf(s string) Source { return Source{name: s, valid: true} }

// IsNull reports whether s is the null source.
func (s Source) IsNull() bool { return !s.valid }

// Name returns the source's string; the null source has the name "".
func (s Source) Name() string { return s.name }

// String renders the source for people: the name, or "<null>".
func (s Source) String() string {
	if !s.valid {
		return "<null>"
	}
	return fmt.Sprintf("%q", s.name)
}

// Ptr returns the source as a *string, nil for null.
func (s Source) Ptr() *string {
	if !s.valid {
		return nil
	}
	n := s.name
	return &n
}

// SourceFromPtr is the inverse of Ptr.
func SourceFromPtr(p *string) Source {
	if p == nil {
		return NullSource
	}
	return SourceOf(*p)
}

// MarshalJSON encodes the null source as null and others as a JSON string.
func (s Source) MarshalJSON() ([]byte, error) {
	if !s.valid {
		return []byte("null"), nil
	}
	return json.Marshal(s.name)
}

// UnmarshalJSON accepts null or a JSON string.
func (s *Source) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = NullSource
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return failure.Errorf(failure.Invalid, "source must be a string or null")
	}
	*s = SourceOf(name)
	return nil
}

// Key names a holding: holder, source and resource. It is comparable and can
// be used as a map key.
type Key struct {
	Holder   string
	Source   Source
	Resource string
}

func (k Key) String() string {
	return fmt.Sprintf("(%q, %s, %q)", k.Holder, k.Source, k.Resource)
}

// Value is the state of one holding. While nothing is forced,
// 0 <= UsageMin <= UsageMax <= Limit; UsageMin <= UsageMax always holds.
//   - UsageMax is the committed usage plus every pending import,
//   - UsageMin is the committed usage minus every pending release.
type Value struct {
	Limit    int64
	UsageMin int64
	UsageMax int64
}

// Usage is the usage as the API shows it (usage_max).
func (v Value) Usage() int64 { return v.UsageMax }

// Pending is the spread between the most and the least the usage can become.
func (v Value) Pending() int64 { return v.UsageMax - v.UsageMin }

// WithLimit returns v with its limit set to limit, keeping its usage. A limit
// below the current usage is allowed; a negative one is not.
func (v Value) WithLimit(limit int64) (Value, error) {
	if limit < 0 {
		return v, ErrNegativeLimit
	}
	v.Limit = limit
	return v, nil
}

// Provision is a quantity of one holding in a commission: an import when
// Quantity >= 0, a release when Quantity < 0.
type Provision struct {
	Key      Key
	Quantity int64
}

// IsImport reports whether p draws from the holding (quantity >= 0).
func (p Provision) IsImport() bool { return p.Quantity >= 0 }

// Issue applies p to v as an issue does: an import raises UsageMax and, unless
// force, must stay within the limit (NoCapacityError); a release lowers
// UsageMin, which must stay at or above zero whatever force says
// (NoQuantityError).
func (v Value) Issue(p Provision, force bool) (Value, error) {
	q := p.Quantity
	if q >= 0 {
		nv, ok := add(v.UsageMax, q)
		if !ok {
			return v, ErrOverflow
		}
		if nv > v.Limit && !force {
			return v, &NoCapacityError{Provision: p, Limit: v.Limit, Usage: v.UsageMax}
		}
		v.UsageMax = nv
		return v, nil
	}
	if q == math.MinInt64 {
		return v, ErrOverflow
	}
	nv, ok := add(v.UsageMin, q)
	if !ok {
		return v, ErrOverflow
	}
	if nv < 0 {
		return v, &NoQuantityError{Provision: p, Limit: 0, Usage: v.UsageMin}
	}
	v.UsageMin = nv
	return v, nil
}

// Accept makes p's effect on v committed: an import raises UsageMin, a release
// lowers UsageMax.
func (v Value) Accept(q int64) (Value, error) {
	if q >= 0 {
		nv, ok := add(v.UsageMin, q)
		if !ok {
			return v, ErrOverflow
		}
		v.UsageMin = nv
		return v, nil
	}
	nv, ok := add(v.UsageMax, q)
	if !ok {
		return v, ErrOverflow
	}
	v.UsageMax = nv
	return v, nil
}

// Reject undoes p's effect on v: an import lowers UsageMax back, a release
// raises UsageMin back.
func (v Value) Reject(q int64) (Value, error) {
	if q == math.MinInt64 {
		return v, ErrOverflow
	}
	if q >= 0 {
		nv, ok := add(v.UsageMax, -q)
		if !ok {
			return v, ErrOverflow
		}
		v.UsageMax = nv
		return v, nil
	}
	nv, ok := add(v.UsageMin, -q)
	if !ok {
		return v, ErrOverflow
	}
	v.UsageMin = nv
	return v, nil
}

// Resolve is Accept when accept is true, Reject otherwise.
func (v Value) Resolve(q int64, accept bool) (Value, error) {
	if accept {
		return v.Accept(q)
	}
	return v.Reject(q)
}

// Check reports whether v satisfies the invariants that hold while nothing
// is forced, or, if forced is true, the weaker ones that always hold.
func (v Value) Check(forced bool) error {
	if v.UsageMin > v.UsageMax {
		return fmt.Errorf("usage_min %d > usage_max %d", v.UsageMin, v.UsageMax)
	}
	if v.UsageMin < 0 {
		return fmt.Errorf("usage_min %d < 0", v.UsageMin)
	}
	if !forced && v.UsageMax > v.Limit {
		return fmt.Errorf("usage_max %d > limit %d", v.UsageMax, v.Limit)
	}
	return nil
}

// Add returns a+b and whether it did not overflow.
func Add(a, b int64) (int64, bool) { return add(a, b) }

func add(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// Holding is a holding's key with its value.
type Holding struct {
	Key
	Value
}
