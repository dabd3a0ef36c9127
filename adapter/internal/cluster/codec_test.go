package cluster

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// toJSON transcodes a whole msgpack value.
func toJSON(t testing.TB, msg []byte, mode BinaryMode) (string, [][]byte, error) {
	t.Helper()
	js, atts, err := MsgpackToJSON(msg, mode)
	return string(js), atts, err
}

// toMsgpack transcodes a JSON value with its attachments.
func toMsgpack(js string, atts [][]byte) ([]byte, error) {
	return JSONToMsgpack([]byte(js), atts)
}

func TestMsgpackToJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
		atts           [][]byte
	}{
		{"fixint", "00", "0", nil},
		{"fixint max", "7f", "127", nil},
		{"negative fixint", "e0", "-32", nil},
		{"-1", "ff", "-1", nil},
		{"uint8", "cc ff", "255", nil},
		{"uint16", "cd ff ff", "65535", nil},
		{"uint32", "ce ff ff ff ff", "4294967295", nil},
		{"uint64 exact", "cf 00 1f ff ff ff ff ff ff", "9007199254740991", nil},
		{"uint64 rounded as JS", "cf ff ff ff ff ff ff ff ff", "18446744073709552000", nil},
		{"int8", "d0 80", "-128", nil},
		{"int16", "d1 80 00", "-32768", nil},
		{"int32", "d2 80 00 00 00", "-2147483648", nil},
		{"int64", "d3 80 00 00 00 00 00 00 00", "-9223372036854776000", nil},
		{"float64", "cb 40 0c 00 00 00 00 00 00", "3.5", nil},
		{"float64 tiny", "cb 3e 7a d7 f2 9a bc af 48", "1e-7", nil},
		{"float64 huge", "cb 44 4b 1a e4 d6 e2 ef 50", "1e+21", nil},
		{"float64 NaN", "cb 7f f8 00 00 00 00 00 00", "null", nil},
		{"float64 -0", "cb 80 00 00 00 00 00 00 00", "0", nil},
		{"float32 as a double", "ca 3d cc cc cd", "0.10000000149011612", nil},
		{"nil", "c0", "null", nil},
		{"bools", "92 c2 c3", "[false,true]", nil},
		{"fixstr", `a5 "hello"`, `"hello"`, nil},
		{"str8", "d9 03 " + `"abc"`, `"abc"`, nil},
		{"escapes", `a6 22 5c 0a 01 e2 82`, `"\"\\\n\u0001\ufffd\ufffd"`, nil},
		{"utf-8", "a3 e2 82 ac", `"€"`, nil},
		{"U+2028 literal", "a3 e2 80 a8", "\"\u2028\"", nil},
		{"bin", "c4 03 01 02 03", `{"_placeholder":true,"num":0}`, [][]byte{{1, 2, 3}}},
		{"empty bin", "c4 00", `{"_placeholder":true,"num":0}`, [][]byte{{}}},
		{"bin order", "92 c4 01 0a 81 a1 \"k\" c5 00 01 0b", `[{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1}}]`, [][]byte{{10}, {11}}},
		{"map order kept", `82 a1 "b" 01 a1 "a" 02`, `{"b":1,"a":2}`, nil},
		{"timestamp 32", "d6 ff 00 00 00 00", `"1970-01-01T00:00:00.000Z"`, nil},
		{"timestamp 64", "d7 ff 6c b8 1c 00 5f 5e 10 00", `"2020-09-13T12:26:40.456Z"`, nil},
		{"timestamp 96", "c7 0c ff 00 00 00 00 ff ff ff ff ff ff ff ff", `"1969-12-31T23:59:59.000Z"`, nil},
		{"timestamp 96 invalid date", "c7 0c ff 00 00 00 00 7f ff ff ff ff ff ff ff", "null", nil},
		{"notepack 2 date", "d7 00 00 00 00 00 00 00 03 e8", `"1970-01-01T00:00:01.000Z"`, nil},
		{"notepack 2 undefined in array", "92 01 d4 00 00", "[1,null]", nil},
		{"undefined member omitted", `82 a1 "a" d4 00 00 a1 "b" 01`, `{"b":1}`, nil},
		{"only undefined member", `81 a1 "a" d4 00 00`, `{}`, nil},
		{"top-level undefined", "d4 00 00", "null", nil},
		{"notepack 2 ArrayBuffer", "c7 02 00 01 02", `{"_placeholder":true,"num":0}`, [][]byte{{1, 2}}},
		{"other extension", "d5 07 01 02", `[7,{"_placeholder":true,"num":0}]`, [][]byte{{1, 2}}},
		{"negative extension type", "d4 fe 09", `[-2,{"_placeholder":true,"num":0}]`, [][]byte{{9}}},
		{"integer key", "81 01 02", `{"1":2}`, nil},
		{"float key", "81 cb 3f f8 00 00 00 00 00 00 02", `{"1.5":2}`, nil},
		{"nil key", "81 c0 02", `{"null":2}`, nil},
		{"bool key", "81 c3 02", `{"true":2}`, nil},
		{"array key", "81 93 01 c0 a1 \"x\" 02", `{"1,,x":2}`, nil},
		{"map key", "81 80 02", `{"[object Object]":2}`, nil},
		{"bin key", "81 c4 02 68 69 02", `{"hi":2}`, nil},
		{"date key", "81 d6 ff 00 00 00 00 02", `{"Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)":2}`, nil},
		{"array16", "dc 00 02 01 02", "[1,2]", nil},
		{"map16", "de 00 01 a1 \"k\" 01", `{"k":1}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, atts, err := toJSON(t, testkit.Msgpack(t, tt.in), BinPlaceholder)
			testkit.NoError(t, err)
			testkit.Equal(t, got, tt.want)
			if len(tt.atts) > 0 || len(atts) > 0 {
				testkit.Equal(t, atts, tt.atts)
			}
		})
	}
}

func TestMsgpackToJSONBufferMode(t *testing.T) {
	got, atts, err := toJSON(t, testkit.Msgpack(t, `82 a1 "b" c4 02 01 ff a1 "c" 90`), BinBufferJSON)
	testkit.NoError(t, err)
	testkit.Equal(t, got, `{"b":{"type":"Buffer","data":[1,255]},"c":[]}`)
	testkit.Equal(t, len(atts), 0)
}

func TestMsgpackToJSONErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":                     "",
		"truncated str":             "a5 68",
		"truncated uint16":          "cd 01",
		"bin32 longer than message": "c6 ff ff ff ff 00",
		"array longer than message": "dd ff ff ff ff 01",
		"map missing value":         "81 01",
		"reserved code c1":          "c1",
		"timestamp 96 bad length":   "c7 04 ff 00 00 00 00",
		"ext longer than message":   "c9 ff ff ff ff 05 00",
	} {
		t.Run(name, func(t *testing.T) {
			r := GetReader(testkit.Msgpack(t, in))
			defer PutReader(r)
			_, _, err := r.ToJSON(nil, nil, BinPlaceholder)
			testkit.True(t, err != nil, "no error for %q", in)
		})
	}
	// Nesting beyond the limit is refused, not a stack overflow.
	deep := bytes.Repeat([]byte{0x91}, MaxDepth+5)
	deep = append(deep, 0x01)
	r := GetReader(deep)
	_, _, err := r.ToJSON(nil, nil, BinPlaceholder)
	PutReader(r)
	testkit.True(t, err != nil, "no error for deep nesting")
}

func TestJSONToMsgpack(t *testing.T) {
	tests := []struct {
		name, in, want string
		atts           [][]byte
	}{
		{"doc A.5 data", `["hello",1,"two",{"three":3.5}]`, `94 a5 "hello" 01 a3 "two" 81 a5 "three" cb 40 0c 00 00 00 00 00 00`, nil},
		{"zero", "0", "00", nil},
		{"minus zero", "-0", "00", nil},
		{"minus zero float", "-0.0", "00", nil},
		{"127", "127", "7f", nil},
		{"128", "128", "cc 80", nil},
		{"255", "255", "cc ff", nil},
		{"256", "256", "cd 01 00", nil},
		{"65536", "65536", "ce 00 01 00 00", nil},
		{"2^32", "4294967296", "cf 00 00 00 01 00 00 00 00", nil},
		{"integral exponent", "1e3", "cd 03 e8", nil},
		{"integral fraction", "2.0", "02", nil},
		{"-1", "-1", "ff", nil},
		{"-32", "-32", "e0", nil},
		{"-33", "-33", "d0 df", nil},
		{"-128", "-128", "d0 80", nil},
		{"-129", "-129", "d1 ff 7f", nil},
		{"-32769", "-32769", "d2 ff ff 7f ff", nil},
		{"-2^31-1", "-2147483649", "d3 ff ff ff ff 7f ff ff ff", nil},
		{"2^64 wraps as notepack", "18446744073709551616", "cf 00 00 00 00 00 00 00 00", nil},
		{"-2^63-2^11 wraps", "-9223372036854777856", "d3 7f ff ff ff ff ff f8 00", nil},
		{"fraction", "1.5", "cb 3f f8 00 00 00 00 00 00", nil},
		{"overflow is Infinity", "1e400", "cb 7f f0 00 00 00 00 00 00", nil},
		{"underflow is 0", "1e-400", "00", nil},
		{"literals", "[true,false,null]", "93 c3 c2 c0", nil},
		{"whitespace", " [ 1 , { \"a\" : 2 } ] ", `92 01 81 a1 "a" 02`, nil},
		{"escapes", `"a\"\\\/\b\f\n\r\t\u00e9"`, `ab 61 22 5c 2f 08 0c 0a 0d 09 c3 a9`, nil},
		{"surrogate pair", `"\ud83d\ude00"`, "a4 f0 9f 98 80", nil},
		{"lone surrogate", `"\ud83d!"`, "a4 ef bf bd 21", nil},
		{"str8", `"` + strings.Repeat("x", 32) + `"`, "d9 20 " + `"` + strings.Repeat("x", 32) + `"`, nil},
		{"empty containers", `[[],{}]`, "92 90 80", nil},
		{"array16", "[" + strings.Repeat("0,", 15) + "0]", "dc 00 10 " + strings.Repeat("00 ", 16), nil},
		{"map order kept", `{"b":1,"a":2}`, `82 a1 "b" 01 a1 "a" 02`, nil},
		{"placeholder", `["x",{"_placeholder":true,"num":0}]`, `92 a1 "x" c4 02 01 02`, [][]byte{{1, 2}}},
		{"placeholder keys in any order", `{"num":1,"_placeholder":true}`, `c4 01 09`, [][]byte{{8}, {9}}},
		{"placeholder with nested placeholder", `{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":1}}`, `c4 01 08`, [][]byte{{8}, {9}}},
		// Node's reconstructPacket does not look inside a placeholder, and
		// neither does the parser: a bad one nested inside is no error.
		{"out-of-range placeholder inside a placeholder", `{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":5}}`, `c4 01 08`, [][]byte{{8}}},
		{"placeholders after a placeholder", `[{"_placeholder":true,"num":1,"x":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":0}]`, `92 c4 01 09 c4 01 08`, [][]byte{{8}, {9}}},
		{"containers after a placeholder", `[{"_placeholder":true,"num":0,"x":[1]},[2]]`, `92 c4 01 08 91 02`, [][]byte{{8}}},
		{"no attachments: plain object", `{"_placeholder":true,"num":0}`, `82 ac "_placeholder" c3 a3 "num" 00`, nil},
		{"placeholder false", `{"_placeholder":false,"num":0}`, `82 ac "_placeholder" c2 a3 "num" 00`, [][]byte{{1}}},
		{"later duplicate wins", `{"_placeholder":true,"_placeholder":false,"num":0}`, `83 ac "_placeholder" c3 ac "_placeholder" c2 a3 "num" 00`, [][]byte{{1}}},
		{"escaped key", `{"_placeholder":true,"n\u0075m":0}`, `c4 01 01`, [][]byte{{1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toMsgpack(tt.in, tt.atts)
			testkit.NoError(t, err)
			testkit.Equal(t, hex.EncodeToString(got), hex.EncodeToString(testkit.Msgpack(t, tt.want)))
		})
	}
}

func TestJSONToMsgpackErrors(t *testing.T) {
	for name, tt := range map[string]struct {
		in   string
		atts [][]byte
	}{
		"empty":                    {"", nil},
		"trailing":                 {"1 2", nil},
		"bad literal":              {"tru", nil},
		"unterminated":             {`"abc`, nil},
		"control char":             {"\"a\x01\"", nil},
		"bad escape":               {`"\x"`, nil},
		"bad unicode escape":       {`"\u12g4"`, nil},
		"missing colon":            {`{"a" 1}`, nil},
		"trailing comma":           {`[1,]`, nil},
		"leading zero":             {`01`, nil},
		"placeholder out of range": {`{"_placeholder":true,"num":1}`, [][]byte{{1}}},
		"placeholder without num":  {`{"_placeholder":true}`, [][]byte{{1}}},
		"negative num":             {`{"_placeholder":true,"num":-1}`, [][]byte{{1}}},
		"fractional num":           {`{"_placeholder":true,"num":0.5}`, [][]byte{{1}}},
		"too deep":                 {strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := toMsgpack(tt.in, tt.atts)
			testkit.True(t, err != nil, "no error for %q", tt.in)
		})
	}
}

// TestRoundTrip: JSON → msgpack → JSON gives the JSON back (in its compact,
// JavaScript form), binary attachments included.
func TestRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		atts     [][]byte
	}{
		{`["a",1,-2,3.25,true,false,null,{"k":[{}],"é":"\u2028"}]`, "[\"a\",1,-2,3.25,true,false,null,{\"k\":[{}],\"é\":\"\u2028\"}]", nil},
		{`[ 1e3 , 1E-7, 0.1, -0, 123456789012345678901234567890 ]`, `[1000,1e-7,0.1,0,14083846750322295000]`, nil}, // notepack keeps the low 64 bits of integers >= 2^64
		{`["bin",{"_placeholder":true,"num":1},[{"num":0,"_placeholder":true}]]`, `["bin",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]`, [][]byte{{1}, {2, 3}}},
	} {
		m, err := toMsgpack(tt.in, tt.atts)
		testkit.NoError(t, err)
		got, atts, err := toJSON(t, m, BinPlaceholder)
		testkit.NoError(t, err)
		want := tt.want
		if want == "" {
			want = tt.in
		}
		testkit.Equal(t, got, want)
		if tt.atts != nil {
			testkit.Equal(t, len(atts), len(tt.atts))
		}
	}
}

func TestJSNumberFormat(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0", 1: "1", -1: "-1", 0.5: "0.5", 1e21: "1e+21", 1e20: "100000000000000000000",
		1e-6: "0.000001", 1e-7: "1e-7", 1.5e-10: "1.5e-10", 123.456: "123.456",
		math.MaxFloat64: "1.7976931348623157e+308", 5e-324: "5e-324", 9007199254740993: "9007199254740992",
		-1.5e300: "-1.5e+300",
	} {
		testkit.Equal(t, string(AppendJSNumber(nil, f)), want)
	}
	testkit.Equal(t, string(AppendJSNumber(nil, math.Inf(1))), "null")
	testkit.Equal(t, JSNumberKey(math.Inf(-1)), "-Infinity")
	testkit.Equal(t, JSNumberKey(math.NaN()), "NaN")
}

func TestISODate(t *testing.T) {
	for ms, want := range map[float64]string{
		0:               `"1970-01-01T00:00:00.000Z"`,
		-1:              `"1969-12-31T23:59:59.999Z"`,
		1.9:             `"1970-01-01T00:00:00.001Z"`,
		-1.9:            `"1969-12-31T23:59:59.999Z"`,
		8.64e15:         `"+275760-09-13T00:00:00.000Z"`,
		-8.64e15:        `"-271821-04-20T00:00:00.000Z"`,
		-62198755200000: `"-000001-01-01T00:00:00.000Z"`,
		8.64e15 + 1:     "null",
	} {
		testkit.Equal(t, string(AppendJSDate(nil, ms)), want, "ms %v", ms)
	}
}
