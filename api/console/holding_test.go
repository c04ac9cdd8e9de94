package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/api/client"
)

// TestSetLimit sets limits with the holdings page's forms: each is checked
// (an error next to the field, in words), then confirmed on a page that
// says what changes, and only the confirmed form sets it.
func TestSetLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.browser()
	admin.login(adminUser, adminPassword)
	holder, source := "user:"+e.demo.UUID, "project:"+e.demo.UUID
	holdingsPage := "/ui/admin/holdings?holder=" + url.QueryEscape(demoUser)
	limitOf := func(resource string) int64 {
		t.Helper()
		hs, err := e.api.FindHoldings(ctx, client.HoldingFilter{Holders: []string{holder}, Sources: []string{source}, Resources: []string{resource}})
		if err != nil || len(hs) != 1 {
			t.Fatalf("the holding of %s: %v %v", resource, hs, err)
		}
		return hs[0].Limit
	}
	form := func(resource, limit string, more ...string) page {
		t.Helper()
		f := url.Values{"holder": {holder}, "source": {source}, "resource": {resource}, "limit": {limit}}
		for i := 0; i+1 < len(more); i += 2 {
			f.Set(more[i], more[i+1])
		}
		return admin.form(holdingsPage, "/ui/admin/holdings", f)
	}

	for _, c := range []struct{ resource, limit, says string }{
		{"compute.vm", "five", "The limit is not right: enter a whole number of 0 or more."},
		{"compute.vm", "-1", "a limit cannot be negative"},
		{"compute.vm", "2 GiB", "enter a whole number"},
		{"compute.ram", "1.5 B", "not a whole number of bytes"},
		{"compute.ram", "9 EiB", "more than the largest limit"},
		{"compute.disk", "5", "There is no resource compute.disk"},
	} {
		p := form(c.resource, c.limit, "confirm", "yes")
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, c.says) || !strings.Contains(p.body, `class="field-error"`) {
			t.Errorf("%s %q: %d, want %q next to the field", c.resource, c.limit, p.status, c.says)
		}
	}
	if limitOf("compute.vm") != 2 || limitOf("compute.ram") != 4<<30 {
		t.Fatal("a refused form set a limit")
	}

	// A good form asks to confirm first, and changes nothing yet.
	p := form("compute.ram", "8 GiB")
	if p.status != http.StatusOK || !strings.Contains(p.body, "Set this limit?") || !strings.Contains(p.body, "<strong>8 GiB</strong> (8,589,934,592 bytes)") ||
		!strings.Contains(p.body, `name="confirm" value="yes"`) {
		t.Fatalf("the confirm page: %d %.600s", p.status, p.body)
	}
	if limitOf("compute.ram") != 4<<30 {
		t.Fatal("the limit was set before it was confirmed")
	}
	p = form("compute.ram", "8589934592", "confirm", "yes")
	if p.status != http.StatusSeeOther {
		t.Fatalf("the confirmed form: %d %.300s", p.status, p.body)
	}
	if got := limitOf("compute.ram"); got != 8<<30 {
		t.Fatalf("the limit after the confirmed form: %d", got)
	}

	// Below what is in use: the confirm page says what that means.
	if _, err := e.svc.IssueUserProjectCommission(ctx, e.demo.UUID, e.demo.UUID, map[string]int64{"compute.vm": 2},
		client.IssueOptions{AutoAccept: true}); err != nil {
		t.Fatal(err)
	}
	if p := form("compute.vm", "1"); !strings.Contains(p.body, "The new limit is below what is in use now") {
		t.Errorf("the confirm page of a limit below the use: %.600s", p.body)
	}
}
