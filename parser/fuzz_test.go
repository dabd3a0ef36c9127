package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// addTextSeeds seeds a fuzzer with every text packet of the table tests.
func addTextSeeds(f *testing.F, add func(string)) {
	for _, tt := range decodeTests {
		add(tt.in)
	}
	for _, tt := range decodeErrorTests {
		if len(tt.in) < 1000 {
			add(tt.in)
		}
	}
	for _, tt := range encodeTests {
		add(tt.want)
	}
}

// deepSeeds are JSON values nested at and around the nesting limit, as
// arrays, objects and both, some with placeholders and some malformed at
// the bottom.
func deepSeeds() []string {
	ph := `{"_placeholder":true,"num":0}`
	mixed := func(n int, inner string) string {
		return strings.Repeat(`[{"a":`, n) + inner + strings.Repeat("}]", n)
	}
	return []string{
		deepArray(maxNesting-1, "1"),
		deepArray(maxNesting, ""),
		deepArray(maxNesting+1, ""),
		deepObject(maxNesting-1, ph),
		deepObject(maxNesting, "1"),
		deepObject(maxNesting+1, "1"),
		mixed(maxNesting/2-1, ph),
		mixed(maxNesting/2, "1"),
		mixed(maxNesting/2-1, `{"num":0,"_placeholder":true,"x":[`+ph+`]}`),
		deepArray(maxNesting-1, "1")[1:],          // unbalanced
		strings.Repeat("[", maxNesting-1) + "1,]", // bad at the bottom
		mixed(200, `{"_placeholder":true,"num":7}`),
	}
}

// FuzzDecode checks that Decode never panics, that what it accepts obeys the
// packet rules, and that re-encoding an accepted packet decodes to the same
// packet.
func FuzzDecode(f *testing.F) {
	addTextSeeds(f, func(s string) { f.Add([]byte(s)) })
	for _, d := range deepSeeds() {
		f.Add([]byte(`2["ev",` + d + `]`))
		f.Add([]byte(`51-["ev",` + d + `]`))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		p, n, err := Decode(text, 0)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not match ErrInvalidPacket", err)
			}
			return
		}
		if p.Type > BinaryAck || n < 0 || n > DefaultMaxAttachments || p.Nsp == "" || p.Nsp[0] != '/' {
			t.Fatalf("bad packet %+v, %d", p, n)
		}
		if n > 0 && p.Type != BinaryEvent && p.Type != BinaryAck {
			t.Fatalf("attachments on %v", p.Type)
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("invalid Data %q", p.Data)
		}
		if p.Type == Event || p.Type == BinaryEvent || p.Type == Ack || p.Type == BinaryAck {
			if _, err := NewRawArgs(p.Data, nil); err != nil {
				t.Fatalf("NewRawArgs(%q): %v", p.Data, err)
			}
		}
		q := *p
		q.Attachments = make([][]byte, n)
		enc := AppendEncode(nil, &q)
		p2, n2, err := Decode(enc, 0)
		if err != nil {
			t.Fatalf("re-encoded %q as %q: %v", text, enc, err)
		}
		if n2 != n || p2.Type != p.Type || p2.Nsp != p.Nsp || p2.ID != p.ID || p2.HasID != p.HasID || !bytes.Equal(p2.Data, p.Data) {
			t.Fatalf("%q → %+v; re-encoded %q → %+v", text, p, enc, p2)
		}
	})
}

// FuzzDecoderAdd feeds a Decoder a sequence of messages: the input is split
// at 0xff bytes, and a message whose first byte is 0xfe is binary.
func FuzzDecoderAdd(f *testing.F) {
	join := func(msgs ...string) []byte { return []byte(stringsJoin(msgs, "\xff")) }
	f.Add(join(`52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, "\xfe\x01", "\xfe\x02", `2["b"]`))
	f.Add(join("\xfe\x01", `2["a"]`))
	f.Add(join(`51-["a",{"_placeholder":true,"num":0}]`, `2["a"]`, "\xfe"))
	f.Add(join(`50-["a"]`, `61-3[{"_placeholder":true,"num":0}]`, "\xfe"))
	addTextSeeds(f, func(s string) { f.Add([]byte(s)) })
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Decoder
		want := -1 // attachments still expected, -1 when idle
		for _, msg := range bytes.Split(in, []byte{0xff}) {
			binary := len(msg) > 0 && msg[0] == 0xfe
			if binary {
				msg = msg[1:]
			}
			p, err := d.Add(msg, binary)
			switch {
			case err != nil:
				if !errors.Is(err, ErrInvalidPacket) {
					t.Fatalf("error %v does not match ErrInvalidPacket", err)
				}
				if binary && want > 0 {
					t.Fatalf("attachment rejected: %v", err)
				}
				want = -1
			case p == nil:
				if binary {
					if want <= 1 {
						t.Fatalf("packet not completed")
					}
					want--
				} else {
					_, n, err := Decode(msg, 0)
					if err != nil || n == 0 {
						t.Fatalf("header %q pending: %d, %v", msg, n, err)
					}
					want = n
				}
			default:
				if binary && want != 1 || !binary && want != -1 {
					t.Fatalf("packet %+v completed with %d attachments expected", p, want)
				}
				if p.Type == BinaryEvent || p.Type == BinaryAck {
					if _, err := NewRawArgs(p.Data, p.Attachments); err != nil {
						t.Fatalf("NewRawArgs: %v", err)
					}
					for _, a := range mustRawArgs(t, p) {
						// Placeholders were checked; only numbers beyond
						// float64 (such as 1e700) may fail.
						if _, err := a.Value(); errors.Is(err, ErrInvalidPacket) {
							t.Fatalf("Value(%s): %v", a.JSON, err)
						}
					}
				}
				want = -1
			}
		}
	})
}

func mustRawArgs(t *testing.T, p *Packet) []Raw {
	args, err := NewRawArgs(p.Data, p.Attachments)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func stringsJoin(s []string, sep string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(x)
	}
	return b.String()
}

// FuzzSplitArray compares SplitArray with encoding/json.
func FuzzSplitArray(f *testing.F) {
	for _, tt := range splitTests {
		f.Add([]byte(tt.in))
	}
	for _, in := range splitErrorTests {
		if len(in) < 1000 {
			f.Add([]byte(in))
		}
	}
	for _, d := range deepSeeds() {
		f.Add([]byte(d))
		f.Add([]byte(`["ev",` + d + `]`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		elems, err := SplitArray(data)
		var want []json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		isArray := len(bytes.TrimLeft(data, " \t\r\n")) > 0 && bytes.TrimLeft(data, " \t\r\n")[0] == '['
		if (err == nil) != (wantErr == nil && isArray) {
			t.Fatalf("SplitArray(%q) error %v; encoding/json: %v", data, err, wantErr)
		}
		if err != nil {
			return
		}
		if len(elems) != len(want) {
			t.Fatalf("SplitArray(%q): %d elements, encoding/json %d", data, len(elems), len(want))
		}
		for i := range elems {
			if !bytes.Equal(elems[i], bytes.TrimSpace(want[i])) {
				t.Fatalf("element %d: %q, encoding/json %q", i, elems[i], want[i])
			}
		}
	})
}

// FuzzRawRoundTrip splits a JSON array into Raw values with n attachments,
// re-encodes them and checks that the result is valid JSON holding the same
// values.
func FuzzRawRoundTrip(f *testing.F) {
	for _, tt := range decodeTests {
		if i := bytes.IndexByte([]byte(tt.in), '['); i >= 0 && tt.want.Type != Connect && tt.want.Type != ConnectError {
			f.Add([]byte(tt.in[i:]), uint8(tt.n))
		}
	}
	for _, tt := range splitTests {
		f.Add([]byte(tt.in), uint8(2))
	}
	f.Add([]byte(`[{"_placeholder":true,"num":1,"x":{"_placeholder":true,"num":0}},{"num":0,"_placeholder":true}]`), uint8(2))
	for _, d := range deepSeeds() {
		f.Add([]byte(`["ev",`+d+`]`), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		atts := make([][]byte, n%12)
		for i := range atts {
			atts[i] = []byte{byte(i)}
		}
		args, err := NewRawArgs(data, atts)
		if err != nil {
			return
		}
		vals := make([]any, len(args))
		for i := range args {
			vals[i] = args[i]
		}
		out, outAtts, err := AppendValues(nil, nil, vals...)
		if err != nil {
			// Only a bad placeholder may fail, and then Value fails too.
			failed := false
			for _, a := range args {
				if _, verr := a.Value(); verr != nil {
					failed = true
				}
			}
			if !failed {
				t.Fatalf("AppendValues(%q): %v, but Value succeeds", data, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("AppendValues(%q) = invalid %q", data, out)
		}
		again, err := NewRawArgs(out, outAtts)
		if err != nil || len(again) != len(args) {
			t.Fatalf("re-split %q: %d, %v", out, len(again), err)
		}
		for i := range args {
			v1, err1 := args[i].Value()
			v2, err2 := again[i].Value()
			if err1 != nil { // such as a number beyond float64
				if err2 == nil {
					t.Fatalf("arg %d: %v, but the re-encoding decodes", i, err1)
				}
				continue
			}
			if err2 != nil || !reflect.DeepEqual(v1, v2) {
				t.Fatalf("arg %d: %v (%v) became %v (%v)", i, v1, err1, v2, err2)
			}
			// The iterative placeholder walk agrees with the recursive one.
			var plain any
			if len(args[i].Attachments) > 0 && json.Unmarshal(args[i].JSON, &plain) == nil {
				v3, err3 := refResolvePlaceholders(plain, args[i].Attachments)
				if err3 != nil || !reflect.DeepEqual(v1, v3) {
					t.Fatalf("arg %d: %v, the recursive walk %v (%v)", i, v1, v3, err3)
				}
			}
			var x1, x2 any
			if args[i].Decode(&x1) != nil || again[i].Decode(&x2) != nil || !reflect.DeepEqual(x1, x2) {
				t.Fatalf("arg %d: Decode differs", i)
			}
			if _, err := args[i].MarshalJSON(); err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
		}
	})
}
