package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestNumIndex(t *testing.T) {
	for tok, want := range map[string]int{
		`0`: 0, `7`: 7, `1.0`: 1, `1e0`: 1, `-0`: 0, `-0.0`: 0, `0.5`: -1, `-1`: -1, `"0"`: -1, `null`: -1,
		`true`: -1, `{}`: -1, `99999999999999999999999`: MaxNum, `1e400`: MaxNum, `1e-400`: 0, `2147483648`: MaxNum,
		`1073741823`: MaxNum - 1, `1073741824`: MaxNum, `1073741824.5`: -1, `1e30`: MaxNum, `-1e400`: -1, ``: -1,
	} {
		if got := numIndex([]byte(tok)); got != want {
			t.Errorf("numIndex(%s) = %d, want %d", tok, got, want)
		}
	}
}

func TestKeyOf(t *testing.T) {
	for _, k := range []string{
		`"_placeholder"`, `"num"`, `"_pl\u0061ceholder"`, `"\u005f\u0070\u006C\u0061\u0063\u0065\u0068\u006f\u006c\u0064\u0065\u0072"`,
		`"n\u0075m"`, `"\u006eum"`, `"nu"`, `"numm"`, `"_placeholderx"`, `"_placeholder\u0000"`, `"\u0000num"`,
		`"n\"um"`, `"num\n"`, `"n\/um"`, `"\u00e9num"`, `"\ud83d\ude00"`, `"_placeholder_placeholder"`, `""`, `"\u0022"`,
		"\"n\xffum\"", `"NUM"`,
	} {
		var s string
		if err := json.Unmarshal([]byte(k), &s); err != nil {
			t.Fatal(err)
		}
		want := keyOther
		switch s {
		case "_placeholder":
			want = keyPlaceholder
		case "num":
			want = keyNum
		}
		if got := keyOf([]byte(k), strings.Contains(k, `\`)); got != want {
			t.Errorf("keyOf(%s) = %d, want %d", k, got, want)
		}
	}
}

func TestUnquote(t *testing.T) {
	for _, tok := range []string{
		`""`, `"plain"`, `"a\"\\\/\b\f\n\r\t\u00e9"`, `"\ud83d\ude00"`, `"\ud83d!"`, `"\ude00\ud83d"`, `"\ud83d\u0041"`,
		`"\ud83d"`, "\"\xff\xc3\x28 é\"", "\"\xed\xa0\x80\"",
	} {
		checkUnquote(t, []byte(tok))
	}
}

func TestPlaceholders(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Placeholder
	}{
		{`{"_placeholder":true,"num":0}`, []Placeholder{{0, 29, 0}}},
		{`{"num":3,"_placeholder":true}`, []Placeholder{{0, 29, 3}}},
		{` [1, {"_placeholder":true,"num":1} ] `, []Placeholder{{5, 34, 1}}},
		{`{"_placeholder":true}`, []Placeholder{{0, 21, -1}}},
		{`{"_placeholder":true,"num":"0"}`, []Placeholder{{0, 31, -1}}},
		{`{"_placeholder":true,"num":[0]}`, []Placeholder{{0, 31, -1}}},
		{`{"_placeholder":true,"num":0,"num":-1}`, []Placeholder{{0, 38, -1}}},
		{`{"_placeholder":true,"num":1e0}`, []Placeholder{{0, 31, 1}}},
		{`{"_placeholder":"true","num":0}`, nil},
		{`{"_placeholder":1,"num":0}`, nil},
		{`{"_placeholder":{},"num":0}`, nil},
		{`{"_placeholder":true,"_placeholder":false,"num":0}`, nil},
		{`{"_placeholder":false,"_placeholder":true,"num":0}`, []Placeholder{{0, 50, 0}}},
		{`{"_pl\u0061ceholder":true,"n\u0075m":2}`, []Placeholder{{0, 39, 2}}},
		// Placeholders inside a placeholder are not looked at, however bad;
		// inside anything else they are found.
		{`{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":9},"y":[{"_placeholder":true}]}`, []Placeholder{{0, 91, 0}}},
		{`{"x":{"_placeholder":true,"num":9},"_placeholder":true,"num":0}`, []Placeholder{{0, 63, 0}}},
		{`{"x":{"_placeholder":true,"num":9},"_placeholder":false}`, []Placeholder{{5, 34, 9}}},
		{`[{"_placeholder":true,"num":1},[{"a":{"num":0,"_placeholder":true}}]]`, []Placeholder{{1, 30, 1}, {37, 66, 0}}},
	} {
		for _, recurseTo := range []int{0, -1} {
			s := Scanner{FindPlaceholders: true, recurseTo: recurseTo}
			if _, _, err := s.Whole([]byte(tt.in)); err != nil {
				t.Fatalf("%s: %v", tt.in, err)
			}
			if len(s.Placeholders) != len(tt.want) || len(tt.want) > 0 && !reflect.DeepEqual(s.Placeholders, tt.want) {
				t.Errorf("%s (recurseTo %d): %v, want %v", tt.in, recurseTo, s.Placeholders, tt.want)
			}
			// Not asked for, not found.
			s.FindPlaceholders = false
			if _, _, err := s.Whole([]byte(tt.in)); err != nil || len(s.Placeholders) != 0 {
				t.Errorf("%s without FindPlaceholders: %v, %v", tt.in, s.Placeholders, err)
			}
		}
	}
}

func TestContainers(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Container
	}{
		{`1`, nil},
		{`[]`, []Container{{2, 0, 1}}},
		{` { } `, []Container{{4, 0, 1}}},
		{`[1,[2,3],{"a":{},"b":[[]]},4]`, []Container{{29, 4, 6}, {8, 2, 2}, {26, 2, 6}, {16, 0, 4}, {25, 1, 6}, {24, 0, 6}}},
		{`{"a":1,"a":2}`, []Container{{13, 2, 1}}},
	} {
		for _, recurseTo := range []int{0, -1} {
			s := Scanner{RecordContainers: true, recurseTo: recurseTo}
			if _, _, err := s.Whole([]byte(tt.in)); err != nil {
				t.Fatalf("%s: %v", tt.in, err)
			}
			if len(s.Containers) != len(tt.want) || len(tt.want) > 0 && !reflect.DeepEqual(s.Containers, tt.want) {
				t.Errorf("%s (recurseTo %d): %v, want %v", tt.in, recurseTo, s.Containers, tt.want)
			}
		}
	}
}

// TestSyntaxErrors: what is rejected, with encoding/json's messages.
func TestSyntaxErrors(t *testing.T) {
	for in, want := range map[string]string{
		``:                  `unexpected end of JSON input at offset 0`,
		` `:                 `unexpected end of JSON input at offset 1`,
		`1 2`:               `invalid character '2' after top-level value at offset 2`,
		`tru`:               `unexpected end of JSON input at offset 3`,
		`trux`:              `invalid character 'x' in literal true (expecting 'e') at offset 3`,
		`"abc`:              `unexpected end of JSON input at offset 4`,
		"\"a\x01\"":         `invalid character '\x01' in string literal at offset 2`,
		`"\x"`:              `invalid character 'x' in string escape code at offset 2`,
		`"\u12g4"`:          `invalid character 'g' in \u hexadecimal character escape at offset 5`,
		`{"a" 1}`:           `invalid character '1' after object key at offset 5`,
		`{1:1}`:             `invalid character '1' looking for beginning of object key string at offset 1`,
		`{"a":1 "b":2}`:     `invalid character '"' after object key:value pair at offset 7`,
		`[1,]`:              `invalid character ']' looking for beginning of value at offset 3`,
		`[1 2]`:             `invalid character '2' after array element at offset 3`,
		`01`:                `invalid character '1' after top-level value at offset 1`,
		`-`:                 `unexpected end of JSON input at offset 1`,
		`1.`:                `unexpected end of JSON input at offset 2`,
		`1.e1`:              `invalid character 'e' after decimal point in numeric literal at offset 2`,
		`1e+`:               `unexpected end of JSON input at offset 3`,
		`-x`:                `invalid character 'x' in numeric literal at offset 1`,
		"\xff":              `invalid character '\xff' looking for beginning of value at offset 0`,
		deep(MaxDepth+1, 0): `exceeded max nesting depth at offset 10000`,
	} {
		for _, recurseTo := range []int{0, -1} {
			s := Scanner{FindPlaceholders: true, RecordContainers: true, recurseTo: recurseTo}
			_, _, err := s.Whole([]byte(in))
			var se *SyntaxError
			if !errors.As(err, &se) || err.Error() != want {
				t.Errorf("%.40q (recurseTo %d): %v, want %s", in, recurseTo, err, want)
			}
			if json.Valid([]byte(in)) {
				t.Errorf("%.40q: encoding/json accepts it", in)
			}
		}
	}
}

func TestAppendElements(t *testing.T) {
	got, err := AppendElements([]json.RawMessage{json.RawMessage("x")}, []byte(" [ \"a\" ,\n{ \"b\" : [ 1 , 2 ] } , -1.5e+3 ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`x`, `"a"`, `{ "b" : [ 1 , 2 ] }`, `-1.5e+3`}
	if len(got) != len(want) {
		t.Fatalf("%q, want %q", got, want)
	}
	for i := range got {
		if string(got[i]) != want[i] || cap(got[i]) != len(got[i]) && i > 0 {
			t.Errorf("element %d: %q (cap %d), want %q", i, got[i], cap(got[i]), want[i])
		}
	}
	if got, err := AppendElements[[]byte](nil, []byte(` [ ] `)); err != nil || len(got) != 0 {
		t.Errorf("empty array: %q, %v", got, err)
	}
	for in, want := range map[string]error{`{}`: ErrNotArray, ` 1 `: ErrNotArray, `{`: &SyntaxError{}, `[1] x`: &SyntaxError{}, `[1,]`: &SyntaxError{}} {
		_, err := AppendElements[[]byte](nil, []byte(in))
		if reflect.TypeOf(err) != reflect.TypeOf(want) || want == ErrNotArray && err != ErrNotArray {
			t.Errorf("%q: %v, want %T", in, err, want)
		}
	}
	// The array itself counts as a level.
	if _, err := AppendElements[[]byte](nil, []byte(deep(MaxDepth, 0))); err != nil {
		t.Errorf("nested %d deep: %v", MaxDepth, err)
	}
	if _, err := AppendElements[[]byte](nil, []byte(deep(MaxDepth+1, 0))); err == nil {
		t.Errorf("nested %d deep: no error", MaxDepth+1)
	}
}

// plainPrefix agrees with plainStringByte on every pair of byte values in
// every position.
func TestPlainPrefix(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			for pos := range 7 {
				var w [8]byte
				for k := range w {
					w[k] = 'x'
				}
				w[pos], w[pos+1] = byte(a), byte(b)
				want := 0
				for want < 8 && plainStringByte[w[want]] {
					want++
				}
				if got := plainPrefix(binary.LittleEndian.Uint64(w[:])); got != want {
					t.Fatalf("% x: plainPrefix %d, want %d", w, got, want)
				}
			}
		}
	}
}
