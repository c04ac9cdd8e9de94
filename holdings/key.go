package holdings

import (
	"fmt"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/failure"
)

// The caps on holding keys and commissions, the same for every caller (the
// ledger refuses more; the API, which may be set to take less, never more).
const (
	// MaxNameLen caps each part of a key, holder, source and resource, in
	// bytes.
	MaxNameLen = 512
	// MaxProvisions caps the provisions of one commission: a commission's
	// events carry every provision in one message, which must stay well
	// under a NATS message's 1 MiB (as the ledger's quota events of at most
	// 1,000 holdings do).
	MaxProvisions = 1000
)

// Problem is what is wrong with a key or a commission's provisions.
type Problem int

const (
	Empty   Problem = iota + 1 // a holder or resource is ""
	TooLong                    // a part is longer than the cap
	NotUTF8                    // a part is not valid UTF-8
	TooMany                    // more provisions than the cap
)

// InvalidError says what Validate or ValidateProvisions found wrong, as
// data, so that a caller may word it its own way (the API keeps the
// lineage's messages).
type InvalidError struct {
	// Provision is the index of the provision whose key is wrong, -1 for
	// a key checked alone or for TooMany.
	Provision int
	// Part is "holder", "source" or "resource" ("" for TooMany).
	Part    string
	Problem Problem
	// Max is the cap broken (TooLong: bytes; TooMany: provisions).
	Max int
}

// FailureCode reports the code of every InvalidError: failure.Invalid.
func (e *InvalidError) FailureCode() failure.Code { return failure.Invalid }

func (e *InvalidError) Error() string {
	var what string
	switch e.Problem {
	case TooMany:
		return fmt.Sprintf("a commission has at most %d provisions", e.Max)
	case Empty:
		what = e.Part + " must not be empty"
	case TooLong:
		what = fmt.Sprintf("%s is longer than %d bytes", e.Part, e.Max)
	default:
		what = e.Part + " must be valid UTF-8"
	}
	if e.Provision >= 0 {
		return fmt.Sprintf("provision %d: %s", e.Provision, what)
	}
	return what
}

// Limits are caps tighter than MaxNameLen and MaxProvisions, for a caller
// set to take less than the ledger does. A zero field, or one above the
// package's cap, is the package's cap.
type Limits struct {
	NameLen    int
	Provisions int
}

func (lim Limits) nameLen() int {
	if lim.NameLen <= 0 || lim.NameLen > MaxNameLen {
		return MaxNameLen
	}
	return lim.NameLen
}

func (lim Limits) provisions() int {
	if lim.Provisions <= 0 || lim.Provisions > MaxProvisions {
		return MaxProvisions
	}
	return lim.Provisions
}

// Validate checks k: a holder and a resource that are not empty, and every
// part (the source's name too) valid UTF-8 of at most MaxNameLen bytes.
// The error is an *InvalidError.
func (k Key) Validate() error { return Limits{}.ValidateKey(k) }

// ValidateProvisions checks the provisions of a commission: at most
// MaxProvisions, each with a valid key (Key.Validate). The error is an
// *InvalidError naming the first provision found wrong.
func ValidateProvisions(ps []Provision) error { return Limits{}.ValidateProvisions(ps) }

// ValidateKey is Key.Validate with lim's caps.
func (lim Limits) ValidateKey(k Key) error {
	if e := lim.check(k); e != nil {
		e.Provision = -1
		return e
	}
	return nil
}

// ValidateProvisions is the package's ValidateProvisions with lim's caps.
func (lim Limits) ValidateProvisions(ps []Provision) error {
	if max := lim.provisions(); len(ps) > max {
		return &InvalidError{Provision: -1, Problem: TooMany, Max: max}
	}
	for i := range ps {
		if e := lim.check(ps[i].Key); e != nil {
			e.Provision = i
			return e
		}
	}
	return nil
}

func (lim Limits) check(k Key) *InvalidError {
	max := lim.nameLen()
	for _, p := range [3]struct {
		name, v  string
		mayEmpty bool
	}{{"holder", k.Holder, false}, {"source", k.Source.name, true}, {"resource", k.Resource, false}} {
		switch {
		case p.v == "" && !p.mayEmpty:
			return &InvalidError{Part: p.name, Problem: Empty}
		case len(p.v) > max:
			return &InvalidError{Part: p.name, Problem: TooLong, Max: max}
		case !utf8.ValidString(p.v):
			return &InvalidError{Part: p.name, Problem: NotUTF8}
		}
	}
	return nil
}
