package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestHistoryPages walks a log longer than one page of the ledger's, page
// by page: every entry once, in order, and every page counts them all.
func TestHistoryPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = holdings.MaxProvisions
	var settings []ledger.HoldingSetting
	var ps []holdings.Provision
	for i := range n {
		k := holdings.Key{Holder: "h", Source: holdings.SourceOf("s"), Resource: fmt.Sprintf("r%04d", i)}
		settings = append(settings, ledger.HoldingSetting{Key: k, Limit: 10})
		ps = append(ps, holdings.Provision{Key: k, Quantity: 1})
	}
	if err := e.l.SetHoldings(ctx, settings); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", AutoAccept: true, Provisions: ps}); err != nil {
			t.Fatal(err)
		}
	}
	for _, holder := range []string{"h", ""} { // by holder, and the whole log by serial
		seen := map[string]bool{}
		var order []string
		var last float64
		for page := 1; ; page++ {
			p := e.restWant(200, "GET", fmt.Sprintf("%shistory?holder=%s&page=%d&page_size=100", restBase, holder, page), e.admin, nil)
			if p["count"] != float64(2*n) {
				t.Fatalf("holder %q, page %d: count %v, want %d", holder, page, p["count"], 2*n)
			}
			for _, r := range p["results"].([]any) {
				en := r.(map[string]any)
				id := fmt.Sprintf("%v/%v", en["serial"], en["resource"])
				if seen[id] {
					t.Fatalf("holder %q, page %d: %s twice", holder, page, id)
				}
				seen[id] = true
				order = append(order, id)
				if sr := en["serial"].(float64); sr < last {
					t.Fatalf("holder %q, page %d: serial %v after %v", holder, page, sr, last)
				} else {
					last = sr
				}
			}
			if p["next"] == nil {
				if page != 2*n/100 {
					t.Fatalf("holder %q: %d pages, want %d", holder, page, 2*n/100)
				}
				break
			}
		}
		if len(order) != 2*n {
			t.Fatalf("holder %q: %d entries, want %d", holder, len(order), 2*n)
		}
	}
}
