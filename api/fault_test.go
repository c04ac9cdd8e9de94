package api

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// domainErrors are the exported errors of the domain packages, by name as
// TestEveryErrorIsMapped finds them in the source: every exported Err*
// variable, and an instance of every exported error type. A new one must be
// listed here, so that its answer is checked.
var domainErrors = func() map[string]error {
	p := holdings.Provision{Key: holdings.Key{Holder: "h", Source: holdings.SourceOf("s"), Resource: "r"}, Quantity: 2}
	return map[string]error{
		"holdings.ErrOverflow":          holdings.ErrOverflow,
		"holdings.ErrNegativeLimit":     holdings.ErrNegativeLimit,
		"holdings.NoHoldingError":       &holdings.NoHoldingError{Provision: p},
		"holdings.NoCapacityError":      &holdings.NoCapacityError{Provision: p, Limit: 1, Usage: 0},
		"holdings.NoQuantityError":      &holdings.NoQuantityError{Provision: p, Usage: 1},
		"holdings.InvalidError":         &holdings.InvalidError{Provision: -1, Part: "holder", Problem: holdings.Empty},
		"commission.ErrEmptyName":       commission.ErrEmptyName,
		"ledger.ErrClosed":              ledger.ErrClosed,
		"ledger.ErrNotFound":            ledger.ErrNotFound,
		"ledger.ErrIdempotencyConflict": ledger.ErrIdempotencyConflict,
		"ledger.ErrHoldingInUse":        ledger.ErrHoldingInUse,
		"ledger.ErrNoSpace":             ledger.ErrNoSpace,
		"ledger.ErrBusy":                ledger.ErrBusy,
		"ledger.ErrDeposed":             ledger.ErrDeposed,
		"ledger.ErrNotLeader":           ledger.ErrNotLeader,
		"ledger.ErrUnchained":           ledger.ErrUnchained,
		"ledger.ErrWrongID":             ledger.ErrWrongID,
		"ledger.ErrPastLog":             ledger.ErrPastLog,
		"ledger.ErrFailed":              ledger.ErrFailed,
		"ledger.ErrOutcomeUnknown":      ledger.ErrOutcomeUnknown,
		"ledger.ErrCorrupt":             ledger.ErrCorrupt,
		"identity.ErrWrongPassword":     identity.ErrWrongPassword,
		"identity.ErrServiceInUse":      identity.ErrServiceInUse,
	}
}()

// meantToBe500 are the domain errors that are bugs or broken data, answered
// 500 internalServerError on purpose. Keep it short.
var meantToBe500 = map[string]bool{
	"ledger.ErrCorrupt": true,
}

// domainPackages are the directories whose errors the API answers.
var domainPackages = []string{"holdings", "commission", "ledger", "identity"}

// exportedErrors parses the non-test Go files of dir and returns, as
// "pkg.Name", its exported variables named Err* and its exported types
// with an Error method.
func exportedErrors(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		pkg := f.Name.Name
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, s := range d.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
							out = append(out, pkg+"."+n.Name)
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || d.Name.Name != "Error" || len(d.Recv.List) != 1 {
					continue
				}
				typ := d.Recv.List[0].Type
				if star, ok := typ.(*ast.StarExpr); ok {
					typ = star.X
				}
				if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
					out = append(out, pkg+"."+id.Name)
				}
			}
		}
	}
	return out
}

// TestEveryErrorIsMapped is "an unmapped error is a test failure": every
// exported error of the domain packages is answered with a fault of its
// own kind, not a 500, unless it is meant to be one; and its message names
// no package.
func TestEveryErrorIsMapped(t *testing.T) {
	found := map[string]bool{}
	for _, dir := range domainPackages {
		for _, name := range exportedErrors(t, filepath.Join("..", dir)) {
			found[name] = true
			if _, ok := domainErrors[name]; !ok {
				t.Errorf("%s is an exported error that domainErrors does not list: list it there, "+
					"with a failure code (failure.New, failure.Errorf or a FailureCode method) so that the API answers it", name)
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("no exported errors found in the domain packages: is the test reading the right directories?")
	}
	for name, err := range domainErrors {
		if !found[name] {
			t.Errorf("domainErrors lists %s, which the source no longer declares", name)
		}
		f := faultOf(err)
		if meantToBe500[name] {
			if f.Code != http.StatusInternalServerError || f.Message != "internal error" {
				t.Errorf("%s: %d %s %q, want a 500 that shows no detail", name, f.Code, f.Kind, f.Message)
			}
			continue
		}
		if code := failure.CodeOf(err); code == failure.Internal {
			t.Errorf("%s (%q) has no failure code: the API answers it 500 internalServerError", name, err)
			continue
		} else if f.Code == http.StatusInternalServerError {
			t.Errorf("%s has code %q, which faultTable does not answer: a 500", name, code)
			continue
		}
		if f.Message != err.Error() {
			t.Errorf("%s: message %q, want the error's %q", name, f.Message, err.Error())
		}
		pkg, _, _ := strings.Cut(name, ".")
		if strings.Contains(f.Message, pkg+":") || strings.Contains(f.Message, "identity:") {
			t.Errorf("%s: message %q names a package", name, f.Message)
		}
	}
}

// TestFaultTable checks the one table: a row for every failure code, each
// status answered by one code, and the kinds of the wire format as they
// were before the table (the lineage's cloudFault kinds).
func TestFaultTable(t *testing.T) {
	for _, c := range failure.Codes {
		row, ok := faultTable[c]
		if !ok || row.status == 0 || row.kind == "" {
			t.Errorf("code %q has no row in faultTable", c)
		}
	}
	if len(faultTable) != len(failure.Codes) {
		t.Errorf("faultTable has %d rows for %d codes", len(faultTable), len(failure.Codes))
	}
	statuses := map[int]failure.Code{}
	for c, row := range faultTable {
		if other, ok := statuses[row.status]; ok {
			t.Errorf("status %d answers both %s and %s", row.status, c, other)
		}
		statuses[row.status] = c
	}
	wire := map[int]string{
		http.StatusBadRequest:            "badRequest",
		http.StatusUnauthorized:          "unauthorized",
		http.StatusForbidden:             "forbidden",
		http.StatusNotFound:              "itemNotFound",
		http.StatusMethodNotAllowed:      "badRequest",
		http.StatusConflict:              "conflict",
		http.StatusRequestEntityTooLarge: "overLimit",
		http.StatusTooManyRequests:       "tooManyRequests",
		http.StatusInternalServerError:   "internalServerError",
		http.StatusServiceUnavailable:    "serviceUnavailable",
	}
	for status, kind := range wire {
		if faultKinds[status] != kind {
			t.Errorf("status %d: kind %q, want %q", status, faultKinds[status], kind)
		}
	}
	if len(faultKinds) != len(wire) {
		t.Errorf("faultKinds has %d statuses, want %d: %v", len(faultKinds), len(wire), faultKinds)
	}
}

// TestFaultOf checks faultOf on errors as handlers get them: wrapped, with
// data, from identity, and without a code.
func TestFaultOf(t *testing.T) {
	p := holdings.Provision{Key: holdings.Key{Holder: "h", Source: holdings.NullSource, Resource: "r"}, Quantity: 3}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		msg    string // "" : the error's own
		data   []string
	}{
		{"Fault", newFault(http.StatusTooManyRequests, "slow down"), http.StatusTooManyRequests, "", nil},
		{"NoCapacityWrapped", fmt.Errorf("issue: %w", &holdings.NoCapacityError{Provision: p, Limit: 2, Usage: 1}),
			http.StatusRequestEntityTooLarge, "", []string{"provision", "name", "limit", "usage"}},
		{"NoHolding", &holdings.NoHoldingError{Provision: p}, http.StatusNotFound, "", []string{"provision", "name"}},
		{"NotPending", failure.Mark(ledger.ErrNotFound, "no pending commission %d", 12), http.StatusNotFound, "no pending commission 12", nil},
		{"Invalid", failure.Errorf(failure.Invalid, "username must be an email address"), http.StatusBadRequest, "username must be an email address", nil},
		{"Forbidden", failure.Errorf(failure.Forbidden, "no one joins a base project"), http.StatusForbidden, "", nil},
		{"OutcomeUnknown", ledger.ErrOutcomeUnknown, http.StatusServiceUnavailable, "", nil},
		{"OverflowInMerge", fmt.Errorf("quantities of x: %w", holdings.ErrOverflow), http.StatusBadRequest, "", nil},
		{"NoCode", errors.New("pebble: disk on fire"), http.StatusInternalServerError, "internal error", nil},
		{"CodeOutsideTheList", failure.Errorf("bogus", "what"), http.StatusInternalServerError, "internal error", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := faultOf(tc.err)
			want := tc.msg
			if want == "" {
				want = tc.err.Error()
				var ff *Fault
				if errors.As(tc.err, &ff) {
					want = ff.Message
				}
			}
			if f.Code != tc.status || f.Kind != faultKinds[tc.status] || f.Message != want {
				t.Fatalf("faultOf(%v) = %d %s %q, want %d %s %q", tc.err, f.Code, f.Kind, f.Message, tc.status, faultKinds[tc.status], want)
			}
			var keys []string
			if m, ok := f.Data.(map[string]any); ok {
				for k := range m {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			wantKeys := slices.Clone(tc.data)
			slices.Sort(wantKeys)
			if !slices.Equal(keys, wantKeys) {
				t.Fatalf("data keys %v, want %v", keys, wantKeys)
			}
		})
	}
}
