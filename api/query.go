package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Param is a query parameter a route takes.
type Param struct {
	Name string
	// Type is the parameter's type in the OpenAPI document: string,
	// integer or boolean. The handler parses the value.
	Type string
	Doc  string
}

// pageQuery are the paging parameters of every list (paging.go).
var pageQuery = []Param{
	{Name: "page", Type: "integer", Doc: "the page, from 1 (default 1)"},
	{Name: "page_size", Type: "integer", Doc: "results per page, 1 to 100 (default 20)"},
}

// paged returns ps and the paging parameters.
func paged(ps ...Param) []Param { return append(ps, pageQuery...) }

// parseQuery reads the query of a call to rt, the same way for every route,
// before its handler runs: the query must parse, be valid UTF-8, and name
// only parameters of rt.Query; anything else is a 400.
func (rt *Route) parseQuery(r *http.Request) (url.Values, error) {
	if r.URL.RawQuery == "" {
		return nil, nil // reads of a nil url.Values find nothing
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: %v", err)
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return nil, badRequest("query parameter names must be valid UTF-8")
		}
		if !slices.ContainsFunc(rt.Query, func(p Param) bool { return p.Name == k }) {
			return nil, badRequest("unknown query parameter %q (%s)", k, rt.takes())
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, badRequest("query parameter %s must be valid UTF-8", k)
			}
		}
	}
	return q, nil
}

// takes says which query parameters rt takes.
func (rt *Route) takes() string {
	if len(rt.Query) == 0 {
		return "this call takes none"
	}
	names := make([]string, len(rt.Query))
	for i, p := range rt.Query {
		names[i] = p.Name
	}
	return "this call takes: " + strings.Join(names, ", ")
}

// parseTime reads a time of the query (field names it in the refusal).
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("%s must be an RFC 3339 time, got %q", field, v)
	}
	return t.UTC(), nil
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
