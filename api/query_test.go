package api

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

func TestListParam(t *testing.T) {
	for _, tc := range []struct {
		query     string
		keepEmpty bool
		want      []string
	}{
		{"x=a,b", false, []string{"a", "b"}},
		{"x=a, b&x= c ,", false, []string{"a", "b", "c"}},
		{"x=a,,b", false, []string{"a", "b"}},
		{"x=", false, nil},
		{"y=a", false, nil},
		{"x=a,,b", true, []string{"a", "", "b"}},
		{"x=", true, []string{""}},
		{"x=a, ", true, []string{"a", ""}},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := listParam(q, "x", tc.keepEmpty); !slices.Equal(got, tc.want) {
			t.Errorf("listParam(%q, keepEmpty %v) = %q, want %q", tc.query, tc.keepEmpty, got, tc.want)
		}
	}
}

// TestListParamsTrimmed checks that a list with spaces after its commas
// means the same on the REST routes and on the Astakos ones.
func TestListParamsTrimmed(t *testing.T) {
	e := newEnv(t)
	other, _ := e.restNewUser("other@example.com")
	u := e.uuid()
	settings := []ledger.HoldingSetting{
		{Key: holdings.Key{Holder: "h0", Source: holdings.SourceOf("system"), Resource: "r"}, Limit: 1},
		{Key: holdings.Key{Holder: "h1", Source: holdings.SourceOf("system"), Resource: "r"}, Limit: 1},
	}
	if err := e.l.SetHoldings(context.Background(), settings); err != nil {
		t.Fatal(err)
	}
	if hs := e.restWant(200, "GET", restBase+"holdings?holder="+url.QueryEscape("h0, h1"), e.admin, nil)["holdings"].([]any); len(hs) != 2 {
		t.Errorf("holdings of h0, h1: %v", hs)
	}
	st, out := e.do("GET", "/account/v1.0/service_quotas?user="+url.QueryEscape(u+", "+other.UUID), e.service, nil)
	if st != 200 || out[u] == nil || out[other.UUID] == nil || len(out) != 2 {
		t.Errorf("service quotas of two users: %d %v", st, out)
	}
}
