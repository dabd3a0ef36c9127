package parser

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var splitTests = []struct {
	in   string
	want []string
}{
	{`[]`, nil},
	{` [ ] `, nil},
	{`[1]`, []string{`1`}},
	{`["a",1,true,false,null,{},[]]`, []string{`"a"`, `1`, `true`, `false`, `null`, `{}`, `[]`}},
	{" \t\r\n[ \"a\" ,\n{ \"b\" : [ 1 , 2 ] } , -1.5e+3 ]\n", []string{`"a"`, `{ "b" : [ 1 , 2 ] }`, `-1.5e+3`}},
	{`["a,]\"[",{"x":"]"},[[],[[]]]]`, []string{`"a,]\"["`, `{"x":"]"}`, `[[],[[]]]`}},
	{`["\u00e9\ud83d\ude00","é"]`, []string{`"\u00e9\ud83d\ude00"`, `"é"`}},
	{`["message",1,"2",{"3":[true]}]`, []string{`"message"`, `1`, `"2"`, `{"3":[true]}`}},
}

var splitErrorTests = []string{
	``, ` `, `{}`, `"a"`, `1`, `null`, `[`, `]`, `[1,]`, `[,1]`, `[1 2]`, `[1]]`, `[1] x`, `[1][2]`,
	`["a]`, `[{]`, `[{"a"}]`, `[01]`, `[tru]`, "[\"\x01\"]", `[1,2`,
	strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
}

func TestSplitArray(t *testing.T) {
	for _, tt := range splitTests {
		got, err := SplitArray(json.RawMessage(tt.in))
		noError(t, err)
		if len(got) != len(tt.want) {
			t.Errorf("SplitArray(%q) = %q, want %q", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			equal(t, "element", string(got[i]), tt.want[i])
			if cap(got[i]) != len(got[i]) {
				t.Errorf("element %d has spare capacity", i)
			}
		}
	}
	// Deep but allowed nesting.
	deep := "[" + strings.Repeat("[", maxNesting-1) + strings.Repeat("]", maxNesting-1) + "]"
	if _, err := SplitArray(json.RawMessage(deep)); err != nil {
		t.Errorf("nesting %d: %v", maxNesting, err)
	}
}

func TestSplitArrayErrors(t *testing.T) {
	for _, in := range splitErrorTests {
		if got, err := SplitArray(json.RawMessage(in)); err == nil || !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("SplitArray(%.40q) = %q, %v; want an ErrInvalidPacket error", in, got, err)
		}
	}
}

func BenchmarkSplitArray(b *testing.B) {
	data := json.RawMessage(`["chat message",{"user":"alice","text":"hello world, how are you?","ts":1700000000000,"tags":["a","b"]},42,"tail \"quoted\" \u00e9"]`)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SplitArray(data); err != nil {
			b.Fatal(err)
		}
	}
}
