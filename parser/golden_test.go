package parser

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The golden vectors in testdata/golden.json come from the reference npm
// socket.io-parser, through integration/node/gen-parser-golden.js.

const (
	goldenFile   = "testdata/golden.json"
	goldenScript = "../integration/node/gen-parser-golden.js"
)

type golden struct {
	Encode []struct {
		Name     string       `json:"name"`
		GoEncode bool         `json:"goEncode"`
		Packet   goldenPacket `json:"packet"`
		Encoded  []string     `json:"encoded"`
	} `json:"encode"`
	Decode []struct {
		Input       string        `json:"input"`
		OK          bool          `json:"ok"`
		Packet      *goldenPacket `json:"packet"`
		Reassembled *bool         `json:"reassembled"`
		Error       string        `json:"error"`
	} `json:"decode"`
}

type goldenPacket struct {
	Type        Type            `json:"type"`
	Nsp         string          `json:"nsp"`
	ID          *float64        `json:"id"`
	Attachments *int            `json:"attachments"`
	Data        json.RawMessage `json:"data"`
}

func loadGolden(t testing.TB) *golden {
	t.Helper()
	data, err := os.ReadFile(goldenFile)
	noError(t, err)
	var g golden
	noError(t, json.Unmarshal(data, &g))
	if len(g.Encode) == 0 || len(g.Decode) == 0 {
		t.Fatal("empty golden file")
	}
	return &g
}

// fromDesc rebuilds the Go value described by the generator's markers:
// {"$bin": base64} is a []byte, {"$num": "-0"|"NaN"|"Infinity"|"-Infinity"}
// a float64. With decoded set it yields what decoding the encoded form gives
// instead: null for NaN and ±Inf.
func fromDesc(t testing.TB, v any, decoded bool) any {
	switch x := v.(type) {
	case map[string]any:
		if b, ok := x["$bin"].(string); ok && len(x) == 1 {
			data, err := base64.StdEncoding.DecodeString(b)
			noError(t, err)
			return data
		}
		if n, ok := x["$num"].(string); ok && len(x) == 1 {
			var f float64
			switch n {
			case "-0":
				f = math.Copysign(0, -1)
			case "NaN":
				f = math.NaN()
			case "Infinity":
				f = math.Inf(1)
			case "-Infinity":
				f = math.Inf(-1)
			default:
				t.Fatalf("unknown $num %q", n)
			}
			if decoded && f != 0 {
				return nil
			}
			return f
		}
		out := make(map[string]any, len(x))
		for k, el := range x {
			out[k] = fromDesc(t, el, decoded)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = fromDesc(t, el, decoded)
		}
		return out
	}
	return v
}

func TestGoldenEncode(t *testing.T) {
	for _, c := range loadGolden(t).Encode {
		t.Run(c.Name, func(t *testing.T) {
			text := []byte(c.Encoded[0])
			wantAtts := make([][]byte, len(c.Encoded)-1)
			for i, s := range c.Encoded[1:] {
				var err error
				wantAtts[i], err = base64.StdEncoding.DecodeString(s)
				noError(t, err)
			}
			var desc any
			if c.Packet.Data != nil {
				noError(t, json.Unmarshal(c.Packet.Data, &desc))
			}

			// (1) Go encodes the same packet byte for byte.
			if c.GoEncode {
				p := Packet{Type: c.Packet.Type, Nsp: c.Packet.Nsp}
				if c.Packet.ID != nil {
					p.ID, p.HasID = uint64(*c.Packet.ID), true
				}
				if desc != nil {
					var err error
					if arr, ok := fromDesc(t, desc, false).([]any); ok {
						p.Data, p.Attachments, err = AppendValues(nil, nil, arr...)
					} else {
						p.Data, p.Attachments, err = AppendValue(nil, nil, fromDesc(t, desc, false))
					}
					noError(t, err)
				}
				equal(t, "encoded", string(AppendEncode(nil, &p)), string(text))
				bytesList(t, "attachments", p.Attachments, wantAtts)
			}

			// (2) Go decodes the reference encoding into the same packet.
			var d Decoder
			p, err := d.Add(text, false)
			noError(t, err)
			for i, a := range wantAtts {
				if p != nil {
					t.Fatalf("packet complete before attachment %d", i)
				}
				p, err = d.Add(a, true)
				noError(t, err)
			}
			if p == nil {
				t.Fatal("no packet")
			}
			wantType := c.Packet.Type
			if len(wantAtts) > 0 {
				wantType += BinaryEvent - Event
			}
			equal(t, "Type", p.Type, wantType)
			equal(t, "Nsp", p.Nsp, c.Packet.Nsp)
			equal(t, "HasID", p.HasID, c.Packet.ID != nil)
			if c.Packet.ID != nil {
				equal(t, "ID", p.ID, uint64(*c.Packet.ID))
			}
			if desc == nil {
				if p.Data != nil {
					t.Errorf("Data = %s, want none", p.Data)
				}
				return
			}
			whole := Raw{JSON: p.Data, Attachments: p.Attachments}
			got, err := whole.Value()
			noError(t, err)
			deepEqual(t, "data", got, fromDesc(t, desc, true))

			// Raw values re-encode to the same bytes, key order included.
			var data []byte
			var atts [][]byte
			if p.Type == Connect || p.Type == ConnectError {
				data, atts, err = AppendValue(nil, nil, whole)
			} else {
				args, err := NewRawArgs(p.Data, p.Attachments)
				noError(t, err)
				vals := make([]any, len(args))
				for i := range args {
					vals[i] = args[i]
				}
				data, atts, err = AppendValues(nil, nil, vals...)
				noError(t, err)
				// and so do the generic values, for sorted keys.
				if c.GoEncode {
					generic := make([]any, len(args))
					for i := range args {
						generic[i], err = args[i].Value()
						noError(t, err)
					}
					again, _, err := AppendValues(nil, nil, generic...)
					noError(t, err)
					equal(t, "generic re-encoding", string(again), string(p.Data))
				}
			}
			noError(t, err)
			equal(t, "Raw re-encoding", string(data), string(p.Data))
			bytesList(t, "Raw re-encoding attachments", atts, wantAtts)
		})
	}
}

// goldenDeviations are the inputs on which Decode deliberately differs from
// the reference decodeString; see the Compatibility section of doc.go.
var goldenDeviations = map[string]struct {
	ok     bool
	reason string
}{
	"":                           {false, "empty string: JavaScript's Number(\"\") is 0, a CONNECT"},
	" ":                          {false, "Number(\" \") is 0, a CONNECT"},
	"0 {}":                       {true, "whitespace is not an ack id (JavaScript reads it as id 0)"},
	"0\n{}":                      {true, "whitespace is not an ack id (JavaScript reads it as id 0)"},
	`2 ["a"]`:                    {true, "whitespace is not an ack id (JavaScript reads it as id 0)"},
	`4 "x"`:                      {true, "whitespace is not an ack id (JavaScript reads it as id 0)"},
	`218446744073709551616["a"]`: {false, "ack id beyond uint64"},
	"2":                          {false, "EVENT without payload"},
	"2/admin":                    {false, "EVENT without payload"},
	"2/admin,":                   {false, "EVENT without payload"},
	"212":                        {false, "EVENT without payload"},
	"3":                          {false, "ACK without payload"},
	"312":                        {false, "ACK without payload"},
	"51-":                        {false, "BINARY_EVENT without payload"},
	`5-["a"]`:                    {false, "attachment count must have digits"},
	`5 1-["a"]`:                  {false, "attachment count must be plain digits"},
	`511-["a",{"_placeholder":true,"num":0}]`:  {false, "over the default limit of 10 attachments (newer reference parsers have it too)"},
	`51-["a",{"_placeholder":true,"num":0.5}]`: {false, "a fractional placeholder index (JavaScript yields undefined)"},
}

func TestGoldenDecode(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range loadGolden(t).Decode {
		seen[c.Input] = true
		t.Run(c.Input, func(t *testing.T) {
			p, n, err := Decode([]byte(c.Input), 0)
			wantOK := c.OK && (c.Reassembled == nil || *c.Reassembled)
			if dev, ok := goldenDeviations[c.Input]; ok {
				if dev.ok == wantOK && !dev.ok {
					t.Errorf("listed as a deviation (%s) but the reference agrees", dev.reason)
				}
				wantOK = dev.ok
			}
			if (err == nil) != wantOK {
				t.Fatalf("Decode = %+v, %v; reference ok=%v (%s)", p, err, wantOK, c.Error)
			}
			if err != nil || !c.OK {
				return
			}
			wp := c.Packet
			equal(t, "Type", p.Type, wp.Type)
			equal(t, "Nsp", p.Nsp, wp.Nsp)
			if _, dev := goldenDeviations[c.Input]; !dev {
				equal(t, "HasID", p.HasID, wp.ID != nil)
				if wp.ID != nil && *wp.ID < 1<<53 {
					equal(t, "ID", p.ID, uint64(*wp.ID))
				}
			}
			if wp.Attachments != nil {
				equal(t, "attachments", n, *wp.Attachments)
			}
			if (p.Data == nil) != (wp.Data == nil) {
				t.Fatalf("Data = %s, reference %s", p.Data, wp.Data)
			}
			if p.Data != nil && !jsonEqual(t, p.Data, wp.Data) {
				t.Errorf("Data = %s, reference %s", p.Data, wp.Data)
			}
		})
	}
	for in := range goldenDeviations {
		if !seen[in] {
			t.Errorf("deviation %q is not in the golden file", in)
		}
	}
}

// TestGoldenCurrent re-runs the generator and checks that the committed
// fixture is what it prints.
func TestGoldenCurrent(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	modules := filepath.Join(filepath.Dir(goldenScript), "node_modules", "socket.io-parser")
	if _, err := os.Stat(modules); err != nil {
		t.Skip("socket.io-parser is not installed in integration/node")
	}
	out, err := exec.Command(node, goldenScript).Output()
	if err != nil {
		t.Fatalf("%s: %v", goldenScript, err)
	}
	want, err := os.ReadFile(goldenFile)
	noError(t, err)
	if !bytes.Equal(out, want) {
		t.Errorf("%s is stale: run `node integration/node/gen-parser-golden.js > parser/testdata/golden.json`", goldenFile)
	}
}
