package console_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
)

// TestResolvePending uses the admin's pending commissions page: its
// filter by age, a resolve confirmed before it is done, a reason too
// long, and a commission resolved meanwhile.
func TestResolvePending(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.browser()
	admin.login(adminUser, adminPassword)
	issue := func(name string) string {
		t.Helper()
		s, err := e.svc.IssueUserProjectCommission(ctx, e.demo.UUID, e.demo.UUID, map[string]int64{"compute.vm": 1}, client.IssueOptions{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(s, 10)
	}
	pending := func() []int64 {
		t.Helper()
		p, err := e.svc.GetPendingCommissions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := issue("old")
	e.clock.Advance(2 * time.Hour)
	fresh := issue("fresh")

	list := admin.get("/ui/admin/pending?older_than=3600")
	if !strings.Contains(list.body, `data-serial="`+old+`"`) || strings.Contains(list.body, `data-serial="`+fresh+`"`) ||
		!strings.Contains(list.body, "2 hours") || !strings.Contains(list.body, "stuck?") {
		t.Fatalf("pending for an hour or more: %.800s", list.body)
	}
	if all := admin.get("/ui/admin/pending"); !strings.Contains(all.body, `data-serial="`+fresh+`"`) || !strings.Contains(all.body, "2 pending commissions") {
		t.Fatalf("every pending commission: %.800s", all.body)
	}

	back := "/ui/admin/pending?older_than=3600"
	form := url.Values{"csrf": {list.csrf(t)}, "serial": {old}, "service": {demoService}, "action": {"accept"}, "back": {back}}
	p := admin.post("/ui/admin/pending", form)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Resolve commission "+old+"?") || !strings.Contains(p.body, "Accept commission "+old) {
		t.Fatalf("the confirm page: %d %.500s", p.status, p.body)
	}
	if len(pending()) != 2 {
		t.Fatal("resolved before it was confirmed")
	}
	form.Set("confirm", "yes")
	form.Set("reason", strings.Repeat("x", 401))
	if p := admin.post("/ui/admin/pending", form); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="reason-error"`) ||
		!strings.Contains(p.body, "The reason is too long") || len(pending()) != 2 {
		t.Fatalf("a reason too long: %d %.500s", p.status, p.body)
	}
	form.Set("reason", "made by hand")
	if p := admin.post("/ui/admin/pending", form); p.status != http.StatusSeeOther || p.location() != back {
		t.Fatalf("the confirmed accept: %d to %q %.300s", p.status, p.location(), p.body)
	}
	if left := pending(); len(left) != 1 || strconv.FormatInt(left[0], 10) != fresh {
		t.Fatalf("pending after the accept: %v", left)
	}
	hs, err := e.api.FindHoldings(ctx, client.HoldingFilter{Holders: []string{"user:" + e.demo.UUID},
		Sources: []string{"project:" + e.demo.UUID}, Resources: []string{"compute.vm"}})
	if err != nil || len(hs) != 1 || hs[0].UsageMin != 1 || hs[0].UsageMax != 2 {
		t.Errorf("the user's compute.vm after the accept: %+v %v, want 1 accepted and 1 pending", hs, err)
	}
	// The service resolves fresh meanwhile: the admin's form says so.
	serial, _ := strconv.ParseInt(fresh, 10, 64)
	if err := e.svc.RejectCommission(ctx, serial); err != nil {
		t.Fatal(err)
	}
	form.Set("serial", fresh)
	if p := admin.post("/ui/admin/pending", form); p.status != http.StatusUnprocessableEntity ||
		!strings.Contains(p.body, "Commission "+fresh+" is no longer pending") || slices.Contains(pending(), serial) {
		t.Errorf("a commission resolved meanwhile: %d %.500s", p.status, p.body)
	}
}
