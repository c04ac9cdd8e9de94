package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
)

// Reconciliation and every service's pending commissions
// (/account/v1.0/reconcile, pending_commissions).

// ActualUsage is a holding's usage as its service counts it.
type ActualUsage = wire.ActualUsage

// ReconcileRequest is what Reconcile sends: the count, the age of an
// orphan (nil: the server's hour), and whether to fix.
type ReconcileRequest = wire.ReconcileRequest

// Reconciliation is the answer of Reconcile.
type Reconciliation = wire.Reconciliation

// Drift is a holding whose usage differs from its service's count.
type Drift = wire.Drift

// PendingCommission is a pending commission with its service and age.
type PendingCommission = wire.PendingCommission

// Reconcile compares a service's count of its usage with the ledger, and
// with Fix sets the ledger right (POST /account/v1.0/reconcile): a service
// its own holdings, an admin any service's (Service). The count is
// absolute, so a fix may be sent again: the second finds nothing to do;
// the call is retried as an idempotent one.
func (c *Client) Reconcile(ctx context.Context, r ReconcileRequest) (*Reconciliation, error) {
	if r.Usage == nil {
		r.Usage = []ActualUsage{}
	}
	var out Reconciliation
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/reconcile", body: r, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PendingFilter selects pending commissions: of Service ("" every
// service's), pending at least OlderThan (0: any).
type PendingFilter struct {
	Service   string
	OlderThan time.Duration
	PageOptions
}

// FindPendingCommissions lists every service's pending commissions, oldest
// first, with their age (GET /account/v1.0/pending_commissions; admins
// and readers).
func (c *Client) FindPendingCommissions(ctx context.Context, f PendingFilter) (*Page[PendingCommission], error) {
	q := url.Values{}
	if f.Service != "" {
		q.Set("service", f.Service)
	}
	if f.OlderThan > 0 {
		q.Set("older_than", strconv.FormatInt(int64(f.OlderThan/time.Second), 10))
	}
	f.PageOptions.set(q)
	var out Page[PendingCommission]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/pending_commissions", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResolvePendingCommissions accepts and rejects pending commissions of any
// service (POST /account/v1.0/pending_commissions/action; admins): the
// provision log says ADMIN:<the admin's uuid>, and reason if given.
func (c *Client) ResolvePendingCommissions(ctx context.Context, accept, reject []int64, reason string) (*Resolved, error) {
	if accept == nil {
		accept = []int64{}
	}
	if reject == nil {
		reject = []int64{}
	}
	var out wire.Resolved
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/pending_commissions/action",
		body: wire.Resolve{Accept: accept, Reject: reject, Reason: reason}}, &out); err != nil {
		return nil, err
	}
	return resolvedOf(&out), nil
}
