package wire

// The messages of reconciliation and of every service's pending
// commissions (/account/v1.0/reconcile, pending_commissions).

// ActualUsage is a holding's usage as its service counts it.
type ActualUsage struct {
	HoldingKey
	Usage int64 `json:"usage"`
}

// ReconcileRequest is the body of POST reconcile.
type ReconcileRequest struct {
	// Service is whose holdings these are: an admin's call names it; a
	// service's may leave it out (it is the service's own).
	Service string        `json:"service,omitempty"`
	Usage   []ActualUsage `json:"usage"`
	// OlderThan is the age, in seconds, past which a pending commission
	// of the service is an orphan (3600 if left out).
	OlderThan *int64 `json:"older_than,omitempty"`
	// Fix sets the ledger right: the orphans rejected and one forced
	// correction, in one step.
	Fix bool `json:"fix"`
}

// Drift is a holding whose usage in the ledger differs from its
// service's count: the ledger's values (before the fix), the count, and
// the correction's quantity.
type Drift struct {
	HoldingKey
	Limit      int64 `json:"limit"`
	UsageMin   int64 `json:"usage_min"`
	UsageMax   int64 `json:"usage_max"`
	Actual     int64 `json:"actual"`
	Difference int64 `json:"difference"`
}

// PendingCommission is a pending commission as an operator sees it: its
// service, its age in whole seconds, and its deadline (null: none).
type PendingCommission struct {
	Serial     int64       `json:"serial"`
	Service    string      `json:"service"`
	Name       string      `json:"name"`
	IssueTime  Time        `json:"issue_time"`
	Age        int64       `json:"age"`
	Deadline   Time        `json:"deadline"`
	Provisions []Provision `json:"provisions"`
}

// Reconciliation is the answer of POST reconcile: as of Time, the
// holdings that differ, the orphans, the counted holdings the ledger does
// not have; and with fix, what was done: the orphans rejected and the
// correcting commissions (each issued and accepted).
type Reconciliation struct {
	Service     string              `json:"service"`
	Time        Time                `json:"time"`
	OlderThan   int64               `json:"older_than"`
	Holdings    []Drift             `json:"holdings"`
	Orphans     []PendingCommission `json:"orphans"`
	Unknown     []HoldingKey        `json:"unknown"`
	Fixed       bool                `json:"fixed"`
	Rejected    []int64             `json:"rejected"`
	Corrections []int64             `json:"corrections"`
}
