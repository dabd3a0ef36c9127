package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// deepJSONSeeds are JSON values nested at and around maxDepth.
func deepJSONSeeds() []string {
	ph := `{"_placeholder":true,"num":0}`
	arr := func(n int, inner string) string { return strings.Repeat("[", n) + inner + strings.Repeat("]", n) }
	obj := func(n int, inner string) string { return strings.Repeat(`{"a":`, n) + inner + strings.Repeat("}", n) }
	mixed := func(n int, inner string) string { return strings.Repeat(`[{"a":`, n) + inner + strings.Repeat("}]", n) }
	return []string{
		arr(MaxDepth, "1"), arr(MaxDepth+1, ""), obj(MaxDepth-1, ph), obj(MaxDepth, "1"),
		mixed(MaxDepth/2-1, ph), mixed(MaxDepth/2, "1"), arr(MaxDepth-1, "1")[1:],
		strings.Repeat("[", MaxDepth-1) + "1,]", mixed(100, `{"_placeholder":true,"num":3}`),
	}
}

// maxDeepStack is what a goroutine may hold after transcoding a value
// nested 10,000 deep: a small constant, where the recursive walks needed
// 2 to 8 MiB.
const maxDeepStack = 64 << 10

// TestDeepTranscodeStack: transcoding values nested as deep as allowed, in
// either direction, costs stack in proportion to nothing.
func TestDeepTranscodeStack(t *testing.T) {
	ph := `{"_placeholder":true,"num":0}`
	atts := [][]byte{{1, 2, 3}}
	type test struct {
		name string
		f    func() error
	}
	var tests []test
	for name, js := range map[string]string{
		"array":  strings.Repeat("[", MaxDepth) + "1" + strings.Repeat("]", MaxDepth),
		"object": strings.Repeat(`{"a":`, MaxDepth-1) + ph + strings.Repeat("}", MaxDepth-1),
		"mixed":  strings.Repeat(`[{"a":`, MaxDepth/2-1) + ph + strings.Repeat("}]", MaxDepth/2-1),
	} {
		tests = append(tests, test{"JSON to msgpack " + name, func() error {
			_, err := toMsgpack(js, atts)
			return err
		}})
	}
	for _, kind := range []string{"array", "map", "mixed"} {
		msg := testkit.DeepMsgpack(MaxDepth, kind, []byte{0xc4, 0x01, 0x07})
		tests = append(tests, test{"msgpack to JSON " + kind, func() error {
			r := GetReader(msg)
			defer PutReader(r)
			_, _, err := r.ToJSON(nil, nil, BinPlaceholder)
			return err
		}}, test{"msgpack skip " + kind, func() error {
			r := GetReader(msg)
			defer PutReader(r)
			_, err := r.Span()
			return err
		}})
	}
	keyMsg := append(append([]byte{0x81}, testkit.DeepMsgpack(MaxDepth-1, "array", []byte{0x01})...), 0xc3)
	tests = append(tests, test{"msgpack to JSON deep key", func() error {
		r := GetReader(keyMsg)
		defer PutReader(r)
		out, _, err := r.ToJSON(nil, nil, BinPlaceholder)
		if err == nil && string(out) != `{"1":true}` {
			err = fmt.Errorf("got %s", out)
		}
		return err
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := make([]error, 100)
			per := testkit.StackPerGoroutine(t, len(errs), func(i int) { errs[i] = tt.f() })
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%d bytes of stack per goroutine", per)
			if per > maxDeepStack {
				t.Errorf("%d bytes of stack per goroutine, want at most %d", per, maxDeepStack)
			}
		})
	}
}

// TestDeepTranscodeParity: on values at and beyond the nesting limit the
// iterative transcoders give what the recursive ones gave (JSON → msgpack
// scans with jsonscan, recursive for the first levels only).
func TestDeepTranscodeParity(t *testing.T) {
	for i, js := range deepJSONSeeds() {
		checkJSONParity(t, fmt.Sprint("JSON seed ", i), []byte(js), [][]byte{{1}})
	}
	for i, msg := range testkit.DeepMsgpackSeeds(MaxDepth) {
		checkMsgpackParity(t, fmt.Sprint("msgpack seed ", i), msg)
	}
}

func checkJSONParity(t *testing.T, what string, js []byte, atts [][]byte) {
	t.Helper()
	w := GetWriter(len(js))
	err := w.JSON(js, atts)
	got := w.Bytes()
	w = GetWriter(len(js))
	refErr := w.refJSON(js, atts)
	want := w.Bytes()
	if (err == nil) != (refErr == nil) || errors.Is(err, ErrPlaceholder) != errors.Is(refErr, ErrPlaceholder) ||
		err == nil && !bytes.Equal(got, want) {
		t.Fatalf("%s: %.80q: jsonscan %x, %v; recursive %x, %v", what, js, got, err, want, refErr)
	}
	// A syntax error is exactly what encoding/json rejects (with the same
	// nesting limit), and it is the scanner's.
	var syntaxErr *jsonscan.SyntaxError
	if isSyntax := errors.As(err, &syntaxErr); isSyntax == json.Valid(js) || err != nil && !isSyntax && !errors.Is(err, ErrPlaceholder) {
		t.Fatalf("%s: %.80q: jsonscan %v; json.Valid %v", what, js, err, json.Valid(js))
	}
}

func checkMsgpackParity(t *testing.T, what string, msg []byte) {
	t.Helper()
	for _, mode := range []BinaryMode{BinPlaceholder, BinBufferJSON} {
		r := GetReader(msg)
		got, gotAtts, err := r.ToJSON(nil, nil, mode)
		gotPos := r.Pos()
		PutReader(r)
		r = GetReader(msg)
		want, wantAtts, refErr := r.refToJSON(nil, nil, mode)
		wantPos := r.Pos()
		PutReader(r)
		if fmt.Sprint(err) != fmt.Sprint(refErr) || err == nil && (string(got) != string(want) || len(gotAtts) != len(wantAtts) || gotPos != wantPos) {
			t.Fatalf("%s: %.80x: iterative %q, %v; recursive %q, %v", what, msg, got, err, want, refErr)
		}
	}
	r := GetReader(msg)
	err := r.Skip(0)
	gotPos := r.Pos()
	PutReader(r)
	r = GetReader(msg)
	refErr := r.refSkip(0)
	wantPos := r.Pos()
	PutReader(r)
	if fmt.Sprint(err) != fmt.Sprint(refErr) || err == nil && gotPos != wantPos {
		t.Fatalf("%s: skip %.80x: iterative %d, %v; recursive %d, %v", what, msg, gotPos, err, wantPos, refErr)
	}
	var sb, refSB strings.Builder
	r = GetReader(msg)
	err = r.KeyString(&sb, 1)
	PutReader(r)
	r = GetReader(msg)
	refErr = r.refKeyString(&refSB, 1)
	PutReader(r)
	if fmt.Sprint(err) != fmt.Sprint(refErr) || err == nil && sb.String() != refSB.String() {
		t.Fatalf("%s: keyString %.80x: iterative %q, %v; recursive %q, %v", what, msg, sb.String(), err, refSB.String(), refErr)
	}
}

// FuzzTranscodeParity compares the transcoders with the recursive ones
// they replaced, in both directions: the input is read as msgpack (toJSON,
// skip, keyString) and as JSON, with and without an attachment (JSON is
// scanned by jsonscan, which is also checked against encoding/json).
func FuzzTranscodeParity(f *testing.F) {
	for _, js := range deepJSONSeeds() {
		f.Add([]byte(js))
	}
	for _, msg := range testkit.DeepMsgpackSeeds(MaxDepth) {
		f.Add(msg)
	}
	for _, s := range []string{
		`["hello",1,"two",{"three":3.5},{"_placeholder":true,"num":0}]`,
		`{"a":[{},[],{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":5}}],"\u006eum":1,"_placeholder":true}`,
		"\x93\xa6\x34\x54\x72\x57\x74\x52\x83\x0a", "\x82\x92\xd4\x00\x00\xc0\xc3\x81\xc0\xc2\x80",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkMsgpackParity(t, "msgpack", in)
		checkJSONParity(t, "JSON", in, [][]byte{{1}})
		checkJSONParity(t, "JSON without attachments", in, nil)
	})
}
