// Package wire defines the JSON messages of quotaledger's HTTP API: the body
// of every request and answer of every route, as the server (package api)
// builds and reads them and the Go client (package api/client) sends and
// decodes them, and as the OpenAPI document describes them. It imports only
// the standard library.
//
// Where the lineage (Synnefo Astakos) fixed a shape, the types keep it to
// the letter: the field names, which keys are always present, and which are
// null rather than absent (a field without omitempty is always sent; a time
// or a unit that is unset is null). Requests whose fields the server must
// tell apart from their zero value (an update, a limit of 0, a required
// capacity) have pointer fields.
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Time is a time of a message: RFC 3339 in UTC, null when unset (the zero
// Time). It reads what older servers sent as well: RFC 3339 without a zone
// or with a space, milliseconds since the epoch, null or "".
type Time struct{ time.Time }

// TimeOf returns t as a Time.
func TimeOf(t time.Time) Time { return Time{t} }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(time.RFC3339Nano)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	v, err := parseTime(b)
	t.Time = v
	return err
}

// Millis is a time as the 2013 clients read it: milliseconds since the
// epoch, null when unset. It reads what Time reads.
type Millis struct{ time.Time }

// MillisOf returns t as a Millis.
func MillisOf(t time.Time) Millis { return Millis{t} }

// MarshalJSON implements json.Marshaler.
func (t Millis) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, t.UnixMilli(), 10), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Millis) UnmarshalJSON(b []byte) error {
	v, err := parseTime(b)
	t.Time = v
	return err
}

func parseTime(b []byte) (time.Time, error) {
	s := string(bytes.TrimSpace(b))
	if s == "null" || s == `""` {
		return time.Time{}, nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return time.Time{}, err
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05.999999"} {
			if v, err := time.Parse(layout, str); err == nil {
				return v, nil
			}
		}
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339", str)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %s is neither a string nor a number", s)
	}
	return time.UnixMilli(int64(f)).UTC(), nil
}

// OptTime is a time a request may leave out, set to null (no time: never
// expires) or set: the three differ where an update keeps what is left out.
// The zero OptTime is left out (sent with omitzero).
type OptTime struct {
	Set  bool      // the field was there
	Time time.Time // zero for null
}

// IsZero reports whether the field is left out (for omitzero).
func (t OptTime) IsZero() bool { return !t.Set }

// MarshalJSON implements json.Marshaler.
func (t OptTime) MarshalJSON() ([]byte, error) { return Time{t.Time}.MarshalJSON() }

// UnmarshalJSON implements json.Unmarshaler: null, or an RFC 3339 time.
func (t *OptTime) UnmarshalJSON(b []byte) error {
	*t = OptTime{Set: true}
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an RFC 3339 time or null is expected")
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	t.Time = v.UTC()
	return nil
}

// NullString is a string that is null when empty (a resource's unit).
type NullString string

// MarshalJSON implements json.Marshaler.
func (s NullString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *NullString) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*s = ""
		return nil
	}
	var v string
	err := json.Unmarshal(b, &v)
	*s = NullString(v)
	return err
}

// Page is one page of a list: the count of every match, the URLs of the
// next and previous pages (null at the ends), and the results. Every list
// of the API pages by page and page_size (docs/api.md).
type Page[T any] struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []T     `json:"results"`
}

// Detail is the answer of a call that only says it was done.
type Detail struct {
	Detail string `json:"detail"`
}

// Fault is the inside of an error answer, in the lineage's cloudFault
// shape {"<kind>": {"message", "code", "details", "data"}}: Faults.
type Fault struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Details string `json:"details"`
	// Data is what the fault says as data: for an overLimit of an issue
	// {provision, name, limit, usage}, for a missing holding {provision,
	// name}.
	Data json.RawMessage `json:"data,omitempty"`
}

// Faults is an error answer: its one key is the fault's kind (badRequest,
// itemNotFound, overLimit, ...).
type Faults map[string]Fault

// FaultData is the data of the faults of an issue: the (merged) provision
// that failed and the lineage's error name (NoCapacityError,
// NoQuantityError: overLimit, with the holding's limit and usage;
// NoHoldingError: itemNotFound).
type FaultData struct {
	Provision *Provision `json:"provision"`
	Name      string     `json:"name"`
	Limit     int64      `json:"limit,omitempty"`
	Usage     int64      `json:"usage,omitempty"`
}

// Health is the answer of /healthz.
type Health struct {
	Status string `json:"status"` // ok, storage failed
	Error  string `json:"error,omitempty"`
}

// Ready is the answer of /readyz: every check by name, "ok" or what
// failed.
type Ready struct {
	Status string            `json:"status"` // ready, not ready
	Checks map[string]string `json:"checks"`
}
