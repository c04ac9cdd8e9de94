package api

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"sort"
	"testing"
)

var update = flag.Bool("update", false, "rewrite api/openapi.json from the routing table (TestOpenAPI) and the golden files of testdata/format (TestFeedbackFormat)")

// TestOpenAPI walks the router and the served document: every route must be
// in the document and every operation of the document must be a route.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	var routes []string
	for _, rt := range e.api.Routes() {
		routes = append(routes, rt.Method+" "+rt.Path)
	}
	sort.Strings(routes)
	if *update {
		doc, err := openAPI(e.api.Routes())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("openapi.json", append(doc, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	st, served := e.doRaw("GET", "/openapi.json", "", nil)
	if st != 200 || !bytes.Equal(served, openAPIDoc) {
		t.Fatalf("GET /openapi.json: %d", st)
	}
	documented, err := docRoutes(served)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json (go test ./api -run TestOpenAPI -update)", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.json documents %s, which no route serves", d)
		}
	}
	want, err := openAPI(e.api.Routes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(served), want) {
		t.Errorf("openapi.json is stale (routes, parameters or wire types changed): go test ./api -run TestOpenAPI -update")
	}
}
