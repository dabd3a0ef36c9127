package parser

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestNewRawArgs(t *testing.T) {
	atts := [][]byte{b1, b2}
	args, err := NewRawArgs([]byte(`["ev", {"_placeholder":true,"num":1} ,3,{"x":[{"_placeholder":true,"num":0}]}]`), atts)
	noError(t, err)
	want := []string{`"ev"`, `{"_placeholder":true,"num":1}`, `3`, `{"x":[{"_placeholder":true,"num":0}]}`}
	equal(t, "len", len(args), len(want))
	for i, a := range args {
		equal(t, "JSON", string(a.JSON), want[i])
		if len(a.Attachments) != 2 || &a.Attachments[0] != &atts[0] {
			t.Errorf("arg %d does not share the attachments", i)
		}
	}

	args, err = NewRawArgs(nil, nil)
	if args != nil || err != nil {
		t.Errorf("nil data: %v, %v", args, err)
	}
	args, err = NewRawArgs([]byte(`[]`), nil)
	if len(args) != 0 || err != nil {
		t.Errorf("empty array: %v, %v", args, err)
	}
	args, err = NewRawArgs([]byte(`[1]`), [][]byte{})
	noError(t, err)
	if args[0].Attachments != nil {
		t.Error("empty attachment list kept")
	}
	if _, err := NewRawArgs([]byte(`{"a":1}`), nil); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("object: err = %v", err)
	}
	if _, err := NewRawArgs([]byte(`[1,`), nil); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("truncated: err = %v", err)
	}
	// More arguments than the stack buffer holds.
	many := "[" + strings.Repeat("1,", 40) + "2]"
	args, err = NewRawArgs([]byte(many), nil)
	noError(t, err)
	equal(t, "len", len(args), 41)
	equal(t, "last", string(args[40].JSON), "2")
}

func TestRawEncode(t *testing.T) {
	atts := [][]byte{b1, b2, b3}
	tests := []struct {
		name string
		raw  Raw
		want string
		atts [][]byte // appended after the leading b3 placeholder
	}{
		{"plain", Raw{JSON: []byte(`{"z":1,"a":[true,null]}`)}, `{"z":1,"a":[true,null]}`, nil},
		{"plain trimmed", Raw{JSON: []byte(" \n{\"z\" : 1}\t")}, `{"z" : 1}`, nil},
		{"empty", Raw{}, `null`, nil},
		{"placeholder-like without attachments", Raw{JSON: []byte(`{"_placeholder":true,"num":9}`)}, `{"_placeholder":true,"num":9}`, nil},
		{"placeholder", Raw{JSON: []byte(`{"_placeholder":true,"num":1}`), Attachments: atts},
			`{"_placeholder":true,"num":1}`, [][]byte{b2}},
		{"renumbered and canonical", Raw{JSON: []byte(`{"b":[{ "num" : 2 , "_placeholder" : true }],"a":{"num":0,"_placeholder":true,"extra":1}}`), Attachments: atts},
			`{"b":[{"_placeholder":true,"num":1}],"a":{"_placeholder":true,"num":2}}`, [][]byte{b3, b1}},
		{"same attachment twice", Raw{JSON: []byte(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]`), Attachments: atts},
			`[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]`, [][]byte{b1, b1}},
		{"not placeholders", Raw{JSON: []byte(`[{"_placeholder":false,"num":0},{"_placeholder":"true","num":0},"{\"_placeholder\":true,\"num\":0}"]`), Attachments: atts},
			`[{"_placeholder":false,"num":0},{"_placeholder":"true","num":0},"{\"_placeholder\":true,\"num\":0}"]`, nil},
		{"escaped keys", Raw{JSON: []byte(`{"\u005fplaceholder":true,"\u006eum":2}`), Attachments: atts},
			`{"_placeholder":true,"num":1}`, [][]byte{b3}},
		{"unicode kept", Raw{JSON: []byte(`["é\u00e9😀",{"_placeholder":true,"num":2}]`), Attachments: atts},
			`["é\u00e9😀",{"_placeholder":true,"num":1}]`, [][]byte{b3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotAtts, err := AppendValues(nil, nil, b3, tt.raw)
			noError(t, err)
			equal(t, "JSON", string(got), `[{"_placeholder":true,"num":0},`+tt.want+`]`)
			bytesList(t, "atts", gotAtts, append([][]byte{b3}, tt.atts...))
			// *Raw and []Raw, and Raw inside structs and maps, alike.
			got2, _, err := AppendValues(nil, nil, b3, &tt.raw)
			noError(t, err)
			equal(t, "*Raw", string(got2), string(got))
			ph0 := `[{"_placeholder":true,"num":0},`
			got3, _, err := AppendValues(nil, nil, b3, []Raw{{}, tt.raw})
			noError(t, err)
			equal(t, "[]Raw", string(got3), ph0+`[null,`+tt.want+`]]`)
			got4, atts4, err := AppendValues(nil, nil, b3, struct {
				R  Raw
				PP *Raw
			}{R: tt.raw})
			noError(t, err)
			equal(t, "struct", string(got4), ph0+`{"R":`+tt.want+`,"PP":null}]`)
			bytesList(t, "struct atts", atts4, gotAtts)
			got5, atts5, err := AppendValues(nil, nil, map[string]any{"m": map[string]Raw{"a": tt.raw, "b": tt.raw}, "p": &tt.raw})
			noError(t, err)
			if !json.Valid(got5) || len(atts5) != 3*len(tt.atts) {
				t.Errorf("map: %s, %d attachments", got5, len(atts5))
			}
		})
	}
}

func TestRawEncodeErrors(t *testing.T) {
	for _, raw := range []Raw{
		{JSON: []byte(`{"_placeholder":true,"num":1}`), Attachments: [][]byte{b1}},
		{JSON: []byte(`{"_placeholder":true}`), Attachments: [][]byte{b1}},
		{JSON: []byte(`[{"_placeholder":true,"num":-1}]`), Attachments: [][]byte{b1}},
		{JSON: []byte(`[1,`), Attachments: [][]byte{b1}},
		{JSON: []byte(`[1] 2`), Attachments: [][]byte{b1}},
	} {
		if got, _, err := AppendValues(nil, nil, raw); err == nil {
			t.Errorf("%s: %s, nil; want an error", raw.JSON, got)
		}
	}
}

type upload struct {
	Name  string   `json:"name"`
	Chunk []byte   `json:"chunk"`
	Parts [][]byte `json:"parts"`
	Meta  any      `json:"meta"`
}

func TestRawDecode(t *testing.T) {
	atts := [][]byte{b1, b2, b3}
	r := Raw{JSON: []byte(`{"name":"a.bin","chunk":{"_placeholder":true,"num":1},"parts":[{"_placeholder":true,"num":0},{"num":2,"_placeholder":true}],"meta":{"_placeholder":true,"num":2}}`), Attachments: atts}

	var u upload
	noError(t, r.Decode(&u))
	equal(t, "Name", u.Name, "a.bin")
	equal(t, "Chunk", string(u.Chunk), string(b2))
	bytesList(t, "Parts", u.Parts, [][]byte{b1, b3})
	equal(t, "Meta", u.Meta, any("AwMD")) // an `any` receives the base64 text

	var v any
	noError(t, r.Decode(&v))
	deepEqual(t, "any", v, map[string]any{"name": "a.bin", "chunk": b2, "parts": []any{b1, b3}, "meta": b3})

	val, err := r.Value()
	noError(t, err)
	deepEqual(t, "Value", val, v)

	var b []byte
	noError(t, Raw{JSON: []byte(` {"_placeholder":true,"num":2} `), Attachments: atts}.Decode(&b))
	if &b[0] != &b3[0] {
		t.Error("*[]byte: attachment not shared")
	}
	noError(t, Raw{JSON: []byte(`"AQI="`), Attachments: atts}.Decode(&b))
	equal(t, "base64 string", string(b), "\x01\x02")

	var s string
	noError(t, Raw{JSON: []byte(`"x"`), Attachments: atts}.Decode(&s))
	equal(t, "string", s, "x")
	noError(t, Raw{JSON: []byte(`"y"`)}.Decode(&s))
	equal(t, "string", s, "y")

	var copied Raw
	noError(t, r.Decode(&copied))
	equal(t, "copied JSON", string(copied.JSON), string(r.JSON))
	noError(t, Raw{JSON: []byte(`1`)}.Decode(&copied))
	equal(t, "copied JSON", string(copied.JSON), "1")

	// Without attachments, placeholder-like objects are plain objects.
	val, err = Raw{JSON: []byte(`{"_placeholder":true,"num":0}`)}.Value()
	noError(t, err)
	deepEqual(t, "plain", val, map[string]any{"_placeholder": true, "num": 0.0})

	// Placeholders nested in a placeholder are not looked at.
	val, err = Raw{JSON: []byte(`{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":9}}`), Attachments: atts}.Value()
	noError(t, err)
	deepEqual(t, "outer", val, b1)
}

func TestRawDecodeErrors(t *testing.T) {
	atts := [][]byte{b1}
	for _, j := range []string{
		`{"_placeholder":true,"num":1}`, `[{"_placeholder":true}]`, `{"_placeholder":true,"num":0.5}`,
		`{"_placeholder":true,"num":-1}`, `{"_placeholder":true,"num":"0"}`, `{"_placeholder":true,"num":1e300}`,
	} {
		r := Raw{JSON: []byte(j), Attachments: atts}
		var v any
		if err := r.Decode(&v); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("%s: Decode(*any) err = %v", j, err)
		}
		if _, err := r.Value(); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("%s: Value err = %v", j, err)
		}
		var u upload
		if err := r.Decode(&u); err == nil {
			t.Errorf("%s: Decode(*upload) succeeded", j)
		}
		var b []byte
		if err := r.Decode(&b); err == nil {
			t.Errorf("%s: Decode(*[]byte) succeeded", j)
		}
		if _, err := r.MarshalJSON(); err == nil {
			t.Errorf("%s: MarshalJSON succeeded", j)
		}
	}
	var n int
	err := Raw{JSON: []byte(`"x"`)}.Decode(&n)
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) || !strings.HasPrefix(err.Error(), "parser: raw value: ") {
		t.Errorf("type mismatch: err = %v", err)
	}
	if _, err := (Raw{JSON: []byte(`[1,`)}).Value(); err == nil {
		t.Error("invalid JSON: Value succeeded")
	}
}

func TestRawMarshalJSON(t *testing.T) {
	r := Raw{JSON: []byte(`{"b":{"_placeholder":true,"num":0},"a":[{"_placeholder":true,"num":1}]}`), Attachments: [][]byte{{1, 2, 255}, {}}}
	got, err := json.Marshal(struct{ R Raw }{r})
	noError(t, err)
	equal(t, "MarshalJSON", string(got), `{"R":{"b":{"type":"Buffer","data":[1,2,255]},"a":[{"type":"Buffer","data":[]}]}}`)
	got, err = json.Marshal(Raw{})
	noError(t, err)
	equal(t, "empty", string(got), `null`)
	got, err = json.Marshal(Raw{JSON: []byte(`[1,"<>"]`)})
	noError(t, err)
	equal(t, "plain", string(got), `[1,"\u003c\u003e"]`) // encoding/json's own HTML escaping
}
