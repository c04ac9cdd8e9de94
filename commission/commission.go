// Package commission holds the rules of commissions: merging same-key
// provisions, issuing all or nothing against a view of holdings, accepting and
// rejecting, and partitioning a resolve-many request. It is pure logic: the
// caller owns the holdings and decides what to keep.
package commission

import (
	"fmt"
	"time"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// ErrEmptyName is returned for a provision whose holder or resource is empty
// (failure.Invalid).
var ErrEmptyName = failure.New(failure.Invalid, "holder and resource must not be empty")

// Commission is an issued, pending commission.
type Commission struct {
	Serial     uint64
	Client     string // the clientkey: the service that issued it
	Name       string
	IssueTime  time.Time
	Deadline   time.Time // zero: never expires
	Provisions []holdings.Provision
}

// Merge sums the quantities of provisions that name the same holding. The
// result keeps the order in which each key first appears. It fails with
// holdings.ErrOverflow if a sum does not fit in int64 and with ErrEmptyName
// for a provision without holder or resource.
func Merge(ps []holdings.Provision) ([]holdings.Provision, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	out := make([]holdings.Provision, 0, len(ps))
	// Commissions are short: a linear search beats a map below a few dozen.
	var index map[holdings.Key]int
	if len(ps) > 16 {
		index = make(map[holdings.Key]int, len(ps))
	}
	for _, p := range ps {
		if p.Key.Holder == "" || p.Key.Resource == "" {
			return nil, ErrEmptyName
		}
		i := -1
		if index != nil {
			if j, ok := index[p.Key]; ok {
				i = j
			}
		} else {
			for j := range out {
				if out[j].Key == p.Key {
					i = j
					break
				}
			}
		}
		if i < 0 {
			if index != nil {
				index[p.Key] = len(out)
			}
			out = append(out, p)
			continue
		}
		s, ok := holdings.Add(out[i].Quantity, p.Quantity)
		if !ok {
			return nil, fmt.Errorf("quantities of %s: %w", p.Key, holdings.ErrOverflow)
		}
		out[i].Quantity = s
	}
	return out, nil
}

// Lookup returns the current value of a holding and whether it exists.
type Lookup func(holdings.Key) (holdings.Value, bool)

// Issue checks merged provisions against the holdings that get returns, in
// order, and returns the value each holding takes if the commission is issued.
// It stops at the first failure: a *holdings.NoHoldingError,
// *holdings.NoCapacityError, *holdings.NoQuantityError or
// holdings.ErrOverflow, and then nothing is to be applied.
// The provisions must have distinct keys (see Merge).
func Issue(get Lookup, merged []holdings.Provision, force bool) ([]holdings.Value, error) {
	after := make([]holdings.Value, len(merged))
	for i, p := range merged {
		v, ok := get(p.Key)
		if !ok {
			return nil, &holdings.NoHoldingError{Provision: p}
		}
		nv, err := v.Issue(p, force)
		if err != nil {
			return nil, err
		}
		after[i] = nv
	}
	return after, nil
}

// Resolve returns the values the holdings of c take when c is accepted
// (accept true) or rejected. Every holding of a pending commission exists
// (deleting a holding is refused while a commission touches it); a missing
// one is reported as a NoHoldingError.
func Resolve(get Lookup, c *Commission, accept bool) ([]holdings.Value, error) {
	after := make([]holdings.Value, len(c.Provisions))
	for i, p := range c.Provisions {
		v, ok := get(p.Key)
		if !ok {
			return nil, &holdings.NoHoldingError{Provision: p}
		}
		nv, err := v.Resolve(p.Quantity, accept)
		if err != nil {
			return nil, err
		}
		after[i] = nv
	}
	return after, nil
}

// Plan is a resolve-many request partitioned into what to do.
type Plan struct {
	Accept      []uint64 // pending, to accept, in request order, without repeats
	Reject      []uint64 // pending, to reject, in request order, without repeats
	NotFound    []uint64 // not pending for this client
	Conflicting []uint64 // named in both lists: neither accepted nor rejected
}

// PlanResolve partitions the accept and reject lists of a resolve-many
// request. A serial in both lists is conflicting; a serial that pending
// reports false for is not found; repeats within one list count once.
func PlanResolve(accept, reject []uint64, pending func(uint64) bool) Plan {
	inAccept := make(map[uint64]bool, len(accept))
	for _, s := range accept {
		inAccept[s] = true
	}
	inReject := make(map[uint64]bool, len(reject))
	for _, s := range reject {
		inReject[s] = true
	}
	var p Plan
	seen := make(map[uint64]bool, len(accept)+len(reject))
	visit := func(s uint64, list *[]uint64) {
		if seen[s] {
			return
		}
		seen[s] = true
		switch {
		case inAccept[s] && inReject[s]:
			p.Conflicting = append(p.Conflicting, s)
		case !pending(s):
			p.NotFound = append(p.NotFound, s)
		default:
			*list = append(*list, s)
		}
	}
	for _, s := range accept {
		visit(s, &p.Accept)
	}
	for _, s := range reject {
		visit(s, &p.Reject)
	}
	return p
}
