package api

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPISchemas checks the served document against the routing
// table: every route's parameters (path and query), request body and
// answers are there, and every schema reference resolves.
func TestOpenAPISchemas(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	type param struct {
		Name, In string
		Schema   struct{ Type string }
	}
	for _, rt := range e.api.Routes() {
		raw, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s %s: not in the document", rt.Method, rt.Path)
			continue
		}
		var op struct {
			Parameters  []param
			RequestBody *struct {
				Required bool
				Content  map[string]json.RawMessage
			}
			Responses map[string]struct {
				Content map[string]json.RawMessage
			}
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		has := func(name, in, typ string) bool {
			for _, p := range op.Parameters {
				if p.Name == name && p.In == in && p.Schema.Type == typ {
					return true
				}
			}
			return false
		}
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			if !has(m[1], "path", "string") {
				t.Errorf("%s %s: path parameter %s is not documented", rt.Method, rt.Path, m[1])
			}
		}
		for _, q := range rt.Query {
			if !has(q.Name, "query", q.Type) {
				t.Errorf("%s %s: query parameter %s (%s) is not documented", rt.Method, rt.Path, q.Name, q.Type)
			}
		}
		if len(op.Parameters) != len(rt.Query)+len(pathParam.FindAllStringSubmatch(rt.Path, -1)) {
			t.Errorf("%s %s: %d parameters documented", rt.Method, rt.Path, len(op.Parameters))
		}
		switch {
		case rt.Body == nil && op.RequestBody != nil:
			t.Errorf("%s %s: a request body is documented, the route takes none", rt.Method, rt.Path)
		case rt.Body != nil && (op.RequestBody == nil || op.RequestBody.Required == rt.BodyOptional || len(op.RequestBody.Content) != 1):
			t.Errorf("%s %s: the request body is not documented as the route takes it", rt.Method, rt.Path)
		}
		for _, a := range rt.Answers {
			r, ok := op.Responses[strconv.Itoa(a.Status)]
			if !ok || (a.Body != nil || a.Type != "") != (len(r.Content) == 1) {
				t.Errorf("%s %s: answer %d is not documented", rt.Method, rt.Path, a.Status)
			}
		}
		if len(op.Responses) != len(rt.Answers)+1 { // and the default fault
			t.Errorf("%s %s: %d responses documented, the route has %d answers", rt.Method, rt.Path, len(op.Responses), len(rt.Answers))
		}
	}
	// Every reference resolves.
	var refs func(v any)
	refs = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				name, isSchema := strings.CutPrefix(r, "#/components/schemas/")
				if _, found := doc.Components.Schemas[name]; isSchema && !found {
					t.Errorf("reference %s resolves to nothing", r)
				}
			}
			for _, e := range x {
				refs(e)
			}
		case []any:
			for _, e := range x {
				refs(e)
			}
		}
	}
	var all any
	if err := json.Unmarshal(openAPIDoc, &all); err != nil {
		t.Fatal(err)
	}
	refs(all)
	if len(doc.Components.Schemas) < 50 {
		t.Errorf("only %d schemas", len(doc.Components.Schemas))
	}
}
