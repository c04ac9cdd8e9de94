package testkit

import (
	"fmt"
	"reflect"
	"strings"
)

// FieldDiffs lists the fields in which got and want differ, each as its
// path (".Field", "[i]", "[key]") with the two values; none if they are
// equal. It is what a test that decodes golden bytes says when the value
// is not the one it wants. A struct with unexported fields (time.Time,
// holdings.Source) and a []byte are compared whole, with
// reflect.DeepEqual.
func FieldDiffs(got, want any) []string {
	return fieldDiffs("", reflect.ValueOf(got), reflect.ValueOf(want))
}

func fieldDiffs(path string, got, want reflect.Value) []string {
	if got.Type() != want.Type() {
		return []string{fmt.Sprintf("%s: type %s, want %s", path, got.Type(), want.Type())}
	}
	leaf := func() []string {
		if reflect.DeepEqual(got.Interface(), want.Interface()) {
			return nil
		}
		return []string{fmt.Sprintf("%s: %#v, want %#v", path, got.Interface(), want.Interface())}
	}
	switch got.Kind() {
	case reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			return leaf()
		}
		return fieldDiffs(path, got.Elem(), want.Elem())
	case reflect.Struct:
		for i := 0; i < got.NumField(); i++ {
			if !got.Type().Field(i).IsExported() {
				return leaf()
			}
		}
		var out []string
		for i := 0; i < got.NumField(); i++ {
			out = append(out, fieldDiffs(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))...)
		}
		return out
	case reflect.Slice:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: %d elements (nil %v), want %d (nil %v)", path, got.Len(), got.IsNil(), want.Len(), want.IsNil())}
		}
		if got.Type().Elem().Kind() == reflect.Uint8 {
			return leaf()
		}
		var out []string
		for i := 0; i < got.Len(); i++ {
			out = append(out, fieldDiffs(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))...)
		}
		return out
	case reflect.Map:
		if got.Len() != want.Len() {
			return leaf()
		}
		var out []string
		for _, k := range want.MapKeys() {
			g := got.MapIndex(k)
			if !g.IsValid() {
				return leaf()
			}
			out = append(out, fieldDiffs(fmt.Sprintf("%s[%v]", path, k), g, want.MapIndex(k))...)
		}
		return out
	}
	return leaf()
}

// FirstLineDiff returns the number (from 1) of the first line at which got
// and want differ, and that line of each ("" past its end); 0 if they are
// the same. It is what a test that holds text against a golden file says.
func FirstLineDiff(got, want string) (n int, gotLine, wantLine string) {
	if got == want {
		return 0, "", ""
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return i + 1, gl, wl
		}
	}
	return 0, "", "" // unreachable: texts that differ differ in a line
}
