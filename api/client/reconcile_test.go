package client_test

import (
	"slices"
	"testing"

	"github.com/quotaledger/quotaledger/api/client"
)

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	u := e.userRec.UUID
	src := "project:" + u
	vm := client.ActualUsage{Usage: 0}
	vm.Holder, vm.Source, vm.Resource = "user:"+u, &src, "cyclades.vm"
	_, err := e.service.IssueCommission(ctx, client.Commission{AutoAccept: true, Provisions: []client.Provision{
		{Holder: "user:" + u, Source: &src, Resource: "cyclades.vm", Quantity: 2}}})
	check(t, "POST /account/v1.0/commissions", err)
	orphan, err := e.service.IssueCommission(ctx, client.Commission{Provisions: []client.Provision{
		{Holder: "user:" + u, Source: &src, Resource: "cyclades.ram", Quantity: 1}}})
	check(t, "POST /account/v1.0/commissions", err)

	now := int64(0)
	plan, err := e.service.Reconcile(ctx, client.ReconcileRequest{Usage: []client.ActualUsage{vm}, OlderThan: &now})
	check(t, "POST /account/v1.0/reconcile", err)
	if len(plan.Holdings) != 1 || plan.Holdings[0].Difference != -2 || plan.Holdings[0].UsageMax != 2 ||
		len(plan.Orphans) != 1 || plan.Orphans[0].Serial != orphan || plan.Fixed {
		t.Fatalf("plan %+v", plan)
	}
	pending, err := e.admin.FindPendingCommissions(ctx, client.PendingFilter{Service: "cyclades"})
	check(t, "GET /account/v1.0/pending_commissions", err)
	if pending.Count != 1 || pending.Results[0].Serial != orphan {
		t.Fatalf("pending %+v", pending)
	}
	_, err = e.user.FindPendingCommissions(ctx, client.PendingFilter{})
	wantErr[*client.Forbidden](t, "pending commissions as a user", err, 403)

	fixed, err := e.service.Reconcile(ctx, client.ReconcileRequest{Usage: []client.ActualUsage{vm}, OlderThan: &now, Fix: true})
	check(t, "POST /account/v1.0/reconcile", err)
	if !fixed.Fixed || !slices.Equal(fixed.Rejected, []int64{orphan}) || len(fixed.Corrections) != 1 {
		t.Fatalf("fix %+v", fixed)
	}
	_, err = e.admin.Reconcile(ctx, client.ReconcileRequest{Usage: []client.ActualUsage{vm}})
	wantErr[*client.BadRequest](t, "an admin's reconcile without a service", err, 400)

	// An admin resolves any service's.
	s, err := e.service.IssueCommission(ctx, client.Commission{})
	check(t, "POST /account/v1.0/commissions", err)
	res, err := e.admin.ResolvePendingCommissions(ctx, nil, []int64{s, 999}, "stuck")
	check(t, "POST /account/v1.0/pending_commissions/action", err)
	if !slices.Equal(res.Rejected, []int64{s}) || len(res.Failed) != 1 || res.Failed[0].Serial != 999 {
		t.Fatalf("resolved %+v", res)
	}
	wantErr[*client.NotFound](t, "a serial not pending", res.Failed[0].Err, 404)
}
