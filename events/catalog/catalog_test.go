package catalog_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/ledger"
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

// example is one entry of README.md's list of events ("One of each").
type example struct {
	line    int
	typ     string
	subject string
	json    string
}

var exampleHead = regexp.MustCompile("^`([^`]+)` on `([^`]+)`:$")

// readmeExamples returns the examples of README.md's section "One of each"
// in the order written.
func readmeExamples(t *testing.T) []example {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	start := slices.Index(lines, "### One of each")
	if start < 0 {
		t.Fatal(`README.md has no section "### One of each"`)
	}
	var out []example
	for i := start + 1; i < len(lines) && !strings.HasPrefix(lines[i], "#"); i++ {
		m := exampleHead.FindStringSubmatch(lines[i])
		if m == nil {
			if strings.HasPrefix(lines[i], "`") && strings.Contains(lines[i], "` on `") {
				t.Errorf("README.md:%d: %q is not an example's head (`type` on `subject`:)", i+1, lines[i])
			}
			continue
		}
		if i+3 >= len(lines) || lines[i+1] != "```json" || lines[i+3] != "```" {
			t.Errorf("README.md:%d: %s is not followed by one line of JSON in a ```json block", i+1, m[1])
			continue
		}
		out = append(out, example{line: i + 1, typ: m[1], subject: m[2], json: lines[i+2]})
		i += 3
	}
	return out
}

// TestREADME checks README.md's list of events against the catalog: every
// catalogued type has one example, in the catalog's order, and every
// example is of a catalogued type, on its subject, with an envelope and
// data as the catalog has them.
func TestREADME(t *testing.T) {
	exs := readmeExamples(t)
	var got, want []string
	for _, e := range catalog.All {
		want = append(want, e.Type)
	}
	for _, ex := range exs {
		got = append(got, ex.typ)
		if _, ok := catalog.Lookup(ex.typ); !ok {
			t.Errorf("README.md:%d: %s is not in the catalog", ex.line, ex.typ)
			continue
		}
		checkExample(t, ex)
	}
	for _, typ := range want {
		if !slices.Contains(got, typ) {
			t.Errorf("README.md has no example of %s", typ)
		}
	}
	if !t.Failed() && !slices.Equal(got, want) {
		t.Errorf("README.md's examples are of\n%s\nthe catalog's order is\n%s",
			strings.Join(got, " "), strings.Join(want, " "))
	}
}

func checkExample(t *testing.T, ex example) {
	t.Helper()
	var p events.Payload
	dec := json.NewDecoder(strings.NewReader(ex.json))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Errorf("README.md:%d: %s: the example is not an envelope: %v", ex.line+2, ex.typ, err)
		return
	}
	if again, err := json.Marshal(&p); err != nil || !bytes.Equal(again, []byte(ex.json)) {
		t.Errorf("README.md:%d: %s: the example is not as encoded:\n%s\nis encoded\n%s", ex.line+2, ex.typ, ex.json, again)
	}
	if p.Type != events.TypePrefix+ex.typ {
		t.Errorf("README.md:%d: the example of %s has type %q", ex.line+2, ex.typ, p.Type)
	}
	ev := ledger.Event{Type: ex.typ}
	if p.Client != nil {
		ev.Client = *p.Client
	}
	if s := events.Subject(ev); s != ex.subject {
		t.Errorf("README.md:%d: %s is published on %s, not %s", ex.line, ex.typ, s, ex.subject)
	}
	if p.ID == "" || p.Time == "" {
		t.Errorf("README.md:%d: %s: the example has no id or time", ex.line+2, ex.typ)
	}
	if seq := p.ID[strings.LastIndexByte(p.ID, '-')+1:]; seq == "" || seq == p.ID {
		t.Errorf("README.md:%d: %s: id %q is not <database id>-<sequence>", ex.line+2, ex.typ, p.ID)
	} else if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
		t.Errorf("README.md:%d: %s: id %q is not <database id>-<sequence>", ex.line+2, ex.typ, p.ID)
	}
	e, _ := catalog.Lookup(ex.typ)
	if e.Payload == nil && len(p.Holdings) == 0 {
		t.Errorf("README.md:%d: the example of %s has no holdings", ex.line+2, ex.typ)
	}
	if err := catalog.Check(ex.typ, p.Data); err != nil {
		t.Errorf("README.md:%d: %v", ex.line+2, err)
	}
}
