package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// TestKeyValidation checks that every way into the ledger refuses what
// holdings' validation refuses, as a failure.Invalid carrying the
// *holdings.InvalidError, and changes nothing.
func TestKeyValidation(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	good := key("h", "s", "r")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: good, Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", holdings.MaxNameLen+1)
	many := make([]holdings.Provision, holdings.MaxProvisions+1)
	for i := range many {
		many[i] = holdings.Provision{Key: good, Quantity: 0}
	}
	for _, tc := range []struct {
		name string
		call func() error
		want holdings.Problem
	}{
		{"SetHoldingsLongHolder", func() error {
			return l.SetHoldings(ctx, []HoldingSetting{{Key: key(long, "s", "r"), Limit: 1}})
		}, holdings.TooLong},
		{"SetHoldingsEmptyResource", func() error { return l.SetHoldings(ctx, []HoldingSetting{{Key: key("h", "s", ""), Limit: 1}}) }, holdings.Empty},
		{"TxSetHoldingsLongSource", func() error {
			return l.Update(ctx, func(tx *Tx) error { return tx.SetHoldings(HoldingSetting{Key: key("h", long, "r"), Limit: 1}) })
		}, holdings.TooLong},
		{"DeleteHoldingsBadUTF8", func() error { return l.DeleteHoldings(ctx, []holdings.Key{key("h\xff", "s", "r")}) }, holdings.NotUTF8},
		{"IssueLongResource", func() error {
			_, err := l.Issue(ctx, IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: good, Quantity: 1}, {Key: key("h", "s", long), Quantity: 1}}})
			return err
		}, holdings.TooLong},
		{"IssueTooMany", func() error {
			_, err := l.Issue(ctx, IssueRequest{Client: "c", Provisions: many})
			return err
		}, holdings.TooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := l.Stats()
			err := tc.call()
			var ie *holdings.InvalidError
			if failure.CodeOf(err) != failure.Invalid || !errors.As(err, &ie) || ie.Problem != tc.want {
				t.Fatalf("error %v, want a failure.Invalid with problem %d", err, tc.want)
			}
			if after := l.Stats(); after.Holdings != before.Holdings || after.Serial != before.Serial {
				t.Fatalf("a refused call changed the ledger: %+v -> %+v", before, after)
			}
		})
	}
	// The caps themselves are allowed.
	if _, err := l.Issue(ctx, IssueRequest{Client: "c", Provisions: many[:holdings.MaxProvisions]}); err != nil {
		t.Fatalf("%d provisions: %v", holdings.MaxProvisions, err)
	}
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: key(long[1:], long[1:], long[1:]), Limit: 1}}); err != nil {
		t.Fatalf("%d-byte parts: %v", holdings.MaxNameLen, err)
	}
}
