package commission

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// Reconciliation (the lineage's reconcile-resources and
// reconcile-commissions). A ledger drifts from what a service really holds:
// a VM deleted while its release was lost, a service that crashed between
// an issue and its accept. The service counts its actual usage per
// holding; PlanReconcile compares that count with the ledger and says what
// sets the ledger right: reject the orphans (the service's commissions
// pending since before a cutoff, which no live request of its will
// resolve), then move the committed usage of each holding that drifted by
// one forced correction, accepted at once.
//
// A holding agrees with its count when the count lies within its
// [usage_min, usage_max] once the orphans are rejected: a commission still
// in flight may or may not have happened yet in the service. Outside that
// range the correction is the least that brings the count within it: the
// count minus usage_max above it, minus usage_min below it (with nothing
// pending, the count minus the usage).

// Actual is a holding's usage as its service counts it.
type Actual struct {
	Key   holdings.Key
	Usage int64
}

// Drift is a holding whose usage in the ledger disagrees with its
// service's count.
type Drift struct {
	Key holdings.Key
	// Ledger is the holding as the ledger holds it now, before the
	// orphans are rejected.
	Ledger holdings.Value
	Actual int64
	// Difference is the quantity of the correction: what it adds to the
	// committed usage.
	Difference int64
}

// Reconciliation is what PlanReconcile found, and the correction that
// would set the ledger right.
type Reconciliation struct {
	// Orphans are the pending commissions issued at or before the cutoff,
	// by serial.
	Orphans []*Commission
	// Drifts are the holdings whose count lies outside their range, in the
	// order of the count.
	Drifts []Drift
	// Unknown are the counted holdings that the ledger does not have: no
	// correction can name them.
	Unknown []holdings.Key
	// Correction is the provisions of the correction, one per drift, its
	// difference: issued forced and accepted after the orphans are
	// rejected, they cannot fail (PlanReconcile checked them).
	Correction []holdings.Provision
}

// PlanReconcile compares the counts of a service (actual) with the
// holdings get returns, the orphans being the commissions of pending
// issued at or before cutoff (pending must be the service's own pending
// commissions). A key that is not valid, counted twice or with a negative
// usage is failure.Invalid; a correction that would overflow is
// holdings.ErrOverflow. Nothing is changed: the caller applies the plan.
func PlanReconcile(get Lookup, pending []*Commission, actual []Actual, cutoff time.Time) (*Reconciliation, error) {
	seen := make(map[holdings.Key]bool, len(actual))
	for i, a := range actual {
		if err := a.Key.Validate(); err != nil {
			return nil, failure.Errorf(failure.Invalid, "count %d: %w", i, err)
		}
		if a.Usage < 0 {
			return nil, failure.Errorf(failure.Invalid, "count %d: the usage of %s is negative", i, a.Key)
		}
		if seen[a.Key] {
			return nil, failure.Errorf(failure.Invalid, "count %d: %s is counted twice", i, a.Key)
		}
		seen[a.Key] = true
	}
	r := &Reconciliation{}
	for _, c := range pending {
		if !c.IssueTime.After(cutoff) {
			r.Orphans = append(r.Orphans, c)
		}
	}
	slices.SortFunc(r.Orphans, func(a, b *Commission) int { return cmp.Compare(a.Serial, b.Serial) })

	// The holdings as they are once the orphans are rejected.
	view := make(map[holdings.Key]holdings.Value)
	look := func(k holdings.Key) (holdings.Value, bool) {
		if v, ok := view[k]; ok {
			return v, true
		}
		return get(k)
	}
	for _, c := range r.Orphans {
		after, err := Resolve(look, c, false)
		if err != nil {
			return nil, fmt.Errorf("rejecting orphan %d: %w", c.Serial, err)
		}
		for i, p := range c.Provisions {
			view[p.Key] = after[i]
		}
	}

	for _, a := range actual {
		now, ok := get(a.Key)
		if !ok {
			r.Unknown = append(r.Unknown, a.Key)
			continue
		}
		v, _ := look(a.Key)
		var d int64
		switch {
		case a.Usage > v.UsageMax:
			d, ok = sub(a.Usage, v.UsageMax)
		case a.Usage < v.UsageMin:
			d, ok = sub(a.Usage, v.UsageMin)
		default:
			continue
		}
		if !ok {
			return nil, fmt.Errorf("the correction of %s: %w", a.Key, holdings.ErrOverflow)
		}
		r.Drifts = append(r.Drifts, Drift{Key: a.Key, Ledger: now, Actual: a.Usage, Difference: d})
		r.Correction = append(r.Correction, holdings.Provision{Key: a.Key, Quantity: d})
	}

	// The correction, forced and accepted on that view, must apply.
	after, err := Issue(look, r.Correction, true)
	if err != nil {
		return nil, fmt.Errorf("the correction: %w", err)
	}
	for i, p := range r.Correction {
		if _, err := after[i].Accept(p.Quantity); err != nil {
			return nil, fmt.Errorf("the correction of %s: %w", p.Key, err)
		}
	}
	return r, nil
}

// sub is a-b, and whether it fits in int64.
func sub(a, b int64) (int64, bool) {
	if b == math.MinInt64 {
		if a >= 0 {
			return 0, false
		}
		return a - b, true
	}
	return holdings.Add(a, -b)
}
