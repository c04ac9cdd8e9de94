package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// patternMatches reports whether a path of the table (with {wildcards})
// matches path, segment by segment.
func patternMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// TestMethodNotAllowed walks the routing table: a method no route takes on
// a path some route takes is a 405 whose Allow lists exactly the methods
// of the routes that take the path (and HEAD with GET), in a cloudFault.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	fill := strings.NewReplacer("{uuid}", "u1", "{id}", "i1", "{name}", "n1", "{serial}", "1", "{token}", "t1")
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	tested := 0
	seen := map[string]bool{}
	for _, rt := range e.api.Routes() {
		path := fill.Replace(rt.Path)
		if seen[path] {
			continue
		}
		seen[path] = true
		var want []string
		for _, other := range e.api.Routes() {
			if patternMatches(other.Path, path) && !slices.Contains(want, other.Method) {
				want = append(want, other.Method)
				if other.Method == "GET" {
					want = append(want, "HEAD")
				}
			}
		}
		slices.Sort(want)
		for _, m := range methods {
			if slices.Contains(want, m) {
				continue
			}
			tested++
			req, err := http.NewRequest(m, e.srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Auth-Token", e.admin)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != strings.Join(want, ", ") {
				t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", m, path, resp.StatusCode, resp.Header.Get("Allow"), strings.Join(want, ", "))
			}
		}
	}
	if tested < 50 {
		t.Fatalf("only %d wrong methods tried", tested)
	}
	// The body is a cloudFault; an unknown path is still a 404.
	st, out := e.do("DELETE", "/account/v1.0/quotas", e.user, nil)
	if f, _ := out["badRequest"].(map[string]any); st != 405 || f["code"] != float64(405) || !strings.Contains(f["message"].(string), "GET, HEAD") {
		t.Fatalf("DELETE quotas: %d %v", st, out)
	}
	if st, out := e.do("GET", "/account/v1.0/no/such/route", e.user, nil); st != 404 || out["itemNotFound"] == nil {
		t.Fatalf("an unknown path: %d %v", st, out)
	}
}

// TestUnknownQueryParameter walks the routing table: every route refuses a
// query parameter it does not declare, the same way, before its handler
// runs, and takes those it declares.
func TestUnknownQueryParameter(t *testing.T) {
	e := newEnv(t)
	fill := strings.NewReplacer("{uuid}", e.uuid(), "{id}", "i1", "{name}", "cyclades", "{serial}", "1", "{token}", e.user)
	before := e.restState()
	for _, rt := range e.api.Routes() {
		token := e.admin
		if rt.Access == Service {
			token = e.service
		}
		path := fill.Replace(rt.Path)
		st, out := e.do(rt.Method, path+"?zzz=1", token, nil)
		f, _ := out["badRequest"].(map[string]any)
		want := `unknown query parameter "zzz" (` + rt.takes() + ")"
		if st != 400 || f == nil || f["message"] != want {
			t.Errorf("%s %s?zzz=1: %d %v, want 400 %q", rt.Method, rt.Path, st, out, want)
		}
		for _, p := range rt.Query {
			if st, out := e.do(rt.Method, path+"?"+p.Name+"=", token, nil); st == 400 && strings.Contains(jsonOf(t, out), "unknown query parameter") {
				t.Errorf("%s %s refuses its own parameter %s: %v", rt.Method, rt.Path, p.Name, out)
			}
		}
	}
	if after := e.restState(); after != before {
		t.Fatalf("refused calls changed the state:\n%s\n%s", before, after)
	}
}

// TestPathNotUTF8 walks the routing table: a path wildcard that is not
// valid UTF-8 is refused the same way on every route, before its handler
// runs.
func TestPathNotUTF8(t *testing.T) {
	e := newEnv(t)
	n := 0
	for _, rt := range e.api.Routes() {
		m := pathParam.FindStringSubmatch(rt.Path)
		if m == nil {
			continue
		}
		n++
		token := e.admin
		if rt.Access == Service {
			token = e.service
		}
		path := strings.Replace(rt.Path, m[0], "%ff", 1)
		path = pathParam.ReplaceAllString(path, "x")
		st, out := e.do(rt.Method, path, token, nil)
		f, _ := out["badRequest"].(map[string]any)
		if want := m[1] + " in the path must be valid UTF-8"; st != 400 || f == nil || f["message"] != want {
			t.Errorf("%s %s: %d %v, want 400 %q", rt.Method, path, st, out, want)
		}
	}
	if n < 30 {
		t.Fatalf("only %d routes with wildcards", n)
	}
}
