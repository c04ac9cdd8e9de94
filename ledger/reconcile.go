package ledger

import (
	"cmp"
	"context"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/holdings"
)

// Reconciliation and the pending commissions of every client: what an
// operator needs when the ledger drifted from what a service really holds
// (commission.PlanReconcile says how the drift is measured).

// The name of a correcting commission, and the reason a reconciliation
// gives: a correction's provisions are logged with reason
// "RECONCILE:<client>", the orphans it rejects with
// "REJECT:RECONCILE:<client>".
const (
	ReconcileName   = "RECONCILE"
	ReasonReconcile = "RECONCILE:"
)

// ReconcileRequest is a reconciliation of the holdings a client (a
// service) counted.
type ReconcileRequest struct {
	// Client is the service: its pending commissions are the ones that may
	// be orphans, and the correction is its commission.
	Client string
	// Actual is the service's count of its usage, per holding.
	Actual []commission.Actual
	// OlderThan is the age past which a pending commission of Client is an
	// orphan: issued at or before the ledger's time less OlderThan. Not
	// negative.
	OlderThan time.Duration
	// Fix applies the plan: the orphans rejected, then the correction
	// issued (forced) and accepted, all in one batch, one journal record.
	Fix bool
}

// ReconcileResult is what a reconciliation found and, with Fix, did.
type ReconcileResult struct {
	// Time is the ledger's time the plan is as of.
	Time time.Time
	// Orphans, Drifts and Unknown are commission.Reconciliation's (the
	// orphans as copies, by serial).
	Orphans []commission.Commission
	Drifts  []commission.Drift
	Unknown []holdings.Key
	// Rejected are the serials of the orphans rejected, Corrections those
	// of the correcting commissions, issued and accepted: one for every
	// holdings.MaxProvisions holdings that drifted (none without a drift).
	// Both are empty without Fix.
	Rejected, Corrections []uint64
}

// Reconcile compares the count of a service with its holdings (see
// commission.PlanReconcile). Without Fix it reads the durable state and
// changes nothing; with Fix it plans and applies the plan in the writer,
// in one batch: the orphans rejected ("commission.rejected", reason
// REJECT:RECONCILE:<client>), then the correction issued and accepted
// ("commission.issued" and "commission.accepted", name RECONCILE, reason
// RECONCILE:<client>), each in the provision log. A fix is idempotent: the
// count is absolute, so a retry finds nothing more to do. A bad request is
// failure.Invalid; a correction that would overflow, holdings.ErrOverflow.
func (l *Ledger) Reconcile(ctx context.Context, req ReconcileRequest) (ReconcileResult, error) {
	if req.Client == "" || !utf8.ValidString(req.Client) {
		return ReconcileResult{}, invalid("client must be valid UTF-8, not empty")
	}
	if req.OlderThan < 0 {
		return ReconcileResult{}, invalid("the age of an orphan must not be negative")
	}
	if !req.Fix {
		now := l.opts.Now().UTC()
		l.mu.RLock()
		pending := make([]*commission.Commission, 0, len(l.byClient[req.Client]))
		for s := range l.byClient[req.Client] {
			pending = append(pending, l.pending[s])
		}
		plan, err := commission.PlanReconcile(l.table.get, pending, req.Actual, now.Add(-req.OlderThan))
		l.mu.RUnlock()
		if err != nil {
			return ReconcileResult{}, err
		}
		return reconcileResult(plan, now), nil
	}
	o := &reconcileOp{req: req}
	err := l.do(ctx, o)
	return o.res, err
}

func reconcileResult(plan *commission.Reconciliation, now time.Time) ReconcileResult {
	res := ReconcileResult{Time: now, Drifts: plan.Drifts, Unknown: plan.Unknown,
		Orphans: make([]commission.Commission, len(plan.Orphans))}
	for i, c := range plan.Orphans {
		res.Orphans[i] = *c
		res.Orphans[i].Provisions = slices.Clone(c.Provisions)
	}
	return res
}

type reconcileOp struct {
	req ReconcileRequest
	res ReconcileResult
}

// apply plans against the batch's view and applies the plan. Nothing of it
// can fail once planned (PlanReconcile checked the correction on the view
// the orphans leave, and a pending commission always resolves), so the op
// is all or nothing.
func (o *reconcileOp) apply(b *batch) error {
	var pending []*commission.Commission
	b.eachPending(func(c *commission.Commission) bool {
		if c.Client == o.req.Client {
			pending = append(pending, c)
		}
		return true
	})
	plan, err := commission.PlanReconcile(b.get, pending, o.req.Actual, b.now.Add(-o.req.OlderThan))
	if err != nil {
		return err
	}
	o.res = reconcileResult(plan, b.now)
	reason := ReasonReconcile + o.req.Client
	for _, c := range plan.Orphans {
		if err := b.resolve(c, false, "REJECT:"+reason, resolveRejected); err != nil {
			return err
		}
		o.res.Rejected = append(o.res.Rejected, c.Serial)
	}
	for part := range slices.Chunk(plan.Correction, holdings.MaxProvisions) {
		after, err := commission.Issue(b.get, part, true)
		if err != nil {
			return err
		}
		b.ctr.Serial++
		c := &commission.Commission{Serial: b.ctr.Serial, Client: o.req.Client, Name: ReconcileName,
			IssueTime: b.now, Provisions: part}
		for i, p := range part {
			b.updateHolding(p.Key, after[i])
		}
		b.addCommission(c)
		b.recordIssue(c, after, nil, "", nil)
		b.emitted(1)
		b.l.m.count(iIssued, len(part))
		if err := b.resolve(c, true, reason, resolveAccepted); err != nil {
			return err
		}
		o.res.Corrections = append(o.res.Corrections, c.Serial)
	}
	return nil
}

// PendingFilter selects pending commissions of every client.
type PendingFilter struct {
	Client string // "": every client's
	// IssuedBy, when set, keeps the commissions issued at or before it.
	IssuedBy time.Time
}

// FindPending returns copies of the pending commissions f selects, of
// every client unless f names one, by serial: the durable state, as every
// read.
func (l *Ledger) FindPending(f PendingFilter) []commission.Commission {
	l.mu.RLock()
	var out []commission.Commission
	add := func(c *commission.Commission) {
		if f.IssuedBy.IsZero() || !c.IssueTime.After(f.IssuedBy) {
			cp := *c
			cp.Provisions = slices.Clone(c.Provisions)
			out = append(out, cp)
		}
	}
	if f.Client != "" {
		for s := range l.byClient[f.Client] {
			add(l.pending[s])
		}
	} else {
		for _, c := range l.pending {
			add(c)
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b commission.Commission) int { return cmp.Compare(a.Serial, b.Serial) })
	return out
}

// ResolveManyAny is ResolveMany over the pending commissions of every
// client: an operator's call, for commissions their service will not
// resolve. A serial that is not pending at all is not found.
func (l *Ledger) ResolveManyAny(ctx context.Context, accept, reject []uint64, reason string) (ResolveResult, error) {
	defer since(l.m.resolveSeconds, time.Now())
	if !utf8.ValidString(reason) {
		return ResolveResult{}, invalid("reason must be valid UTF-8")
	}
	o := &resolveManyOp{anyClient: true, accept: accept, reject: reject, reason: reason}
	err := l.do(ctx, o)
	return o.res, err
}

// Now is the ledger's clock (Options.Now): the time of its records, and
// the one the age of a pending commission is counted at.
func (l *Ledger) Now() time.Time { return l.opts.Now().UTC() }
