package parser

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// deepArray is an array nested depth deep around inner: [[[…inner…]]].
func deepArray(depth int, inner string) string {
	return strings.Repeat("[", depth) + inner + strings.Repeat("]", depth)
}

// deepObject is an object nested depth deep around inner: {"a":{"a":…inner…}}.
func deepObject(depth int, inner string) string {
	return strings.Repeat(`{"a":`, depth) + inner + strings.Repeat("}", depth)
}

// maxDeepStack is what a goroutine may hold after scanning input nested
// 10,000 deep: a small constant (a goroutine starts with 8 KiB), where the
// recursive scanner needed about 2 MiB.
const maxDeepStack = 64 << 10

// TestDeepNestingStack: input nested as deep as allowed costs stack in
// proportion to nothing, whichever walk over client JSON handles it.
func TestDeepNestingStack(t *testing.T) {
	const depth = maxNesting - 2 // inside 42["ev", …]
	arr := deepArray(depth, "1")
	obj := deepObject(depth, `{"_placeholder":true,"num":0}`)
	mixed := strings.Repeat(`[{"a":`, depth/2) + `{"_placeholder":true,"num":0}` + strings.Repeat("}]", depth/2)
	atts := [][]byte{{1, 2, 3}}
	tests := []struct {
		name string
		f    func() error
	}{
		{"Decode array", func() error {
			_, _, err := Decode([]byte(`2["ev",`+arr+`]`), 0)
			return err
		}},
		{"Decode binary object", func() error {
			_, _, err := Decode([]byte(`51-["ev",`+obj+`]`), 0)
			return err
		}},
		{"Decoder binary mixed", func() error {
			var d Decoder
			if _, err := d.Add([]byte(`51-["ev",`+mixed+`]`), false); err != nil {
				return err
			}
			_, err := d.Add([]byte{1}, true)
			return err
		}},
		{"SplitArray", func() error {
			_, err := SplitArray(json.RawMessage(`["ev",` + arr + `]`))
			return err
		}},
		{"AppendValues Raw", func() error {
			args, err := NewRawArgs(json.RawMessage(`["ev",`+mixed+`]`), atts)
			if err != nil {
				return err
			}
			_, _, err = AppendValues(nil, nil, args[0], args[1])
			return err
		}},
		{"Raw.MarshalJSON", func() error {
			_, err := Raw{JSON: json.RawMessage(obj), Attachments: atts}.MarshalJSON()
			return err
		}},
		{"Raw.Decode", func() error {
			var v json.RawMessage // encoding/json validates it without recursion
			return Raw{JSON: json.RawMessage(obj), Attachments: atts}.Decode(&v)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := make([]error, 200)
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

// TestDeepResolvePlaceholdersStack: replacing placeholders in a value that
// encoding/json decoded from deep input walks it without recursion.
func TestDeepResolvePlaceholdersStack(t *testing.T) {
	const depth = maxNesting - 1
	atts := [][]byte{{1, 2, 3}}
	for name, in := range map[string]string{
		"array":  deepArray(depth, `{"_placeholder":true,"num":0}`),
		"object": deepObject(depth, `{"_placeholder":true,"num":0}`),
		"mixed":  strings.Repeat(`[{"a":`, depth/2) + `{"_placeholder":true,"num":0}` + strings.Repeat("}]", depth/2),
	} {
		t.Run(name, func(t *testing.T) {
			vals := make([]any, 20)
			for i := range vals {
				if err := json.Unmarshal([]byte(in), &vals[i]); err != nil {
					t.Fatal(err)
				}
			}
			errs := make([]error, len(vals))
			per := testkit.StackPerGoroutine(t, len(vals), func(i int) { vals[i], errs[i] = resolvePlaceholders(vals[i], atts) })
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

// TestDeepRawValueStack reports what Raw.Value costs on deep input: the
// decoding itself is encoding/json's, recursive with its own limit of 10,000
// levels, and outside this package's control; it is logged, not asserted.
func TestDeepRawValueStack(t *testing.T) {
	in := deepArray(maxNesting-1, `{"_placeholder":true,"num":0}`)
	errs := make([]error, 50)
	per := testkit.StackPerGoroutine(t, len(errs), func(i int) {
		_, errs[i] = Raw{JSON: json.RawMessage(in), Attachments: [][]byte{{1}}}.Value()
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Raw.Value (encoding/json into any, then placeholders): %d bytes of stack per goroutine", per)
	per = testkit.StackPerGoroutine(t, len(errs), func(i int) {
		var v any
		errs[i] = json.Unmarshal([]byte(in), &v)
	})
	t.Logf("json.Unmarshal into any alone: %d bytes of stack per goroutine", per)
}

// TestDeepNestingResults: at the nesting limit the iterative walks give what
// the recursive ones gave, and one level more is the same error.
func TestDeepNestingResults(t *testing.T) {
	ph := `{"_placeholder":true,"num":0}`
	in := `["ev",` + strings.Repeat(`[{"a":`, maxNesting/2-1) + ph + strings.Repeat("}]", maxNesting/2-1) + `]`
	p, n, err := Decode([]byte(`51-`+in), 0)
	noError(t, err)
	equal(t, "attachments", n, 1)
	args, err := NewRawArgs(p.Data, [][]byte{{7}})
	noError(t, err)
	out, atts, err := AppendValues(nil, nil, args[0], args[1])
	noError(t, err)
	equal(t, "re-encoded", string(out), in)
	equal(t, "attachments", len(atts), 1)
	v, err := args[1].Value()
	noError(t, err)
	for range maxNesting/2 - 1 {
		v = v.([]any)[0].(map[string]any)["a"]
	}
	deepEqual(t, "bottom", v, []byte{7})

	// One level too many, at the bottom, as an array and as an object.
	for _, in := range []string{deepArray(maxNesting, "1"), deepObject(maxNesting, "1")} {
		_, _, err := Decode([]byte(`2["ev",`+in+`]`), 0)
		if err == nil || !strings.Contains(err.Error(), "exceeded max nesting depth at offset") {
			t.Errorf("Decode nested %d deep: %v", maxNesting+1, err)
		}
	}
	// A bad placeholder at the bottom of a deep value is still found.
	_, _, err = Decode([]byte(`51-["ev",`+deepObject(maxNesting-2, `{"_placeholder":true,"num":1}`)+`]`), 0)
	if err == nil || !strings.Contains(err.Error(), "does not name one of the 1 attachment(s)") {
		t.Errorf("deep bad placeholder: %v", err)
	}
}
