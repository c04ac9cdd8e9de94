package failure_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/failure"
)

// quotaError is a domain error with data of its own, as holdings' are.
type quotaError struct{ limit int64 }

func (e *quotaError) Error() string             { return fmt.Sprintf("limit %d exceeded", e.limit) }
func (e *quotaError) FailureCode() failure.Code { return failure.OverLimit }

var errGone = failure.New(failure.NotFound, "no such thing")

func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code failure.Code
	}{
		{"Nil", nil, ""},
		{"Plain", errors.New("disk on fire"), failure.Internal},
		{"PlainWrapped", fmt.Errorf("reading: %w", fs.ErrPermission), failure.Internal},
		{"Sentinel", errGone, failure.NotFound},
		{"SentinelWrapped", fmt.Errorf("loading: %w", errGone), failure.NotFound},
		{"Errorf", failure.Errorf(failure.Invalid, "page %d is not a page", -1), failure.Invalid},
		{"ErrorfWrapsOuterWins", failure.Errorf(failure.Unavailable, "%w; retry", errGone), failure.Unavailable},
		{"Mark", failure.Mark(errGone, "no thing %d", 12), failure.NotFound},
		{"DomainError", &quotaError{3}, failure.OverLimit},
		{"DomainErrorWrapped", fmt.Errorf("commission 7: %w", &quotaError{3}), failure.OverLimit},
		{"Joined", errors.Join(errors.New("x"), &quotaError{3}), failure.OverLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failure.CodeOf(tc.err); got != tc.code {
				t.Fatalf("CodeOf(%v) = %q, want %q", tc.err, got, tc.code)
			}
		})
	}
}

func TestMessagesAndWrapping(t *testing.T) {
	// A specific instance of a sentinel keeps errors.Is and says only its
	// own message.
	err := failure.Mark(errGone, "no thing %d", 12)
	if !errors.Is(err, errGone) || err.Error() != "no thing 12" {
		t.Fatalf("Mark: %q, Is(errGone) = %v", err, errors.Is(err, errGone))
	}
	// %w in Errorf wraps as fmt.Errorf does, message included.
	err = failure.Errorf(failure.Unavailable, "%w; the outcome is unknown", errGone)
	if !errors.Is(err, errGone) || err.Error() != "no such thing; the outcome is unknown" {
		t.Fatalf("Errorf with %%w: %q, Is(errGone) = %v", err, errors.Is(err, errGone))
	}
	var q *quotaError
	if err := failure.Errorf(failure.Invalid, "bad: %w", &quotaError{5}); !errors.As(err, &q) || q.limit != 5 {
		t.Fatalf("errors.As through Errorf: %v", err)
	}
	// Without %w nothing is wrapped: a %v operand is only text.
	err = failure.Errorf(failure.Invalid, "bad: %v", errGone)
	if errors.Is(err, errGone) || errors.Unwrap(err) != nil || err.Error() != "bad: no such thing" {
		t.Fatalf("Errorf with %%v: %q wraps %v", err, errors.Unwrap(err))
	}
	// Each New is its own sentinel.
	if a, b := failure.New(failure.Conflict, "x"), failure.New(failure.Conflict, "x"); errors.Is(a, b) {
		t.Fatal("two sentinels with the same code and message are the same error")
	}
}

// TestCodes checks that Codes lists every Code constant of the package, once:
// the API's table is checked against Codes.
func TestCodes(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "failure.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Code" {
				for i := range vs.Names {
					lit := vs.Values[i].(*ast.BasicLit)
					declared[strings.Trim(lit.Value, `"`)] = true
				}
			}
		}
	}
	seen := map[failure.Code]bool{}
	for _, c := range failure.Codes {
		if c == "" || seen[c] || !declared[string(c)] {
			t.Fatalf("code %q is empty, listed twice or not a constant", c)
		}
		seen[c] = true
	}
	if len(seen) != len(declared) || len(declared) == 0 {
		t.Fatalf("Codes lists %d codes, the package declares %d: %v", len(seen), len(declared), declared)
	}
}
