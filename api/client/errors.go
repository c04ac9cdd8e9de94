package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/quotaledger/quotaledger/api/wire"
)

// Error is every error answer of the server, in the lineage's cloudFault
// shape {"<kind>": {"message", "code", "details", "data"}}, and the errors
// the client makes of its own (NoUserName, NoUUID, InvalidResponse). Every
// typed error of this package unwraps to it, so that
//
//	var e *client.Error
//	if errors.As(err, &e) { ... e.Status ... }
//
// works whatever the kind.
type Error struct {
	Status  int             // HTTP status (0 for errors the client makes without an answer)
	Kind    string          // cloudFault kind: badRequest, itemNotFound, overLimit, ...
	Message string          // the fault's message
	Details string          // the fault's details
	Data    json.RawMessage // the fault's data, as sent (nil if none)
	// Name is data.name when the server sent one: the lineage's error
	// name (NoCapacityError, NoQuantityError, NoHoldingError).
	Name string
	// RequestID is the X-Request-Id of the answer, for the server's log.
	RequestID string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("quotaledger: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	if e.Kind != "" {
		b.WriteString(e.Kind)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	if e.Details != "" {
		b.WriteString(" (")
		b.WriteString(e.Details)
		b.WriteString(")")
	}
	return b.String()
}

// The typed errors, one per error class of the lineage's client (seed 001)
// and per fault kind the server answers. Each unwraps to its *Error.

// BadRequest is a 400 (badRequest).
type BadRequest struct{ Err *Error }

// Unauthorized is a 401: a missing, unknown or expired token.
type Unauthorized struct{ Err *Error }

// Forbidden is a 403: the token may not make this call.
type Forbidden struct{ Err *Error }

// NotFound is a 404 (itemNotFound). When an issue named a holding that
// does not exist (the lineage's NoHoldingError), Provision is the
// provision the server named.
type NotFound struct {
	Err       *Error
	Provision *Provision
}

// Conflict is a 409: a name already taken, an idempotency key reused with
// another body, a holding in use.
type Conflict struct{ Err *Error }

// QuotaLimit is a 413 overLimit of an issue: a quantity that would exceed
// a holding's capacity (Name "NoCapacityError") or take its usage below
// zero (Name "NoQuantityError"). Provision is the (merged) provision that
// failed, Limit and Usage the holding's as the server reported them.
type QuotaLimit struct {
	Err       *Error
	Provision Provision
	Name      string
	Limit     int64
	Usage     int64
}

// TooManyRequests is a 429: rate limited (logins, resets).
type TooManyRequests struct{ Err *Error }

// ServiceUnavailable is a 503: the server cannot take the call now.
type ServiceUnavailable struct{ Err *Error }

// NoUserName is what the singular uuid -> username lookups return for a
// uuid the server does not know.
type NoUserName struct {
	Err  *Error
	UUID string
}

// NoUUID is what the singular username -> uuid lookups return for a
// username the server does not know.
type NoUUID struct {
	Err      *Error
	Username string
}

// InvalidResponse is an answer that is not the JSON the call expects.
type InvalidResponse struct {
	Err  *Error
	Body []byte // the start of the answer (at most 512 bytes)
}

func (e *BadRequest) Error() string         { return e.Err.Error() }
func (e *BadRequest) Unwrap() error         { return e.Err }
func (e *Unauthorized) Error() string       { return e.Err.Error() }
func (e *Unauthorized) Unwrap() error       { return e.Err }
func (e *Forbidden) Error() string          { return e.Err.Error() }
func (e *Forbidden) Unwrap() error          { return e.Err }
func (e *NotFound) Error() string           { return e.Err.Error() }
func (e *NotFound) Unwrap() error           { return e.Err }
func (e *Conflict) Error() string           { return e.Err.Error() }
func (e *Conflict) Unwrap() error           { return e.Err }
func (e *QuotaLimit) Error() string         { return e.Err.Error() }
func (e *QuotaLimit) Unwrap() error         { return e.Err }
func (e *TooManyRequests) Error() string    { return e.Err.Error() }
func (e *TooManyRequests) Unwrap() error    { return e.Err }
func (e *ServiceUnavailable) Error() string { return e.Err.Error() }
func (e *ServiceUnavailable) Unwrap() error { return e.Err }
func (e *NoUserName) Error() string         { return e.Err.Error() }
func (e *NoUserName) Unwrap() error         { return e.Err }
func (e *NoUUID) Error() string             { return e.Err.Error() }
func (e *NoUUID) Unwrap() error             { return e.Err }
func (e *InvalidResponse) Error() string    { return e.Err.Error() }
func (e *InvalidResponse) Unwrap() error    { return e.Err }

// StatusOf returns the HTTP status of err if it is (or wraps) an *Error,
// else 0.
func StatusOf(err error) int {
	for err != nil {
		if e, ok := err.(*Error); ok {
			return e.Status
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return 0
		}
		err = u.Unwrap()
	}
	return 0
}

// parseFault reads a cloudFault {"<kind>": {...}}; ok is false if raw is
// not one.
func parseFault(raw []byte) (kind string, f wire.Fault, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) != 1 {
		return "", f, false
	}
	for k, v := range m {
		if json.Unmarshal(v, &f) != nil {
			return "", f, false
		}
		kind = k
	}
	return kind, f, true
}

// faultError makes the *Error of a cloudFault (status from the answer, or
// the fault's code when status is 0).
func faultError(status int, kind string, f wire.Fault) *Error {
	if status == 0 {
		status = f.Code
	}
	e := &Error{Status: status, Kind: kind, Message: f.Message, Details: f.Details}
	if len(f.Data) > 0 && string(f.Data) != "null" {
		e.Data = f.Data
		var d wire.FaultData
		if json.Unmarshal(f.Data, &d) == nil {
			e.Name = d.Name
		}
	}
	return e
}

// typed wraps e in the typed error of its status.
func typed(e *Error) error {
	switch e.Status {
	case http.StatusBadRequest:
		return &BadRequest{e}
	case http.StatusUnauthorized:
		return &Unauthorized{e}
	case http.StatusForbidden:
		return &Forbidden{e}
	case http.StatusNotFound:
		nf := &NotFound{Err: e}
		if e.Data != nil {
			var d wire.FaultData
			if json.Unmarshal(e.Data, &d) == nil {
				nf.Provision = d.Provision
			}
		}
		return nf
	case http.StatusConflict:
		return &Conflict{e}
	case http.StatusRequestEntityTooLarge:
		if e.Data != nil {
			var d wire.FaultData
			if json.Unmarshal(e.Data, &d) == nil && d.Provision != nil {
				return &QuotaLimit{Err: e, Provision: *d.Provision, Name: d.Name, Limit: d.Limit, Usage: d.Usage}
			}
		}
		// An overLimit without provision data: a body too large.
		return e
	case http.StatusTooManyRequests:
		return &TooManyRequests{e}
	case http.StatusServiceUnavailable:
		return &ServiceUnavailable{e}
	}
	return e
}

// answerError makes the error of a non-2xx answer.
func answerError(status int, raw []byte, requestID string) error {
	kind, f, ok := parseFault(raw)
	var e *Error
	if ok {
		e = faultError(status, kind, f)
	} else {
		e = &Error{Status: status, Message: strings.TrimSpace(string(snippet(raw)))}
	}
	if e.Message == "" { // a fault without one, an empty answer: the status says it
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = "HTTP status " + strconv.Itoa(status)
		}
	}
	e.RequestID = requestID
	return typed(e)
}

func invalidResponse(status int, raw []byte, requestID string, why error) error {
	return &InvalidResponse{
		Err: &Error{Status: status, Message: "the answer is not valid JSON: " + why.Error(),
			Details: string(snippet(raw)), RequestID: requestID},
		Body: snippet(raw),
	}
}

func snippet(raw []byte) []byte {
	if len(raw) > 512 {
		return raw[:512]
	}
	return raw
}
