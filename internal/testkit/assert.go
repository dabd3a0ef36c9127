package testkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Equal fails the test (and stops it) unless reflect.DeepEqual(got, want). The message names
// the first path where they differ and shows both values.
func Equal(t testing.TB, got, want any, msgAndArgs ...any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	t.Fatalf("%snot equal%s\n got: %s\nwant: %s", message(msgAndArgs), firstDiff(got, want), show(got), show(want))
}

// NotEqual fails the test unless got and want differ.
func NotEqual(t testing.TB, got, notWant any, msgAndArgs ...any) {
	t.Helper()
	if reflect.DeepEqual(got, notWant) {
		t.Fatalf("%sunexpectedly equal to %s", message(msgAndArgs), show(got))
	}
}

// NoError fails the test (and stops it) when err is not nil.
func NoError(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%sunexpected error: %v", message(msgAndArgs), err)
	}
}

// ErrorIs fails the test unless errors.Is(err, target).
func ErrorIs(t testing.TB, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%serror %v is not %v", message(msgAndArgs), err, target)
	}
}

// True fails the test unless cond holds.
func True(t testing.TB, cond bool, msgAndArgs ...any) {
	t.Helper()
	if !cond {
		t.Fatalf("%scondition is false", message(msgAndArgs))
	}
}

// JSONEqual fails the test unless got and want (JSON texts) hold the same JSON value;
// key order does not matter.
func JSONEqual(t testing.TB, got, want string, msgAndArgs ...any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%sgot is not JSON: %v: %s", message(msgAndArgs), err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%swant is not JSON: %v: %s", message(msgAndArgs), err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%sJSON differs%s\n got: %s\nwant: %s", message(msgAndArgs), firstDiff(g, w), got, want)
	}
}

func message(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if f, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(f, msgAndArgs[1:]...) + ": "
	}
	return fmt.Sprint(msgAndArgs...) + ": "
}

func show(v any) string {
	if b, err := json.Marshal(v); err == nil {
		return fmt.Sprintf("%s (%T)", b, v)
	}
	return fmt.Sprintf("%#v", v)
}

// firstDiff describes the first place where got and want differ, or "".
func firstDiff(got, want any) string {
	path, g, w := diffValues("", reflect.ValueOf(got), reflect.ValueOf(want))
	if path == "" {
		path = "(top)"
	}
	return fmt.Sprintf(" at %s: got %s, want %s", path, g, w)
}

func diffValues(path string, g, w reflect.Value) (string, string, string) {
	if !g.IsValid() || !w.IsValid() {
		return path, fmtValue(g), fmtValue(w)
	}
	if g.Kind() == reflect.Interface && !g.IsNil() {
		g = g.Elem()
	}
	if w.Kind() == reflect.Interface && !w.IsNil() {
		w = w.Elem()
	}
	if g.Type() != w.Type() {
		return path, fmtValue(g), fmtValue(w)
	}
	switch g.Kind() {
	case reflect.Slice, reflect.Array:
		if g.Kind() == reflect.Slice && g.IsNil() != w.IsNil() {
			return path, fmtValue(g), fmtValue(w)
		}
		for i := 0; i < g.Len() && i < w.Len(); i++ {
			if !reflect.DeepEqual(g.Index(i).Interface(), w.Index(i).Interface()) {
				return diffValues(fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i))
			}
		}
		if g.Len() != w.Len() {
			return path + ".len", fmt.Sprint(g.Len()), fmt.Sprint(w.Len())
		}
	case reflect.Map:
		keys := map[string]reflect.Value{}
		for _, k := range append(g.MapKeys(), w.MapKeys()...) {
			keys[fmt.Sprint(k.Interface())] = k
		}
		names := make([]string, 0, len(keys))
		for n := range keys {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			gv, wv := g.MapIndex(keys[n]), w.MapIndex(keys[n])
			p := fmt.Sprintf("%s[%q]", path, n)
			if !gv.IsValid() || !wv.IsValid() {
				return p, fmtValue(gv), fmtValue(wv)
			}
			if !reflect.DeepEqual(gv.Interface(), wv.Interface()) {
				return diffValues(p, gv, wv)
			}
		}
	case reflect.Pointer:
		if !g.IsNil() && !w.IsNil() {
			return diffValues("(*"+path+")", g.Elem(), w.Elem())
		}
	case reflect.Struct:
		for i := 0; i < g.NumField(); i++ {
			if !g.Type().Field(i).IsExported() {
				continue
			}
			if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
				return diffValues(path+"."+g.Type().Field(i).Name, g.Field(i), w.Field(i))
			}
		}
	}
	return path, fmtValue(g), fmtValue(w)
}

func fmtValue(v reflect.Value) string {
	if !v.IsValid() {
		return "<missing>"
	}
	if v.CanInterface() {
		s := show(v.Interface())
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		return strings.TrimSpace(s)
	}
	return v.String()
}
