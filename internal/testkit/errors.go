package testkit

import (
	"errors"
	"reflect"

	"github.com/quotaledger/quotaledger/failure"
)

// CheckErr checks err against want, the error a table test expects:
//   - nil: err must be nil;
//   - an error that carries data, a pointer to a struct such as
//     *holdings.NoCapacityError: err must hold one (errors.As) whose
//     fields all equal want's;
//   - any other error, a sentinel (a *failure.Error among them): err must
//     be it or wrap it (errors.Is).
func CheckErr(tb TB, err, want error) {
	tb.Helper()
	if want == nil {
		if err != nil {
			tb.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if w := reflect.ValueOf(want); carriesData(w) {
		got := reflect.New(w.Type()) // a *T for errors.As to fill, T being want's pointer type
		if !errors.As(err, got.Interface()) || got.Elem().IsNil() || got.Elem().Elem().Interface() != w.Elem().Interface() {
			tb.Fatalf("err = %#v, want %#v", err, want)
		}
		return
	}
	if !errors.Is(err, want) {
		tb.Fatalf("err = %v, want %v", err, want)
	}
}

// carriesData tells whether w, an error, is one that carries data: a
// non-nil pointer to a comparable struct, and not a failure sentinel.
func carriesData(w reflect.Value) bool {
	if w.Kind() != reflect.Pointer || w.IsNil() || w.Elem().Kind() != reflect.Struct || !w.Elem().Type().Comparable() {
		return false
	}
	_, sentinel := w.Interface().(*failure.Error)
	return !sentinel
}
