package api

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// query returns the query, refusing one that is not valid UTF-8 or
// names a parameter the route does not take.
func (c *call) query(allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: %v", err)
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return nil, badRequest("query parameter names must be valid UTF-8")
		}
		if !slices.Contains(allowed, k) {
			return nil, badRequest("unknown query parameter %q (this call takes: %s)", k, strings.Join(allowed, ", "))
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, badRequest("query parameter %s must be valid UTF-8", k)
			}
		}
	}
	return q, nil
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("%s must be an RFC 3339 time, got %q", field, v)
	}
	return t.UTC(), nil
}

// optTime decodes an optional time field: absent (nil) is (nil, nil),
// null is the zero time, a string is an RFC 3339 time.
func optTime(field string, raw json.RawMessage) (*time.Time, error) {
	if raw == nil {
		return nil, nil
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, badRequest("%s must be an RFC 3339 time or null", field)
	}
	if s == nil {
		return &time.Time{}, nil
	}
	t, err := parseTime(field, *s)
	return &t, err
}

// listParam splits the values of a list query parameter: comma-separated,
// and the parameter may be repeated. Every route reads lists this way:
// items are trimmed of spaces (?user=a, b is a and b), and an empty item is
// dropped unless keepEmpty (the holdings' source filter, where it names the
// empty-string source).
func listParam(q url.Values, name string, keepEmpty bool) []string {
	var out []string
	for _, v := range q[name] {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" || keepEmpty {
				out = append(out, item)
			}
		}
	}
	return out
}
