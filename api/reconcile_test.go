package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// strictly decodes a 200 answer into v, unknown fields refused.
func (e *env) strictly(method, path, token string, body any, v any) {
	e.t.Helper()
	st, raw := e.doRaw(method, path, token, body)
	if st != 200 {
		e.t.Fatalf("%s %s: %d %s", method, path, st, raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
	}
}

// usageOf is a count entry of the user's base-project holding of r.
func (e *env) usageOf(r string, n int64) map[string]any {
	k := e.memberKey(r)
	return map[string]any{"holder": k.Holder, "source": k.Source.Ptr(), "resource": k.Resource, "usage": n}
}

// sameDrift compares two drifts by value (their sources are pointers).
func sameDrift(a, b wire.Drift) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestRestReconcile(t *testing.T) {
	clock := newTestClock()
	e := newEnvOn(t, zerolog.Nop(), nil, ledger.Options{Now: clock.Now})
	ctx := context.Background()
	// Two VMs, one of them deleted while its release was lost; a resize
	// that crashed between issue and accept; an hour and a half later, a
	// create in flight.
	e.issue(e.service, map[string]any{"auto_accept": true, "provisions": []any{prov(e.memberKey("cyclades.vm"), 2)}})
	orphan := e.issue(e.service, map[string]any{"name": "resize", "provisions": []any{prov(e.memberKey("cyclades.ram"), 1<<30)}})
	clock.Advance(90 * time.Minute)
	young := e.issue(e.service, map[string]any{"provisions": []any{prov(e.memberKey("cyclades.vm"), -1)}})
	count := map[string]any{"usage": []any{e.usageOf("cyclades.vm", 0), e.usageOf("cyclades.ram", 0)}}
	outbox := e.l.Stats()

	// Without fix: the holdings that differ and the orphans, nothing done.
	var plan wire.Reconciliation
	e.strictly("POST", restBase+"reconcile", e.service, count, &plan)
	vm := e.memberKey("cyclades.vm")
	want := wire.Drift{HoldingKey: keyView(vm), Limit: 2, UsageMin: 1, UsageMax: 2, Actual: 0, Difference: -1}
	if plan.Service != "cyclades" || plan.OlderThan != 3600 || plan.Fixed || len(plan.Holdings) != 1 || !sameDrift(plan.Holdings[0], want) ||
		len(plan.Orphans) != 1 || plan.Orphans[0].Serial != int64(orphan) || plan.Orphans[0].Age != 5400 ||
		plan.Orphans[0].Name != "resize" || plan.Orphans[0].Service != "cyclades" || len(plan.Unknown) != 0 ||
		len(plan.Rejected) != 0 || len(plan.Corrections) != 0 || !plan.Time.Equal(clock.Now()) {
		t.Fatalf("the plan %+v", plan)
	}
	if st := e.l.Stats(); st != outbox {
		t.Fatalf("a plan changed the ledger: %+v, was %+v", st, outbox)
	}

	// With fix: the orphan rejected, the VM corrected; the young one stays.
	count["fix"] = true
	var fixed wire.Reconciliation
	e.strictly("POST", restBase+"reconcile", e.service, count, &fixed)
	if !fixed.Fixed || !slices.Equal(fixed.Rejected, []int64{int64(orphan)}) || len(fixed.Corrections) != 1 ||
		len(fixed.Holdings) != 1 || !sameDrift(fixed.Holdings[0], want) {
		t.Fatalf("the fix %+v", fixed)
	}
	if v, _ := e.l.FindHoldingByKey(vm); v.UsageMin != 0 || v.UsageMax != 1 {
		t.Fatalf("the VMs after the fix: %+v", v)
	}
	if got := e.l.Pending("cyclades"); !slices.Equal(got, []uint64{young}) {
		t.Fatalf("pending after the fix %v, want %d", got, young)
	}
	// The provision log and the events say what was done.
	log := e.restWant(200, "GET", fmt.Sprintf("%scommissions/%d/log", restBase, fixed.Corrections[0]), e.service, nil)
	if r := log["results"].([]any)[0].(map[string]any); r["reason"] != "RECONCILE:cyclades" || r["name"] != "RECONCILE" || r["quantity"] != float64(-1) {
		t.Fatalf("the correction's log %v", log)
	}
	log = e.restWant(200, "GET", fmt.Sprintf("%scommissions/%d/log", restBase, orphan), e.service, nil)
	if r := log["results"].([]any)[0].(map[string]any); r["reason"] != "REJECT:RECONCILE:cyclades" {
		t.Fatalf("the orphan's log %v", log)
	}
	evs, err := e.l.Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs[len(evs)-3:] {
		types = append(types, ev.Type+" "+ev.Reason)
	}
	if !slices.Equal(types, []string{"commission.rejected REJECT:RECONCILE:cyclades", "commission.issued ", "commission.accepted RECONCILE:cyclades"}) {
		t.Fatalf("the fix's events %v", types)
	}
	// Again: nothing to do.
	e.strictly("POST", restBase+"reconcile", e.service, count, &fixed)
	if len(fixed.Holdings) != 0 || len(fixed.Orphans) != 0 || len(fixed.Corrections) != 0 || len(fixed.Rejected) != 0 {
		t.Fatalf("a second fix %+v", fixed)
	}

	// An admin reconciles any service, naming it; a reader looks.
	reader, err := e.id.CreateUser(ctx, identity.NewUser{Username: "reader@example.com", Password: testPassword,
		Role: identity.RoleReader, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	readerTok, _, _, err := e.id.Login(ctx, reader.Username, testPassword, identity.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	look := map[string]any{"service": "cyclades", "older_than": 0, "usage": []any{e.usageOf("cyclades.vm", 1)}}
	e.strictly("POST", restBase+"reconcile", readerTok, look, &plan)
	if len(plan.Orphans) != 1 || plan.Orphans[0].Serial != int64(young) || plan.OlderThan != 0 || len(plan.Holdings) != 0 {
		t.Fatalf("the reader's look %+v", plan)
	}
	look["fix"] = true
	e.restWant(403, "POST", restBase+"reconcile", readerTok, look)
	e.strictly("POST", restBase+"reconcile", e.admin, look, &fixed)
	if !slices.Equal(fixed.Rejected, []int64{int64(young)}) {
		t.Fatalf("the admin's fix %+v", fixed)
	}

	// Refusals, each changing nothing.
	other, _, err := e.id.CreateService(ctx, identity.NewService{Name: "pithos", Type: "storage"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.id.CreateResource(ctx, identity.Resource{Name: "pithos.disk", Service: "pithos"}); err != nil {
		t.Fatal(err)
	}
	before := e.l.Stats()
	for _, c := range []struct {
		name, token string
		body        any
		status      int
	}{
		{"AnotherServicesHoldings", other, map[string]any{"usage": []any{e.usageOf("cyclades.vm", 5)}, "fix": true}, 403},
		{"NamingAnotherService", other, map[string]any{"service": "cyclades", "usage": []any{}, "fix": true}, 403},
		{"AdminWithoutService", e.admin, map[string]any{"usage": []any{}}, 400},
		{"UnknownService", e.admin, map[string]any{"service": "nova", "usage": []any{}}, 404},
		{"AUser", e.user, map[string]any{"service": "cyclades", "usage": []any{}}, 403},
		{"NoUsage", e.service, map[string]any{"fix": true}, 400},
		{"NegativeUsage", e.service, map[string]any{"usage": []any{e.usageOf("cyclades.vm", -1)}, "fix": true}, 400},
		{"Twice", e.service, map[string]any{"usage": []any{e.usageOf("cyclades.vm", 1), e.usageOf("cyclades.vm", 2)}, "fix": true}, 400},
		{"NegativeAge", e.service, map[string]any{"usage": []any{}, "older_than": -1, "fix": true}, 400},
		{"UnknownField", e.service, map[string]any{"usage": []any{}, "dry_run": true}, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			if st, out := e.do("POST", restBase+"reconcile", c.token, c.body); st != c.status {
				t.Fatalf("status %d, want %d: %v", st, c.status, out)
			}
		})
	}
	if after := e.l.Stats(); after != before {
		t.Fatalf("a refused reconciliation changed the ledger: %+v, was %+v", after, before)
	}
}

func TestRestPendingCommissions(t *testing.T) {
	clock := newTestClock()
	e := newEnvOn(t, zerolog.Nop(), nil, ledger.Options{Now: clock.Now})
	first := e.issue(e.service, map[string]any{"name": "stuck", "provisions": []any{prov(e.memberKey("cyclades.vm"), 1)}})
	clock.Advance(2 * time.Hour)
	second := e.issue(e.service, map[string]any{"provisions": []any{prov(e.memberKey("cyclades.ram"), 1)}})

	var page wire.Page[wire.PendingCommission]
	e.strictly("GET", restBase+"pending_commissions", e.admin, nil, &page)
	if page.Count != 2 || page.Results[0].Serial != int64(first) || page.Results[0].Age != 7200 || page.Results[0].Service != "cyclades" ||
		page.Results[0].Name != "stuck" || len(page.Results[0].Provisions) != 1 || page.Results[1].Age != 0 || !page.Results[1].Deadline.IsZero() {
		t.Fatalf("every pending commission %+v", page)
	}
	e.strictly("GET", restBase+"pending_commissions?older_than=3600", e.admin, nil, &page)
	if page.Count != 1 || page.Results[0].Serial != int64(first) {
		t.Fatalf("pending an hour %+v", page)
	}
	e.strictly("GET", restBase+"pending_commissions?service=pithos", e.admin, nil, &page)
	if page.Count != 0 {
		t.Fatalf("pithos's %+v", page)
	}
	e.restWant(403, "GET", restBase+"pending_commissions", e.user, nil)
	e.restWant(400, "GET", restBase+"pending_commissions?older_than=soon", e.admin, nil)

	// An admin resolves any service's, with a reason the log keeps.
	var res wire.Resolved
	e.strictly("POST", restBase+"pending_commissions/action", e.admin,
		map[string]any{"reject": []int64{int64(first), 0}, "accept": []int64{int64(second), 999}, "reason": "stuck since Monday"}, &res)
	if !slices.Equal(res.Accepted, []int64{int64(second)}) || !slices.Equal(res.Rejected, []int64{int64(first)}) || len(res.Failed) != 2 {
		t.Fatalf("resolved %+v", res)
	}
	admin, err := e.id.FindUserByName("admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	log := e.restWant(200, "GET", fmt.Sprintf("%scommissions/%d/log", restBase, first), e.admin, nil)
	if r := log["results"].([]any)[0].(map[string]any); r["reason"] != "REJECT:ADMIN:"+admin.UUID+":stuck since Monday" {
		t.Fatalf("the log of an admin's reject %v", log)
	}
	if got := e.l.FindPending(ledger.PendingFilter{}); len(got) != 0 {
		t.Fatalf("still pending %v", got)
	}
	e.restWant(403, "POST", restBase+"pending_commissions/action", e.service, map[string]any{"reject": []int64{1}})
}
