package holdings

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/failure"
)

func TestErrorNames(t *testing.T) {
	tests := []struct {
		name string
		err  interface{ Name() string }
	}{
		{"NoCapacityError", &NoCapacityError{Provision: prov(5), Limit: 3, Usage: 1}},
		{"NoQuantityError", &NoQuantityError{Provision: prov(-5), Usage: 1}},
		{"NoHoldingError", &NoHoldingError{Provision: prov(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Name(); got != tc.name {
				t.Fatalf("Name() = %q, want %q", got, tc.name)
			}
			msg := tc.err.(error).Error()
			if !strings.Contains(msg, `"user:1"`) || !strings.Contains(msg, `"cpu"`) {
				t.Fatalf("Error() = %q does not name the holding", msg)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"NoCapacityError", &NoCapacityError{Provision: prov(5), Limit: 3, Usage: 1},
			`limit 3 exceeded for ("user:1", "system", "cpu"): usage 1 + 5`},
		{"NoQuantityError", &NoQuantityError{Provision: prov(-5), Usage: 1},
			`cannot release 5 from ("user:1", "system", "cpu"): usage 1`},
		{"NoHoldingError", &NoHoldingError{Provision: prov(1)},
			`holding ("user:1", "system", "cpu") does not exist`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Fatalf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAsQuotaLimit(t *testing.T) {
	capErr := &NoCapacityError{Provision: prov(5), Limit: 3, Usage: 1}
	qtyErr := &NoQuantityError{Provision: prov(-5), Limit: 0, Usage: 2}
	tests := []struct {
		name      string
		err       error
		wantOK    bool
		wantName  string
		wantP     Provision
		wantLimit int64
		wantUsage int64
	}{
		{"NoCapacityError", capErr, true, "NoCapacityError", prov(5), 3, 1},
		{"NoQuantityError", qtyErr, true, "NoQuantityError", prov(-5), 0, 2},
		{"NoCapacityError/Wrapped", fmt.Errorf("issue: %w", capErr), true, "NoCapacityError", prov(5), 3, 1},
		{"NoQuantityError/Wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", qtyErr)), true, "NoQuantityError", prov(-5), 0, 2},
		{"NoHoldingError", &NoHoldingError{Provision: prov(1)}, false, "", Provision{}, 0, 0},
		{"ErrOverflow", ErrOverflow, false, "", Provision{}, 0, 0},
		{"Nil", nil, false, "", Provision{}, 0, 0},
		{"Other", errors.New("other"), false, "", Provision{}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, ok := AsQuotaLimit(tc.err)
			if ok != tc.wantOK {
				t.Fatalf("AsQuotaLimit(%v) ok = %v, want %v", tc.err, ok, tc.wantOK)
			}
			if !ok {
				if q != nil {
					t.Fatalf("AsQuotaLimit(%v) = %v with ok false", tc.err, q)
				}
				return
			}
			if q.Name() != tc.wantName {
				t.Errorf("Name() = %q, want %q", q.Name(), tc.wantName)
			}
			p, limit, usage := q.QuotaLimit()
			if p != tc.wantP || limit != tc.wantLimit || usage != tc.wantUsage {
				t.Errorf("QuotaLimit() = %+v, %d, %d; want %+v, %d, %d",
					p, limit, usage, tc.wantP, tc.wantLimit, tc.wantUsage)
			}
		})
	}
}

// TestIssueErrorsAreQuotaLimits ties Value.Issue to AsQuotaLimit: what Issue
// reports for an over-limit import or an over-release is a QuotaLimit with
// the design's limit and usage.
func TestIssueErrorsAreQuotaLimits(t *testing.T) {
	tests := []struct {
		name      string
		v         Value
		q         int64
		force     bool
		wantName  string
		wantLimit int64
		wantUsage int64
	}{
		{"NoCapacityError", Value{10, 2, 7}, 4, false, "NoCapacityError", 10, 7},
		{"NoQuantityError", Value{10, 2, 7}, -3, false, "NoQuantityError", 0, 2},
		{"NoQuantityError/Forced", Value{10, 2, 7}, -3, true, "NoQuantityError", 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.Issue(prov(tc.q), tc.force)
			q, ok := AsQuotaLimit(err)
			if !ok {
				t.Fatalf("Issue err = %v, not a QuotaLimit", err)
			}
			p, limit, usage := q.QuotaLimit()
			if q.Name() != tc.wantName || p != prov(tc.q) || limit != tc.wantLimit || usage != tc.wantUsage {
				t.Fatalf("got %s %+v limit %d usage %d; want %s limit %d usage %d",
					q.Name(), p, limit, usage, tc.wantName, tc.wantLimit, tc.wantUsage)
			}
		})
	}
}

// TestErrorCodes checks the failure code of every error of the package,
// bare and wrapped, and that its message names no package.
func TestErrorCodes(t *testing.T) {
	var src Source
	tests := []struct {
		name string
		err  error
		want failure.Code
	}{
		{"NoCapacityError", &NoCapacityError{Provision: prov(5), Limit: 3, Usage: 1}, failure.OverLimit},
		{"NoQuantityError", &NoQuantityError{Provision: prov(-5), Usage: 1}, failure.OverLimit},
		{"NoHoldingError", &NoHoldingError{Provision: prov(1)}, failure.NotFound},
		{"ErrOverflow", ErrOverflow, failure.Invalid},
		{"ErrNegativeLimit", ErrNegativeLimit, failure.Invalid},
		{"BadSource", src.UnmarshalJSON([]byte("1")), failure.Invalid},
		{"BrokenInvariant", Value{Limit: 1, UsageMin: 3, UsageMax: 2}.Check(true), failure.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range []error{tc.err, fmt.Errorf("commission 7: %w", tc.err)} {
				if got := failure.CodeOf(err); got != tc.want {
					t.Fatalf("CodeOf(%v) = %q, want %q", err, got, tc.want)
				}
			}
			if msg := tc.err.Error(); strings.HasPrefix(msg, "holdings:") {
				t.Fatalf("message %q names the package", msg)
			}
		})
	}
}
