// Package failure is the application's one error type: an error that says,
// besides its message, what kind of failure it is (a Code from a short
// list). The domain packages (holdings, commission, ledger, identity) return
// these, and the HTTP layer maps each code to its status and cloudFault kind
// in one table (api/fault.go), so that no layer guesses from a sentinel's
// package or parses a message.
//
// A message says what is wrong to whoever called ("username must be an
// email address"), with no package prefix: the code carries the kind, and a
// log line may add context. Errors that carry no code (a Pebble I/O error, a
// broken invariant) are Internal, and the API does not show their message.
//
// It imports only the standard library, so the pure packages may use it.
package failure

import (
	"errors"
	"fmt"
)

// Code is the kind of a failure. Its value is a short snake_case word, fit
// for a metric label.
type Code string

// The codes. Keep the list short: a code is a kind of answer a caller acts
// on, not a condition (conditions are sentinels that carry a code, such as
// ledger.ErrHoldingInUse).
const (
	Invalid         Code = "invalid"           // the request is malformed or breaks a rule of its own
	NotFound        Code = "not_found"         // what the request names does not exist (for this caller)
	Conflict        Code = "conflict"          // the request is well formed but the state refuses it
	Unauthorized    Code = "unauthorized"      // no valid credentials
	Forbidden       Code = "forbidden"         // valid credentials, not allowed
	OverLimit       Code = "over_limit"        // a quota or a size limit would be exceeded
	TooManyRequests Code = "too_many_requests" // rate limited: retry later
	Unavailable     Code = "unavailable"       // the service cannot take it now (closed, disk full, storage failed)
	Internal        Code = "internal"          // a bug or an I/O failure: nothing the caller did
)

// Codes lists every code, in the order above.
var Codes = []Code{Invalid, NotFound, Conflict, Unauthorized, Forbidden, OverLimit, TooManyRequests, Unavailable, Internal}

// Coder is an error that knows its code. *Error is one; a domain error with
// data of its own (holdings.NoCapacityError) implements FailureCode to be
// another, so that CodeOf finds its code through any wrapping.
type Coder interface {
	error
	FailureCode() Code
}

// Error is a failure with a code and the message a caller sees. It may wrap
// another error (a sentinel it is an instance of, or a cause), reachable
// with errors.Is and errors.As; its message is Message alone.
type Error struct {
	Code    Code
	Message string
	wrapped error
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// FailureCode returns e.Code.
func (e *Error) FailureCode() Code { return e.Code }

// Unwrap returns the error e wraps, if any.
func (e *Error) Unwrap() error { return e.wrapped }

// New returns a failure with a fixed message: the way to declare a sentinel,
//
//	var ErrHoldingInUse = failure.New(failure.Conflict, "holding has pending commissions")
//
// Each call returns a distinct error, as errors.New does.
func New(code Code, message string) error {
	return &Error{Code: code, Message: message}
}

// Errorf returns a failure of code with the message fmt.Sprintf(format,
// args...). As with fmt.Errorf, a %w verb wraps its operand: the new error
// keeps code as its own, and errors.Is and errors.As reach the operand.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	e := &Error{Code: code, Message: err.Error()}
	switch err.(type) {
	case interface{ Unwrap() error }, interface{ Unwrap() []error }:
		e.wrapped = err
	}
	return e
}

// Mark returns an instance of sentinel with a message of its own: errors.Is(err,
// sentinel) holds and the code is sentinel's, but the message is
// fmt.Sprintf(format, args...) alone (sentinel's is not repeated):
//
//	failure.Mark(ledger.ErrNotFound, "no pending commission %d", serial)
func Mark(sentinel error, format string, args ...any) error {
	return &Error{Code: CodeOf(sentinel), Message: fmt.Sprintf(format, args...), wrapped: sentinel}
}

// CodeOf returns the code of the first Coder in err's chain (the outermost
// wins), Internal if there is none, and "" for a nil error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var c Coder
	if errors.As(err, &c) {
		return c.FailureCode()
	}
	return Internal
}
