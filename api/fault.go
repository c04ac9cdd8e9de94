package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

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
	// RetryAfter, in seconds, is sent as the Retry-After header when set:
	// the call may be retried then (a cluster's leadership is changing).
	RetryAfter int `json:"-"`
}

func (f *Fault) Error() string { return f.Kind + ": " + f.Message }

// faultRow is what an error of one failure code is answered with.
type faultRow struct {
	status int
	kind   string // the cloudFault kind
}

// faultTable is the one table from an error's failure code to its answer.
// Every failure.Code has a row (TestFaultTable).
var faultTable = map[failure.Code]faultRow{
	failure.Invalid:         {http.StatusBadRequest, "badRequest"},
	failure.Unauthorized:    {http.StatusUnauthorized, "unauthorized"},
	failure.Forbidden:       {http.StatusForbidden, "forbidden"},
	failure.NotFound:        {http.StatusNotFound, "itemNotFound"},
	failure.Conflict:        {http.StatusConflict, "conflict"},
	failure.OverLimit:       {http.StatusRequestEntityTooLarge, "overLimit"},
	failure.TooManyRequests: {http.StatusTooManyRequests, "tooManyRequests"},
	failure.Unavailable:     {http.StatusServiceUnavailable, "serviceUnavailable"},
	failure.Internal:        {http.StatusInternalServerError, "internalServerError"},
}

// codeOfStatus is faultTable read backwards, for the faults the HTTP layer
// makes from a status (newFault) and for the error metric; a 405 is a bad
// request too.
var codeOfStatus = func() map[int]failure.Code {
	m := map[int]failure.Code{http.StatusMethodNotAllowed: failure.Invalid}
	for code, row := range faultTable {
		m[row.status] = code
	}
	return m
}()

// faultKinds is the cloudFault kind of each status of codeOfStatus.
var faultKinds = func() map[int]string {
	m := make(map[int]string, len(codeOfStatus))
	for status, code := range codeOfStatus {
		m[status] = faultTable[code].kind
	}
	return m
}()

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

// faultOf maps every error of the application to its answer: a *Fault as
// it is, any other error by its failure code through faultTable, with the
// data of the holdings errors that carry some. The message is the error's,
// but for an internal error (no code, or Internal), whose details go to the
// log, not to the caller.
func faultOf(err error) *Fault {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	code := failure.CodeOf(err)
	row, ok := faultTable[code]
	if !ok { // a FailureCode outside the list: a bug, answered as one
		code, row = failure.Internal, faultTable[failure.Internal]
	}
	msg := err.Error()
	if code == failure.Internal {
		msg = "internal error"
	}
	f = &Fault{Kind: row.kind, Code: row.status, Message: msg, RetryAfter: leaderRetryAfter(err)}
	var nh *holdings.NoHoldingError
	if q, ok := holdings.AsQuotaLimit(err); ok {
		p, limit, usage := q.QuotaLimit()
		f.Data = map[string]any{"provision": provisionData(p), "name": q.Name(), "limit": limit, "usage": usage}
	} else if errors.As(err, &nh) {
		f.Data = map[string]any{"provision": provisionData(nh.Provision), "name": nh.Name()}
	}
	return f
}

// retryAfterLeader is the Retry-After of a call that met a change of a
// cluster's leader: a new one leads within the lease's few seconds, and
// the client's retry finds it (forwarded by any node).
const retryAfterLeader = 1

// leaderRetryAfter is the Retry-After of the errors that say a call may succeed
// if retried in a moment: this node does not lead (ErrNotLeader), stopped
// leading while the call was in flight (ErrDeposed: its outcome is
// unknown, retry with the same idempotency key) or is finishing its term
// (ErrBusy). 0: none.
func leaderRetryAfter(err error) int {
	if errors.Is(err, ledger.ErrNotLeader) || errors.Is(err, ledger.ErrDeposed) || errors.Is(err, ledger.ErrBusy) {
		return retryAfterLeader
	}
	return 0
}

// writeFault writes f as the answer.
func writeFault(w http.ResponseWriter, f *Fault) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(f.Code)
	_, _ = w.Write(faultBody(f))
}

// faultBody is the body of f's answer, on either wire: the cloudFault
// {"<kind>": {"code", "message", "details", "data"}}.
func faultBody(f *Fault) []byte {
	body, _ := json.Marshal(map[string]*Fault{f.Kind: f})
	return body
}
