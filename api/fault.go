package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// Fault is an error answer in the lineage's cloudFault shape:
//
//	{"<kind>": {"message": "...", "code": N, "details": "...", "data": {...}}}
type Fault struct {
	Kind    string `json:"-"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
	Data    any    `json:"data,omitempty"`
}

func (f *Fault) Error() string { return f.Kind + ": " + f.Message }

// The fault kinds and their status codes.
var faultKinds = map[int]string{
	http.StatusBadRequest:            "badRequest",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "itemNotFound",
	http.StatusMethodNotAllowed:      "badRequest",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "overLimit",
	http.StatusTooManyRequests:       "tooManyRequests",
	http.StatusInternalServerError:   "internalServerError",
	http.StatusServiceUnavailable:    "serviceUnavailable",
}

// newFault makes a fault of the kind that goes with code.
func newFault(code int, message string) *Fault {
	return &Fault{Kind: faultKinds[code], Code: code, Message: message}
}

// provisionData is a provision as the lineage's fault data shows it.
func provisionData(p holdings.Provision) map[string]any {
	return map[string]any{
		"holder": p.Key.Holder, "source": p.Key.Source.Ptr(), "resource": p.Key.Resource, "quantity": p.Quantity,
	}
}

// faultOf maps every error of the application to its answer: the one table
// from error to status and cloudFault kind.
func faultOf(err error) *Fault {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	if q, ok := holdings.AsQuotaLimit(err); ok {
		p, limit, usage := q.QuotaLimit()
		f := newFault(http.StatusRequestEntityTooLarge, err.Error())
		f.Data = map[string]any{"provision": provisionData(p), "name": q.Name(), "limit": limit, "usage": usage}
		return f
	}
	var nh *holdings.NoHoldingError
	if errors.As(err, &nh) {
		f := newFault(http.StatusNotFound, err.Error())
		f.Data = map[string]any{"provision": provisionData(nh.Provision), "name": nh.Name()}
		return f
	}
	code := http.StatusInternalServerError
	switch {
	case failure.CodeOf(err) == failure.Invalid, errors.Is(err, holdings.ErrOverflow),
		errors.Is(err, holdings.ErrNegativeLimit):
		code = http.StatusBadRequest
	case errors.Is(err, ledger.ErrNotFound), failure.CodeOf(err) == failure.NotFound:
		code = http.StatusNotFound
	case errors.Is(err, ledger.ErrIdempotencyConflict), errors.Is(err, ledger.ErrHoldingInUse),
		failure.CodeOf(err) == failure.Conflict:
		code = http.StatusConflict
	case failure.CodeOf(err) == failure.Unauthorized:
		code = http.StatusUnauthorized
	case failure.CodeOf(err) == failure.Forbidden:
		code = http.StatusForbidden
	case errors.Is(err, ledger.ErrNoSpace), errors.Is(err, ledger.ErrClosed), errors.Is(err, ledger.ErrFailed):
		code = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "internal error" // details go to the log, not to the caller
	}
	return newFault(code, msg)
}

// writeFault writes f as the answer.
func writeFault(w http.ResponseWriter, f *Fault) {
	body, _ := json.Marshal(map[string]*Fault{f.Kind: f})
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(f.Code)
	_, _ = w.Write(body)
}
