package api

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// openAPIDoc is the OpenAPI 3 document of every route, served at
// /openapi.json. It is generated from the routing table by
// `go test ./api -run TestOpenAPI -update` and committed; TestOpenAPI fails
// when the router and the document disagree.
//
//go:embed openapi.json
var openAPIDoc []byte

var pathParam = regexp.MustCompile(`\{([a-zA-Z_]+)\}`)

// openAPI builds the document from the routing table.
func openAPI(routes []Route) ([]byte, error) {
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		ops := paths[rt.Path]
		if ops == nil {
			ops = map[string]any{}
			paths[rt.Path] = ops
		}
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": strings.ToLower(rt.Method) + opName(rt.Path),
			"responses": map[string]any{
				"2XX":     map[string]any{"description": "success (JSON)"},
				"default": map[string]any{"$ref": "#/components/responses/Fault"},
			},
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
		if params != nil {
			op["parameters"] = params
		}
		if rt.Method == http.MethodPost || rt.Method == http.MethodPut || rt.Method == http.MethodPatch ||
			rt.Method == http.MethodDelete {
			op["requestBody"] = map[string]any{"required": false, "content": map[string]any{
				"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
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
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
					"type": "object", "additionalProperties": map[string]any{"type": "object", "properties": map[string]any{
						"message": map[string]any{"type": "string"}, "code": map[string]any{"type": "integer"},
						"details": map[string]any{"type": "string"}, "data": map[string]any{"type": "object"}}}}}},
			}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
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
