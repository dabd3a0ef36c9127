package parser

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

type (
	blob       []byte
	point      struct{ X, Y int }
	withBinary struct {
		Name    string         `json:"name"`
		Data    []byte         `json:"data"`
		Skip    []byte         `json:"-"`
		Empty   []byte         `json:"empty,omitempty"`
		Nested  *withBinary    `json:"nested,omitempty"`
		Any     any            `json:"any,omitempty"`
		Map     map[string]any `json:"map,omitempty"`
		private []byte
	}
	embeddedInner struct {
		Inner  []byte
		Shared string
	}
	withEmbedded struct {
		embeddedInner
		*point
		Shared string `json:"Shared"`
		Blob   blob
	}
	textKey       int
	jsonMarshaler struct{ V []byte }
	textMarshaler struct{ V string }
	ptrMarshaler  struct{ V []byte }
	quotedFields  struct {
		I   int     `json:"i,string"`
		S   string  `json:"s,string"`
		B   bool    `json:",string"`
		F   float64 `json:"f,string"`
		P   *int    `json:"p,string"`
		Bin []byte  `json:"bin"`
	}
	zeroer     struct{ N int }
	omitZeroes struct {
		T    time.Time `json:"t,omitzero"`
		Z    zeroer    `json:"z,omitzero"`
		S    []int     `json:"s,omitzero"`
		E    []int     `json:"e,omitempty"`
		Data []byte    `json:"data,omitzero"`
	}
)

func (k textKey) MarshalText() ([]byte, error) { return []byte("k" + string(rune('0'+int(k)))), nil }

func (m jsonMarshaler) MarshalJSON() ([]byte, error) {
	return []byte(` { "custom" : [ 1 , 2 ] } `), nil
}

func (m textMarshaler) MarshalText() ([]byte, error) { return []byte("<" + m.V + ">"), nil }

func (m *ptrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"ptr"`), nil }

func (z zeroer) IsZero() bool { return z.N == 42 }

var (
	pointOne = 0.1
	b1       = []byte{1}
	b2       = []byte{2, 2}
	b3       = []byte{3, 3, 3}
)

var valuesTests = []struct {
	name   string
	values []any
	want   string
	atts   [][]byte
}{
	{"nothing", nil, `[]`, nil},
	{"nil", []any{nil}, `[null]`, nil},
	{"scalars", []any{"a", 1, 1.5, true, false, int64(-7), uint64(math.MaxUint64), int32(3), uint(4), float32(0.1), int8(-8), uint16(16)},
		`["a",1,1.5,true,false,-7,18446744073709551615,3,4,0.1,-8,16]`, nil},
	{"int limits", []any{math.MaxInt64, math.MinInt64, uint32(math.MaxUint32)},
		`[9223372036854775807,-9223372036854775808,4294967295]`, nil},
	{"floats", []any{0.0, math.Copysign(0, -1), 1e21, -1e21, 1e20, 1e-6, 1e-7, 1.5e-7, 123e-20, pointOne + 0.2, 5e-324, math.MaxFloat64, 1.0, -2.5, 100.0},
		`[0,0,1e+21,-1e+21,100000000000000000000,0.000001,1e-7,1.5e-7,1.23e-18,0.30000000000000004,5e-324,1.7976931348623157e+308,1,-2.5,100]`, nil},
	{"float32", []any{float32(1e21), float32(1e-7), float32(3.4028235e38), float32(math.Copysign(0, -1))},
		`[1e+21,1e-7,3.4028235e+38,0]`, nil},
	{"non-finite", []any{math.NaN(), math.Inf(1), math.Inf(-1), float32(math.Inf(1)), []any{math.NaN()}, map[string]any{"x": math.Inf(-1)}},
		`[null,null,null,null,[null],{"x":null}]`, nil},
	{"non-finite typed", []any{[]float64{math.NaN(), 1}, map[string]float32{"a": float32(math.Inf(1))}, struct{ F float64 }{math.NaN()}},
		`[[null,1],{"a":null},{"F":null}]`, nil},
	{"negative zero typed", []any{[]float64{math.Copysign(0, -1), -0.5, -1}, struct{ F, G float64 }{math.Copysign(0, -1), -0.25}},
		`[[0,-0.5,-1],{"F":0,"G":-0.25}]`, nil},
	{"strings", []any{"", "<script>&amp;</script>", "quote\" backslash\\ slash/", "\n\r\t\b\f", "\x00\x01\x1f\x7f", "\u2028\u2029", "é日本😀", "bad\xffutf8", "\ufeff"},
		`["","<script>&amp;</script>","quote\" backslash\\ slash/","\n\r\t\b\f","\u0000\u0001\u001f` + "\x7f" + `","` + "\u2028\u2029" + `","é日本😀","bad\ufffdutf8","` + "\ufeff" + `"]`, nil},
	{"typed strings", []any{[]string{"<&>", "\u2028"}, struct{ S string }{"<a\u2029b>"}},
		`[["<&>","` + "\u2028" + `"],{"S":"<a` + "\u2029" + `b>"}]`, nil},
	{"escaped separators stay escaped", []any{`\u2028`, []string{`\u2029`, `\\u2028`}},
		`["\\u2028",["\\u2029","\\\\u2028"]]`, nil},
	{"maps sorted", []any{map[string]any{"b": 1, "a": 2, "": 3, "é": 4, "B": 5}},
		`[{"":3,"B":5,"a":2,"b":1,"é":4}]`, nil},
	{"nested dynamic", []any{map[string]any{"list": []any{1, "x", nil, map[string]any{}}, "empty": []any{}, "nil": []any(nil), "nilmap": map[string]any(nil)}},
		`[{"empty":[],"list":[1,"x",null,{}],"nil":null,"nilmap":null}]`, nil},
	{"bytes top level", []any{"ev", b1, b2}, `["ev",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, [][]byte{b1, b2}},
	{"bytes nil and empty", []any{[]byte(nil), []byte{}}, `[null,{"_placeholder":true,"num":0}]`, [][]byte{{}}},
	{"bytes nested dynamic", []any{map[string]any{"z": b1, "a": []any{b2, map[string]any{"q": b3}}}},
		`[{"a":[{"_placeholder":true,"num":0},{"q":{"_placeholder":true,"num":1}}],"z":{"_placeholder":true,"num":2}}]`, [][]byte{b2, b3, b1}},
	{"bytes typed containers", []any{[][]byte{b1, nil, b2}, map[string][]byte{"b": b3, "a": b1}, [2][]byte{b2, b3}},
		`[[{"_placeholder":true,"num":0},null,{"_placeholder":true,"num":1}],{"a":{"_placeholder":true,"num":2},"b":{"_placeholder":true,"num":3}},[{"_placeholder":true,"num":4},{"_placeholder":true,"num":5}]]`,
		[][]byte{b1, b2, b1, b3, b2, b3}},
	{"named byte slice", []any{blob{7}}, `[{"_placeholder":true,"num":0}]`, [][]byte{{7}}},
	{"byte array is not binary", []any{[3]byte{1, 2, 3}}, `[[1,2,3]]`, nil},
	{"struct with binary", []any{withBinary{Name: "<f>", Data: b1, Skip: b2, private: b3, Any: b2,
		Nested: &withBinary{Data: b3}, Map: map[string]any{"m": b1}}},
		`[{"name":"<f>","data":{"_placeholder":true,"num":0},"nested":{"name":"","data":{"_placeholder":true,"num":1}},"any":{"_placeholder":true,"num":2},"map":{"m":{"_placeholder":true,"num":3}}}]`,
		[][]byte{b1, b3, b2, b1}},
	{"pointer to struct", []any{&withBinary{Data: b1}, (*withBinary)(nil)},
		`[{"name":"","data":{"_placeholder":true,"num":0}},null]`, [][]byte{b1}},
	{"embedded", []any{withEmbedded{embeddedInner: embeddedInner{Inner: b1, Shared: "inner"}, point: &point{1, 2}, Shared: "outer", Blob: blob{9}}},
		`[{"Inner":{"_placeholder":true,"num":0},"X":1,"Y":2,"Shared":"outer","Blob":{"_placeholder":true,"num":1}}]`, [][]byte{b1, {9}}},
	{"embedded nil pointer", []any{withEmbedded{Shared: "s"}},
		`[{"Inner":null,"Shared":"s","Blob":null}]`, nil},
	{"int and text keys", []any{map[int]any{10: b1, 2: "x", -1: nil}, map[textKey]any{2: b2, 1: 1}},
		`[{"-1":null,"10":{"_placeholder":true,"num":0},"2":"x"},{"k1":1,"k2":{"_placeholder":true,"num":1}}]`, [][]byte{b1, b2}},
	{"marshalers", []any{jsonMarshaler{V: b1}, textMarshaler{"a&b"}, &ptrMarshaler{V: b1}, []any{textMarshaler{"x"}}, (*jsonMarshaler)(nil)},
		`[{"custom":[1,2]},"<a&b>","ptr",["<x>"],null]`, nil},
	{"marshalers in walked struct", []any{struct {
		J  jsonMarshaler
		T  textMarshaler
		P  ptrMarshaler
		PP *ptrMarshaler
		B  []byte
	}{P: ptrMarshaler{}, B: b1}},
		`[{"J":{"custom":[1,2]},"T":"<>","P":{"V":null},"PP":null,"B":{"_placeholder":true,"num":0}}]`, [][]byte{b1}},
	{"addressable pointer marshaler", []any{&struct {
		P ptrMarshaler
		B []byte
	}{B: b1}}, `[{"P":"ptr","B":{"_placeholder":true,"num":0}}]`, [][]byte{b1}},
	{"quoted fields", []any{quotedFields{I: 5, S: `a"b`, B: true, F: 1.5, Bin: b1}},
		`[{"i":"5","s":"\"a\\\"b\"","B":"true","f":"1.5","p":null,"bin":{"_placeholder":true,"num":0}}]`, [][]byte{b1}},
	{"omitzero", []any{omitZeroes{Z: zeroer{42}, S: nil, E: []int{}}, omitZeroes{Z: zeroer{1}, S: []int{}, Data: b1}},
		`[{},{"z":{"N":1},"s":[],"data":{"_placeholder":true,"num":0}}]`, [][]byte{b1}},
	{"std types", []any{point{1, 2}, []point{{3, 4}}, map[string]int{"b": 1, "a": 2}, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), json.Number("1e3")},
		`[{"X":1,"Y":2},[{"X":3,"Y":4}],{"a":2,"b":1},"2024-01-02T03:04:05Z",1e3]`, nil},
	{"raw messages", []any{json.RawMessage(` {"b" : [1, 2]} `), json.RawMessage(nil), []any{json.RawMessage(`"x"`)}},
		`[{"b" : [1, 2]},null,["x"]]`, nil},
	{"json.Number in walked struct", []any{struct {
		N json.Number
		E json.Number
		B []byte
	}{N: "-1.5e3", B: b1}}, `[{"N":-1.5e3,"E":0,"B":{"_placeholder":true,"num":0}}]`, [][]byte{b1}},
	{"interface holding bytes in a slice", []any{[]any{[]any{[]any{b1}}}}, `[[[[{"_placeholder":true,"num":0}]]]]`, [][]byte{b1}},
	{"pointers", []any{func() *int { i := 3; return &i }(), func() **[]byte { b := b1; p := &b; return &p }()},
		`[3,{"_placeholder":true,"num":0}]`, [][]byte{b1}},
}

func TestAppendValues(t *testing.T) {
	for _, tt := range valuesTests {
		t.Run(tt.name, func(t *testing.T) {
			got, atts, err := AppendValues(nil, nil, tt.values...)
			noError(t, err)
			equal(t, "JSON", string(got), tt.want)
			bytesList(t, "atts", atts, tt.atts)
			if !json.Valid(got) {
				t.Errorf("invalid JSON %s", got)
			}
			// Appending keeps what is already there and numbers on.
			pre := [][]byte{{0xff}}
			got2, atts2, err := AppendValues([]byte("x"), pre, tt.values...)
			noError(t, err)
			if !strings.HasPrefix(string(got2), "x") || len(atts2) != len(tt.atts)+1 {
				t.Errorf("append: %s, %d attachments", got2, len(atts2))
			}
		})
	}
}

func TestAppendValuesNumbering(t *testing.T) {
	atts := [][]byte{{0}, {0}}
	got, atts, err := AppendValues([]byte("2"), atts, "a", b1)
	noError(t, err)
	equal(t, "JSON", string(got), `2["a",{"_placeholder":true,"num":2}]`)
	bytesList(t, "atts", atts, [][]byte{{0}, {0}, b1})
	if &atts[2][0] != &b1[0] {
		t.Error("attachment was copied")
	}
}

func TestAppendValue(t *testing.T) {
	got, atts, err := AppendValue(nil, nil, map[string]any{"sid": "abc", "pid": "def"})
	noError(t, err)
	equal(t, "JSON", string(got), `{"pid":"def","sid":"abc"}`)
	equal(t, "atts", len(atts), 0)

	got, atts, err = AppendValue([]byte("0"), nil, struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{Message: "not authorized", Data: map[string]any{"reason": "x"}})
	noError(t, err)
	equal(t, "JSON", string(got), `0{"message":"not authorized","data":{"reason":"x"}}`)
	equal(t, "atts", len(atts), 0)

	got, _, err = AppendValue(nil, nil, "nope")
	noError(t, err)
	equal(t, "JSON", string(got), `"nope"`)
}

type (
	cyclic struct {
		Next *cyclic
		B    []byte
	}
	badMarshaler  struct{}
	failMarshaler struct{}
	badText       struct{}
)

func (badMarshaler) MarshalJSON() ([]byte, error)  { return []byte(`{"a":}`), nil }
func (failMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("boom") }
func (badText) MarshalText() ([]byte, error)       { return nil, errors.New("text boom") }

func TestAppendValuesErrors(t *testing.T) {
	loop := map[string]any{}
	loop["self"] = loop
	c := &cyclic{}
	c.Next = c
	ptrLoop := &withBinary{}
	ptrLoop.Nested = ptrLoop
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"chan", make(chan int), "unsupported type"},
		{"func in struct", struct {
			F func()
			B []byte
		}{}, "unsupported type"},
		{"complex", complex(1, 2), "unsupported type"},
		{"complex in struct", struct{ C complex64 }{}, "unsupported type"},
		{"cyclic map", loop, "nesting exceeds"},
		{"cyclic struct", c, "nesting exceeds"},
		{"cyclic std struct", ptrLoop, "nesting exceeds"},
		{"invalid raw message", json.RawMessage(`{"a":`), "json.RawMessage"},
		{"raw message trailing data", json.RawMessage(`1 2`), "json.RawMessage"},
		{"bad marshaler", []any{badMarshaler{}}, "MarshalJSON"},
		{"failing marshaler", map[string]any{"x": failMarshaler{}}, "boom"},
		{"failing text marshaler", struct {
			T badText
			B []byte
		}{}, "text boom"},
		{"bad map key", map[[2]int]any{{1, 2}: b1}, "unsupported type"},
		{"raw with bad placeholder", Raw{JSON: []byte(`{"_placeholder":true,"num":5}`), Attachments: [][]byte{b1}}, "out of range"},
		{"bad json.Number", struct {
			N json.Number
			B []byte
		}{N: "1x"}, "invalid number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			atts := [][]byte{b1}
			got, gotAtts, err := AppendValues(dst, atts, "a", b2, tt.v)
			if err == nil {
				t.Fatalf("AppendValues = %s, nil; want an error", got)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "parser: encode value 2: ") {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			equal(t, "dst", string(got), "keep")
			equal(t, "len(atts)", len(gotAtts), 1)
		})
	}
}

func TestAppendValuesConcurrent(t *testing.T) {
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				for _, tt := range valuesTests[:12] {
					got, _, err := AppendValues(nil, nil, tt.values...)
					if err != nil || string(got) != tt.want {
						t.Errorf("%s: %s, %v", tt.name, got, err)
						return
					}
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{1, -1, 0.1, 1e20, 1e21, 9.999999999999999e20, 1e-6, 9.99999e-7, 1e-7, 123456789, 1.5e300, 2.2250738585072014e-308, 4.9e-324} {
		want, _ := json.Marshal(f)
		equal(t, "appendFloat", string(appendFloat(nil, f, 64)), string(want))
		if math.IsInf(float64(float32(f)), 0) {
			continue
		}
		want32, _ := json.Marshal(float32(f))
		equal(t, "appendFloat 32", string(appendFloat(nil, float64(float32(f)), 32)), string(want32))
	}
}

type benchStruct struct {
	User string   `json:"user"`
	Text string   `json:"text"`
	TS   int64    `json:"ts"`
	Tags []string `json:"tags"`
}

type benchStructBinary struct {
	Name  string `json:"name"`
	Size  int    `json:"size"`
	Chunk []byte `json:"chunk"`
}

func BenchmarkAppendValues(b *testing.B) {
	chunk := make([]byte, 1024)
	cases := []struct {
		name   string
		values []any
	}{
		{"map", []any{"chat message", map[string]any{"user": "alice", "text": "hello world, how are you?", "ts": 1700000000000.0, "tags": []any{"a", "b"}}}},
		{"struct", []any{"chat message", &benchStruct{User: "alice", Text: "hello world, how are you?", TS: 1700000000000, Tags: []string{"a", "b"}}}},
		{"scalars", []any{"move", 12, 34.5, true, "north"}},
		{"bytes", []any{"upload", chunk}},
		{"map with bytes", []any{"upload", map[string]any{"name": "a.bin", "size": 1024, "chunk": chunk}}},
		{"struct with bytes", []any{"upload", &benchStructBinary{Name: "a.bin", Size: 1024, Chunk: chunk}}},
		{"raw", []any{"forward", Raw{JSON: []byte(`{"user":"alice","text":"hello world, how are you?","ts":1700000000000}`)}}},
		{"raw with bytes", []any{"forward", Raw{JSON: []byte(`{"name":"a.bin","chunk":{"_placeholder":true,"num":0}}`), Attachments: [][]byte{chunk}}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var dst []byte
			var atts [][]byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				dst, atts, err = AppendValues(dst[:0], atts[:0], c.values...)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(dst)))
		})
	}
}

func TestAppendFloatIntegers(t *testing.T) {
	for _, f := range []float64{1, -1, 12345, 1 << 52, 1<<53 - 1, -(1<<53 - 1), 1 << 53, 1<<53 + 2, 1e15, 123456789012, 0.5, 1e20, 2.5e-3} {
		want, _ := json.Marshal(f)
		equal(t, "appendFloat", string(appendFloat(nil, f, 64)), string(want))
		f32 := float64(float32(f))
		want32, _ := json.Marshal(float32(f))
		equal(t, "appendFloat 32", string(appendFloat(nil, f32, 32)), string(want32))
	}
}
