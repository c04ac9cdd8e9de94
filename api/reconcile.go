package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// Reconciliation (POST /account/v1.0/reconcile) and every service's
// pending commissions (pending_commissions): see ledger.Reconcile and
// commission.PlanReconcile.
//
// Who: a service reconciles its own holdings (fix or not); an admin any
// service's, naming it; a reader (and a read-only token) looks without
// fixing. The counted holdings must be of resources the service serves,
// as for GET holdings.

// defaultOrphanAge is the age past which a pending commission is an
// orphan when the request does not say.
const defaultOrphanAge = time.Hour

// pendingView is a pending commission as the operator routes show it, with
// its age at now.
func pendingView(c commission.Commission, now time.Time) wire.PendingCommission {
	v := wire.PendingCommission{Serial: int64(c.Serial), Service: c.Client, Name: c.Name, IssueTime: wire.TimeOf(c.IssueTime),
		Age: int64(max(now.Sub(c.IssueTime), 0) / time.Second), Deadline: wire.TimeOf(c.Deadline),
		Provisions: make([]wire.Provision, len(c.Provisions))}
	for i, p := range c.Provisions {
		v.Provisions[i] = wire.Provision{Holder: p.Key.Holder, Source: p.Key.Source.Ptr(), Resource: p.Key.Resource, Quantity: p.Quantity}
	}
	return v
}

// reconcileService is the service a reconcile call is about, once the
// caller may make it.
func (s *Server) reconcileService(c *call, in *wire.ReconcileRequest) (string, error) {
	if svc := c.p.Service; svc != nil {
		if in.Service != "" && in.Service != svc.Name {
			return "", newFault(http.StatusForbidden, "a service reconciles its own holdings only")
		}
		act := identity.ActServiceRead
		if in.Fix {
			act = identity.ActCommission
		}
		if !identity.Allowed(c.p, act) {
			return "", newFault(http.StatusForbidden, "not allowed to "+string(act))
		}
		return svc.Name, nil
	}
	act := identity.ActReadAll
	if in.Fix {
		act = identity.ActManageQuotas
	}
	if !identity.Allowed(c.p, act) {
		if c.p.ReadOnly() {
			return "", newFault(http.StatusForbidden, "a read-only token cannot change anything")
		}
		return "", newFault(http.StatusForbidden, "not allowed to "+string(act))
	}
	if in.Service == "" {
		return "", badRequest("service is required: the service whose holdings are counted")
	}
	if _, err := s.id.FindServiceByName(in.Service); err != nil {
		return "", err
	}
	return in.Service, nil
}

// reconcile answers POST /account/v1.0/reconcile.
func (s *Server) reconcile(c *call) error {
	var in wire.ReconcileRequest
	if err := c.body(&in, true); err != nil {
		return err
	}
	service, err := s.reconcileService(c, &in)
	if err != nil {
		return err
	}
	age := defaultOrphanAge
	if in.OlderThan != nil {
		if v := *in.OlderThan; v < 0 || v > int64(ledger.MaxTTL/time.Second) {
			return badRequest("older_than must be from 0 to %d seconds", int64(ledger.MaxTTL/time.Second))
		}
		age = time.Duration(*in.OlderThan) * time.Second
	}
	if in.Usage == nil {
		return badRequest(`usage is required: {"usage": [{"holder", "source", "resource", "usage"}, ...]}`)
	}
	actual := make([]commission.Actual, len(in.Usage))
	seen := make(map[holdings.Key]int, len(in.Usage))
	for i, u := range in.Usage {
		k := holdings.Key{Holder: u.Holder, Source: holdings.SourceFromPtr(u.Source), Resource: u.Resource}
		if err := s.limits.ValidateKey(k); err != nil {
			return badRequest("usage[%d]: %v", i, err)
		}
		if !s.id.Serves(service, k.Resource) {
			return newFault(http.StatusForbidden, fmt.Sprintf("usage[%d]: service %s does not serve resource %q", i, service, k.Resource))
		}
		if u.Usage < 0 {
			return badRequest("usage[%d]: the usage must not be negative", i)
		}
		if j, ok := seen[k]; ok {
			return badRequest("usage[%d] counts the holding of usage[%d] again", i, j)
		}
		seen[k] = i
		actual[i] = commission.Actual{Key: k, Usage: u.Usage}
	}
	res, err := s.l.Reconcile(c.r.Context(), ledger.ReconcileRequest{Client: service, Actual: actual, OlderThan: age, Fix: in.Fix})
	if err != nil {
		return err
	}
	out := wire.Reconciliation{Service: service, Time: wire.TimeOf(res.Time), OlderThan: int64(age / time.Second),
		Holdings: make([]wire.Drift, len(res.Drifts)), Orphans: make([]wire.PendingCommission, len(res.Orphans)),
		Unknown: make([]wire.HoldingKey, len(res.Unknown)), Fixed: in.Fix,
		Rejected: serialsView(res.Rejected), Corrections: serialsView(res.Corrections)}
	for i, d := range res.Drifts {
		out.Holdings[i] = wire.Drift{HoldingKey: keyView(d.Key), Limit: d.Ledger.Limit, UsageMin: d.Ledger.UsageMin,
			UsageMax: d.Ledger.UsageMax, Actual: d.Actual, Difference: d.Difference}
	}
	for i, o := range res.Orphans {
		out.Orphans[i] = pendingView(o, res.Time)
	}
	for i, k := range res.Unknown {
		out.Unknown[i] = keyView(k)
	}
	return c.json(http.StatusOK, out)
}

func serialsView(s []uint64) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// listPendingCommissions answers GET /account/v1.0/pending_commissions.
func (s *Server) listPendingCommissions(c *call) error {
	if _, err := paging(c.q); err != nil {
		return err
	}
	now := s.l.Now()
	f := ledger.PendingFilter{Client: c.q.Get("service")}
	if v := c.q.Get("older_than"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/int64(time.Second) {
			return badRequest("older_than must be a number of seconds, got %q", v)
		}
		f.IssuedBy = now.Add(-time.Duration(n) * time.Second)
	}
	return paginate(c, inMemory(s.l.FindPending(f)), func(p commission.Commission) wire.PendingCommission {
		return pendingView(p, now)
	})
}

// resolvePendingCommissions answers POST
// /account/v1.0/pending_commissions/action: an admin accepts and rejects
// commissions of any service, logged with reason ADMIN:<uuid> (and the
// reason given, after a colon).
func (s *Server) resolvePendingCommissions(c *call) error {
	var in wire.Resolve
	if err := c.body(&in, true); err != nil {
		return err
	}
	if len(in.Accept)+len(in.Reject) > maxSerials {
		return badRequest("at most %d serials may be resolved at once", maxSerials)
	}
	if err := c.checkName(`"reason"`, in.Reason); err != nil {
		return err
	}
	reason := "ADMIN:" + c.p.User.UUID
	if in.Reason != "" {
		reason += ":" + in.Reason
	}
	acc, badAcc := positiveSerials(in.Accept)
	rej, badRej := positiveSerials(in.Reject)
	res, err := s.l.ResolveManyAny(c.r.Context(), acc, rej, reason)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, resolvedView(res, badAcc, badRej))
}
