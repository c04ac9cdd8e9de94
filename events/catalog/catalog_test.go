package catalog_test

import (
	"errors"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/events/catalog"
)

// TestAll checks the catalog against itself: every type constant of the
// package is in All once, and an entry has a payload type exactly when it
// is not one of the ledger's own events.
func TestAll(t *testing.T) {
	consts := typeConstants(t)
	if len(consts) != len(catalog.All) {
		t.Errorf("%d type constants in catalog.go, %d entries in All", len(consts), len(catalog.All))
	}
	seen := map[string]bool{}
	for _, e := range catalog.All {
		if seen[e.Type] {
			t.Errorf("%s is in All twice", e.Type)
		}
		seen[e.Type] = true
		if got, ok := catalog.Lookup(e.Type); !ok || got.Type != e.Type || got.Payload != e.Payload {
			t.Errorf("Lookup(%q) = %+v, %v", e.Type, got, ok)
		}
		if e.Description == "" || strings.Contains(e.Description, "\n") {
			t.Errorf("%s: the description is not one line: %q", e.Type, e.Description)
		}
		ledgers := strings.HasPrefix(e.Type, "commission.") || strings.HasPrefix(e.Type, "holding.")
		if ledgers != (e.Payload == nil) {
			t.Errorf("%s: payload type %v (the ledger's own events have none, the others one)", e.Type, e.Payload)
		}
	}
	for name, typ := range consts {
		if !seen[typ] {
			t.Errorf("%s (%q) is not in All", name, typ)
		}
	}
	if _, ok := catalog.Lookup("identity.nothing"); ok {
		t.Error("Lookup found an uncatalogued type")
	}
}

// typeConstants returns the string constants of catalog.go whose names end
// in Type, by name.
func typeConstants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "catalog.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasSuffix(n.Name, "Type") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", n.Name)
				}
				out[n.Name] = constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0))
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no type constants found in catalog.go")
	}
	return out
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		typ, data string
		err       string // "": none; else a part of the error
	}{
		{catalog.CommissionIssuedType, "", ""},
		{catalog.HoldingDeletedType, `{}`, "carries no data"},
		{catalog.ServiceRemovedType, `{"name":"pithos"}`, ""},
		{"identity.service.gone", `{"name":"pithos"}`, "not in the catalog"},
		{catalog.ServiceRemovedType, `{"name":"pithos","x":1}`, `unknown field "x"`},
		{catalog.ServiceRemovedType, `{"Name":"pithos"}`, "is not catalog.ServiceRemoved as encoded"},
		{catalog.ServiceRemovedType, `{}`, "is not catalog.ServiceRemoved as encoded"}, // a field missing
		{catalog.ServiceRemovedType, `{"name": "pithos"}`, "is not catalog.ServiceRemoved as encoded"},
		{catalog.ServiceRemovedType, `{"name":"pithos"}{}`, "more than one JSON value"},
		{catalog.ServiceRemovedType, ``, "does not decode"},
		{catalog.ServiceRemovedType, `null`, "is not catalog.ServiceRemoved as encoded"},
		{catalog.ServiceRemovedType, `["pithos"]`, "does not decode"},
		{catalog.UserActivatedType, `{"active":true,"role":"user","username":"a@b","uuid":"u"}`, ""},
		{catalog.UserActivatedType, `{"uuid":"u","username":"a@b","role":"user","active":true}`, "as encoded"}, // out of order
		{catalog.TokenRevokedType, `{"id":"1","kind":"session","name":"","owner":"u","read_only":false,"reason":"expired"}`, ""},
		{catalog.TokenRevokedType, `{"expires":"2026-01-02T03:04:05Z","id":"1","kind":"session","name":"","owner":"u","read_only":false}`, ""},
		{catalog.TokenCreatedType, `{"id":"1","imported":false,"kind":"personal","name":"","owner":"u","read_only":false}`, "as encoded"},
	} {
		err := catalog.Check(c.typ, []byte(c.data))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Check(%q, %s) = %v, want nil", c.typ, c.data, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Check(%q, %s) = %v, want an error saying %q", c.typ, c.data, err, c.err)
		}
	}
	if err := catalog.Check("x.y", nil); !errors.Is(err, catalog.ErrUncatalogued) {
		t.Errorf("Check of an uncatalogued type: %v, want ErrUncatalogued", err)
	}
}
