package holdings

import (
	"errors"
	"fmt"

	"github.com/quotaledger/quotaledger/failure"
)

// NoHoldingError is returned when a provision names a holding that does not
// exist (failure.NotFound: the API answers 404 itemNotFound).
type NoHoldingError struct {
	Provision Provision
}

func (e *NoHoldingError) Error() string {
	return fmt.Sprintf("holding %s does not exist", e.Provision.Key)
}

// NoCapacityError is returned when an import would raise usage_max above the
// limit of a commission that is not forced. Usage is usage_max before the
// provision (failure.OverLimit: the API answers 413 overLimit).
type NoCapacityError struct {
	Provision Provision
	Limit     int64
	Usage     int64
}

func (e *NoCapacityError) Error() string {
	return fmt.Sprintf("limit %d exceeded for %s: usage %d + %d",
		e.Limit, e.Provision.Key, e.Usage, e.Provision.Quantity)
}

// NoQuantityError is returned when a release would lower usage_min below
// zero. Limit is always 0 and Usage is usage_min before the provision. Force
// never waives it (failure.OverLimit: the API answers 413 overLimit).
type NoQuantityError struct {
	Provision Provision
	Limit     int64
	Usage     int64
}

func (e *NoQuantityError) Error() string {
	return fmt.Sprintf("cannot release %d from %s: usage %d",
		-e.Provision.Quantity, e.Provision.Key, e.Usage)
}

// QuotaLimit is the lineage's family of NoCapacity and NoQuantity.
type QuotaLimit interface {
	error
	// QuotaLimit returns the failing provision, the limit and the usage.
	QuotaLimit() (p Provision, limit, usage int64)
	// Name is the lineage's error name, "NoCapacityError" or "NoQuantityError".
	Name() string
}

func (e *NoCapacityError) QuotaLimit() (Provision, int64, int64) {
	return e.Provision, e.Limit, e.Usage
}
func (e *NoCapacityError) Name() string { return "NoCapacityError" }

func (e *NoQuantityError) QuotaLimit() (Provision, int64, int64) {
	return e.Provision, e.Limit, e.Usage
}
func (e *NoQuantityError) Name() string { return "NoQuantityError" }

// Name is the lineage's error name, "NoHoldingError".
func (e *NoHoldingError) Name() string { return "NoHoldingError" }

// FailureCode is failure.NotFound.
func (e *NoHoldingError) FailureCode() failure.Code { return failure.NotFound }

// FailureCode is failure.OverLimit.
func (e *NoCapacityError) FailureCode() failure.Code { return failure.OverLimit }

// FailureCode is failure.OverLimit.
func (e *NoQuantityError) FailureCode() failure.Code { return failure.OverLimit }

// AsQuotaLimit returns the QuotaLimit error in err's chain, if any.
func AsQuotaLimit(err error) (QuotaLimit, bool) {
	var q QuotaLimit
	ok := errors.As(err, &q)
	return q, ok
}
