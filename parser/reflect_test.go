package parser

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net"
	"testing"
	"time"
)

type (
	conflictA struct {
		Name string
		A    int
	}
	conflictB struct {
		Name string
		B    int
	}
	conflictTagged struct {
		Name string `json:"Name"`
	}
	conflicts struct {
		conflictA
		conflictB
	}
	conflictsTagged struct {
		conflictA
		conflictTagged
	}
	deepEmbed struct {
		conflicts
		Name string
	}
	twice struct {
		conflictA
		Other struct{ conflictA }
	}
	unexportedEmbed struct {
		point
		hidden int
	}
	tagged struct {
		A  int                        `json:"alpha"`
		B  string                     `json:"beta,omitempty"`
		C  []int                      `json:",omitempty"`
		D  map[string]int             `json:"d,omitempty"`
		E  *int                       `json:"e,omitempty"`
		F  any                        `json:"f,omitempty"`
		G  bool                       `json:"g,omitempty"`
		H  float64                    `json:"h,omitempty"`
		I  uint8                      `json:"i,omitempty"`
		J  [0]int                     `json:"j,omitempty"`
		K  struct{}                   `json:"k,omitempty"`
		L  int                        `json:"-,"` //lint:ignore SA5008 deliberate: encoding/json names this field "-", the walk must too
		M  int                        `json:"-"`
		N  string                     `json:"invalid\"name"` //lint:ignore SA5008 deliberate: encoding/json ignores an invalid name (the key is "N"), the walk must too
		O  string                     `json:"!#$%&()*+-./:;<=>?@[]^_{|}~ "`
		P  string                     `json:"ünï"`
		Q  int64                      `json:"q,string"`
		R  *bool                      `json:"r,string"`
		S  string                     `json:"s,string,omitempty"`
		T  time.Time                  `json:"t,omitzero"`
		U  *time.Time                 `json:"u,omitzero"`
		V  zeroer                     `json:"v,omitzero"`
		W  *zeroer                    `json:"w,omitzero"`
		X  []string                   `json:"x,omitzero"`
		Y  interface{ IsZero() bool } `json:"y,omitzero"`
		Z  [2]int                     `json:"z,omitzero"`
		ZZ json.Number                `json:"zz,string"`
	}
	anyHolder struct {
		V any
		M map[string]any
		S []any
	}
	withMarshalers struct {
		Time  time.Time
		PTime *time.Time
		IP    net.IP
		Big   *big.Int
		Text  textMarshaler
		JSON  jsonMarshaler
		Ptr   ptrMarshaler
		PPtr  *ptrMarshaler
		Keys  map[textKey]int
		IKeys map[int8]string
		UKeys map[uint]bool
	}
	recursive struct {
		Name     string
		Children []*recursive
		Parent   *recursive `json:"-"`
	}
)

func TestWalkMatchesEncodingJSON(t *testing.T) {
	i, yes := 5, true
	now := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	values := []any{
		nil, true, 0, -12, uint8(200), 3.25, float32(2.5), "str<&>",
		[]int{1, 2}, []int(nil), []string{}, [3]int{1, 2, 3}, [0]string{}, [2][]int{{1}, nil},
		map[string]int{"b": 1, "a": 2}, map[string]int(nil), map[int]string{10: "x", 2: "y", -3: "z"},
		map[uint64]bool{18446744073709551615: true}, map[textKey]string{3: "c", 1: "a"},
		point{1, 2}, &point{3, 4}, (*point)(nil), []*point{{5, 6}, nil},
		conflicts{conflictA{"a", 1}, conflictB{"b", 2}},
		conflictsTagged{conflictA{"a", 1}, conflictTagged{"t"}},
		deepEmbed{conflicts{conflictA{"a", 1}, conflictB{"b", 2}}, "top"},
		twice{conflictA: conflictA{"x", 1}},
		unexportedEmbed{point{7, 8}, 9},
		tagged{}, tagged{A: 1, B: "b", C: []int{1}, D: map[string]int{"k": 1}, E: &i, F: "f", G: true, H: 1.5,
			I: 1, L: 2, M: 3, N: "n", O: "o", P: "p", Q: 42, R: &yes, S: "s", T: now, U: &now, V: zeroer{42},
			W: &zeroer{1}, X: []string{}, Y: zeroer{3}, Z: [2]int{0, 1}, ZZ: "12"},
		tagged{V: zeroer{1}, W: &zeroer{42}, Y: (*zeroer)(nil)},
		anyHolder{V: []any{1, "x", map[string]any{"n": nil}}, M: map[string]any{"z": 1, "a": []int{1}}, S: []any{point{1, 2}}},
		anyHolder{},
		withMarshalers{Time: now, PTime: &now, IP: net.IPv4(1, 2, 3, 4), Big: big.NewInt(12345678901234),
			Text: textMarshaler{"t"}, PPtr: &ptrMarshaler{}, Keys: map[textKey]int{2: 2, 1: 1},
			IKeys: map[int8]string{-1: "m", 1: "p"}, UKeys: map[uint]bool{7: true}},
		&withMarshalers{},
		&recursive{Name: "root", Children: []*recursive{{Name: "c1"}, {Name: "c2", Children: []*recursive{}}}},
		json.RawMessage(`{"x":[1,2]}`), json.Number("-0.5e-3"),
		struct {
			A int `json:"a"`
			b int
		}{1, 2},
		map[string]any{"nested": map[string]any{"deeper": []any{map[string]any{}}}},
	}
	for _, v := range values {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatalf("encoding/json %T: %v", v, err)
		}
		wantJSON := bytes.TrimSuffix(want.Bytes(), []byte("\n"))

		e := encoder{force: 1}
		err := e.value(v)
		e.release()
		noError(t, err)
		if !bytes.Equal(e.buf, wantJSON) {
			t.Errorf("%T walked:\n got %s\nwant %s", v, e.buf, wantJSON)
		}
		got, _, err := AppendValue(nil, nil, v)
		noError(t, err)
		if !bytes.Equal(got, wantJSON) {
			t.Errorf("%T:\n got %s\nwant %s", v, got, wantJSON)
		}
	}
}

func TestTypeInfo(t *testing.T) {
	tests := []struct {
		v           any
		walk, float bool
	}{
		{point{}, false, false},
		{benchStruct{}, false, false},
		{benchStructBinary{}, true, false},
		{[]float64{}, false, true},
		{map[string][]byte{}, true, false},
		{[]any{}, true, false},
		{recursive{}, false, false},
		{cyclic{}, true, false},
		{Raw{}, true, false},
		{&Raw{}, true, false},
		{[]Raw{}, true, false},
		{jsonMarshaler{}, false, false},
		{textMarshaler{}, false, false},
		{time.Time{}, false, false},
		{json.RawMessage{}, false, false},
		{blob{}, true, false},
		{[4]byte{}, false, false},
		{withBinary{}, true, false},
		{struct {
			F float32
			s []byte
		}{}, false, true},
		{struct {
			B []byte `json:"-"`
		}{}, false, false},
	}
	for _, tt := range tests {
		ti := typeInfoOf(reflectTypeOf(tt.v))
		if ti.walk != tt.walk || ti.float != tt.float {
			t.Errorf("%T: walk=%v float=%v, want %v %v", tt.v, ti.walk, ti.float, tt.walk, tt.float)
		}
	}
}

func TestFixStd(t *testing.T) {
	for in, want := range map[string]string{
		`-0`:                       `0`,
		`[-0,-0.5,-0e1,-01,"-0"]`:  `[0,-0.5,-0e1,-01,"-0"]`,
		`{"a":-0}`:                 `{"a":0}`,
		`"\u2028\u2029"`:           "\"\u2028\u2029\"",
		`"\\u2028"`:                `"\\u2028"`,
		`["\"\u2028",-0,"\u2027"]`: "[\"\\\"\u2028\",0,\"\\u2027\"]",
	} {
		got := fixStd([]byte("x"+in), 1, true)
		equal(t, "fixStd("+in+")", string(got), "x"+want)
	}
	equal(t, "no float", string(fixStd([]byte(`[-0]`), 0, false)), `[-0]`)
}

func TestAppendCompact(t *testing.T) {
	in := " { \"a b\" : [ 1 , \"x \\\" y\" ] ,\n\t\"c\" : { } } "
	equal(t, "appendCompact", string(appendCompact(nil, []byte(in))), `{"a b":[1,"x \" y"],"c":{}}`)
}
