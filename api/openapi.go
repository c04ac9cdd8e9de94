package api

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
)

// openAPIDoc is the OpenAPI 3 document of every route, served at
// /openapi.json. It is generated from the routing table and the types of
// package wire by `go test ./api -run TestOpenAPI -update` and committed
// (nothing is reflected upon per request); TestOpenAPI fails when the
// routes or the types and the document disagree.
//
//go:embed openapi.json
var openAPIDoc []byte

var pathParam = regexp.MustCompile(`\{([a-zA-Z_]+)\}`)

// openAPI builds the document from the routing table: every route's path
// and query parameters with their types, its request body, and its answers,
// whose bodies are schemas of components/schemas made from the wire types.
func openAPI(routes []Route) ([]byte, error) {
	sc := &schemas{defs: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		ops := paths[rt.Path]
		if ops == nil {
			ops = map[string]any{}
			paths[rt.Path] = ops
		}
		responses := map[string]any{"default": map[string]any{"$ref": "#/components/responses/Fault"}}
		for _, a := range rt.Answers {
			r := map[string]any{"description": http.StatusText(a.Status)}
			switch {
			case a.Type != "":
				r["content"] = map[string]any{a.Type: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
			case a.Body != nil:
				r["content"] = map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(a.Body))}}
			}
			responses[strconv.Itoa(a.Status)] = r
		}
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": strings.ToLower(rt.Method) + opName(rt.Path),
			"responses":   responses,
		}
		switch rt.Access {
		case User:
			op["security"] = []any{map[string]any{"authToken": []any{}}, map[string]any{"bearer": []any{}}}
			op["x-access"] = "user"
		case Service:
			op["security"] = []any{map[string]any{"authToken": []any{}}, map[string]any{"bearer": []any{}}}
			op["x-access"] = "service"
		case Any:
			op["security"] = []any{map[string]any{"authToken": []any{}}, map[string]any{"bearer": []any{}}}
			op["x-access"] = "any token"
		default:
			op["security"] = []any{}
			op["x-access"] = "public"
		}
		if rt.Action != "" {
			op["x-action"] = string(rt.Action)
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
				"schema": map[string]any{"type": "string"}})
		}
		for _, p := range rt.Query {
			q := map[string]any{"name": p.Name, "in": "query", "required": false, "schema": map[string]any{"type": p.Type}}
			if p.Doc != "" {
				q["description"] = p.Doc
			}
			params = append(params, q)
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Body != nil {
			ct := "application/json"
			if rt.Form {
				ct = "application/x-www-form-urlencoded"
			}
			op["requestBody"] = map[string]any{"required": !rt.BodyOptional, "content": map[string]any{
				ct: map[string]any{"schema": sc.of(reflect.TypeOf(rt.Body))}}}
		}
		ops[strings.ToLower(rt.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "quotaledger", "version": "1",
			"description": "Quota and commission ledger, wire-compatible with Synnefo Astakos. Errors use the cloudFault shape."},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"authToken": map[string]any{"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
				"bearer":    map[string]any{"type": "http", "scheme": "bearer"},
			},
			"responses": map[string]any{"Fault": map[string]any{
				"description": `{"<kind>": {"message", "code", "details", "data"}}`,
				"content":     map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(wire.Faults{}))}},
			}},
			"schemas": sc.defs,
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// schemas makes the JSON schemas of the wire types, each named type of
// package wire once, under components/schemas.
type schemas struct {
	defs map[string]any
}

var wirePkg = reflect.TypeOf(wire.Time{}).PkgPath()

// The wire types that render themselves, by what they render.
var customSchemas = map[reflect.Type]map[string]any{
	reflect.TypeOf(wire.Time{}):         {"type": "string", "format": "date-time", "nullable": true, "description": "RFC 3339 in UTC; null: unset"},
	reflect.TypeOf(wire.OptTime{}):      {"type": "string", "format": "date-time", "nullable": true, "description": "RFC 3339; null: none (never); left out: unchanged"},
	reflect.TypeOf(wire.Millis{}):       {"type": "integer", "format": "int64", "nullable": true, "description": "milliseconds since the epoch; null: unset"},
	reflect.TypeOf(wire.NullString("")): {"type": "string", "nullable": true, "description": "null when empty"},
	reflect.TypeOf(time.Time{}):         {"type": "string", "format": "date-time"},
	reflect.TypeOf(json.RawMessage{}):   {"description": "any JSON value"},
	reflect.TypeOf(wire.FailedSerial{}): {"type": "array", "minItems": 2, "maxItems": 2,
		"description": "[serial, {\"<kind>\": fault}]",
		"items":       map[string]any{"oneOf": []any{map[string]any{"type": "integer", "format": "int64"}, map[string]any{"$ref": "#/components/schemas/Faults"}}}},
}

// of returns the schema of t: a reference for a named type of package
// wire, inline otherwise.
func (sc *schemas) of(t reflect.Type) map[string]any {
	if s, ok := customSchemas[t]; ok {
		if t == reflect.TypeOf(wire.FailedSerial{}) {
			sc.of(reflect.TypeOf(wire.Faults{}))
		}
		return s
	}
	if t.Kind() == reflect.Pointer {
		s := sc.of(t.Elem())
		if _, ref := s["$ref"]; ref {
			return map[string]any{"allOf": []any{s}, "nullable": true}
		}
		n := map[string]any{"nullable": true}
		for k, v := range s {
			n[k] = v
		}
		return n
	}
	if t.PkgPath() == wirePkg && t.Name() != "" {
		name := schemaName(t)
		if _, done := sc.defs[name]; !done {
			sc.defs[name] = nil // taken, against recursion
			sc.defs[name] = sc.inline(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return sc.inline(t)
}

// schemaName is the name of a wire type under components/schemas: its
// Go name, a generic's argument appended (Page[User] is PageUser).
func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 {
		arg := name[i+1 : len(name)-1]
		name = name[:i] + arg[strings.LastIndexByte(arg, '.')+1:]
	}
	return name
}

func (sc *schemas) inline(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32, reflect.Uint:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": sc.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": sc.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{"description": "any JSON value"}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		sc.fields(t, props, &required)
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			sort.Strings(required)
			s["required"] = required
		}
		return s
	}
	panic("api: no schema for " + t.String())
}

// fields adds the JSON fields of struct t to props (those of embedded
// structs too); a field that is always sent (no omitempty or omitzero) is
// required.
func (sc *schemas) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			sc.fields(f.Type, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = sc.of(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			*required = append(*required, name)
		}
	}
}

func opName(path string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '.' || r == '_' || r == '{' || r == '}' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// docRoutes lists "METHOD path" of every operation in a document.
func docRoutes(doc []byte) ([]string, error) {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	var out []string
	for p, ops := range d.Paths {
		for m := range ops {
			out = append(out, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// serveOpenAPI answers /openapi.json.
func (s *Server) serveOpenAPI(c *call) error {
	c.w.Header().Set("Content-Type", contentType)
	_, err := c.w.Write(openAPIDoc)
	return err
}
