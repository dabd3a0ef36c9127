package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"testing"
)

// FuzzScanParity checks the scanner two ways. Its walks agree with each
// other: recursive all the way down (the reference), iterative only, and
// the production mix, give the same end offset, error, placeholders and
// containers, from the top level and from inside an array (as
// AppendElements scans elements). And the scanner agrees with
// encoding/json: it accepts what json.Valid accepts, and on that input its
// placeholders and containers are those of a tree encoding/json's decoder
// built, where the placeholder rules are applied to decoded keys and
// numbers.
func FuzzScanParity(f *testing.F) {
	for _, s := range []string{
		`[]`, ` [ ] `, `["a",1,true,false,null,{},[]]`, " \t\r\n[ \"a\" ,\n{ \"b\" : [ 1 , 2 ] } , -1.5e+3 ]\n",
		`["a,]\"[",{"x":"]"},[[],[[]]]]`, `["\u00e9\ud83d\ude00","é"]`, `[1,]`, `[1 2]`, `{"a"}`, `[01]`, "[\"\x01\"]",
		`{"_placeholder":true,"num":1,"x":{"_placeholder":true,"num":0}}`,
		`[{"num":0,"_placeholder":true},{"_placeholder":true,"num":[1],"_placeholder":false},{"\u006eum":1e0,"_pl\u0061ceholder":true}]`,
		`{"x":{"_placeholder":true,"num":9},"_placeholder":true,"num":-0.0}`, `{"_placeholder":true,"num":1073741824.5}`,
		`{"_placeholder":true,"num":1e400}`, "{\"_placeholder\xff\":true,\"num\":0}", `{"\u005fplaceholder":true,"num":"0"}`,
		`"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud83d!\ude00\ud83d"`, "\"\xff\xc3\x28\xe2\x82 é\"",
	} {
		f.Add([]byte(s), uint8(3), false)
	}
	for _, d := range deepSeeds() {
		f.Add([]byte(d), uint8(3), false)
		f.Add([]byte(d), uint8(1), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, nested bool) {
		find, containers := mode&1 != 0, mode&2 != 0
		i := SkipSpace(data, 0)
		// The reference: recursive all the way down.
		ref := Scanner{data: data, FindPlaceholders: find, RecordContainers: containers, recurseTo: MaxDepth + 2}
		// The iterative walk alone (recursion stops at once), and the
		// production mix of both.
		iter := Scanner{data: data, FindPlaceholders: find, RecordContainers: containers, recurseTo: -1}
		mixed := Scanner{data: data, FindPlaceholders: find, RecordContainers: containers}
		if nested {
			ref.depth, iter.depth, mixed.depth = 1, 1, 1
		}
		endR, errR := ref.value(i)
		for _, c := range []struct {
			name string
			s    *Scanner
		}{{"iterative", &iter}, {"mixed", &mixed}} {
			end, err := c.s.value(i)
			if end != endR || fmt.Sprint(err) != fmt.Sprint(errR) {
				t.Fatalf("%.80q: %s %d, %v; recursive %d, %v", data, c.name, end, err, endR, errR)
			}
			if errR == nil && (c.s.depth != ref.depth || !reflect.DeepEqual(c.s.Placeholders, ref.Placeholders) ||
				!reflect.DeepEqual(c.s.Containers, ref.Containers)) {
				t.Fatalf("%.80q: %s depth %d, %v, %v; recursive %d, %v, %v", data, c.name,
					c.s.depth, c.s.Placeholders, c.s.Containers, ref.depth, ref.Placeholders, ref.Containers)
			}
		}
		if nested {
			return
		}

		s := Scanner{FindPlaceholders: true, RecordContainers: true}
		start, end, err := s.Whole(data)
		if (err == nil) != json.Valid(data) {
			t.Fatalf("%.80q: %v; json.Valid %v", data, err, json.Valid(data))
		}
		if err != nil {
			return
		}
		if data[start] == '"' {
			checkUnquote(t, data[start:end])
		}
		if len(data) > 4<<10 {
			// The decoder's tree costs some 30 ms for a seed nested 10,000
			// deep, which would stall the fuzzer; large inputs are covered
			// by the parity of the walks above.
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		tree, err := readNode(dec)
		if err != nil {
			t.Fatalf("%.80q: encoding/json's decoder: %v", data, err)
		}
		if tree.start >= 0 && tree.start != start || tree.end != end {
			t.Fatalf("%.80q: value at %d:%d, encoding/json %d:%d", data, start, end, tree.start, tree.end)
		}
		var wantPH []Placeholder
		var wantCont []Container
		tree.walk(&wantPH, &wantCont)
		if len(s.Placeholders)+len(wantPH) > 0 && !reflect.DeepEqual(s.Placeholders, wantPH) {
			t.Fatalf("%.80q: placeholders %v, encoding/json %v", data, s.Placeholders, wantPH)
		}
		if len(s.Containers)+len(wantCont) > 0 && !reflect.DeepEqual(s.Containers, wantCont) {
			t.Fatalf("%.80q: containers %v, encoding/json %v", data, s.Containers, wantCont)
		}
	})
}

// checkUnquote compares Unquote with encoding/json on a valid string token.
func checkUnquote(t *testing.T, tok []byte) {
	t.Helper()
	var want string
	if err := json.Unmarshal(tok, &want); err != nil {
		t.Fatalf("%.80q: encoding/json: %v", tok, err)
	}
	got, err := Unquote([]byte("x"), tok)
	if err != nil || string(got) != "x"+want {
		t.Fatalf("Unquote(%.80q) = %q, %v; encoding/json %q", tok, got, err, want)
	}
}

// node is a JSON value as encoding/json's decoder reads it, with its span.
type node struct {
	start, end int
	delim      json.Delim // '[' or '{'; 0 for a scalar
	keys       []string   // an object's keys, decoded
	elems      []*node
	tok        json.Token // a scalar
}

func readNode(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		// The decoder does not say where a scalar starts; only containers'
		// spans are compared.
		return &node{start: -1, end: int(dec.InputOffset()), tok: tok}, nil
	}
	n := &node{start: int(dec.InputOffset()) - 1, delim: delim}
	for dec.More() {
		if delim == '{' {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k.(string))
		}
		el, err := readNode(dec)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, el)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	n.end = int(dec.InputOffset())
	return n, nil
}

// walk lists the placeholders and containers of n, in document order, by
// the rules of the package doc, applied to what encoding/json decoded.
func (n *node) walk(phs *[]Placeholder, cs *[]Container) {
	if n.delim == 0 {
		return
	}
	idx := len(*cs)
	*cs = append(*cs, Container{})
	isPH, num := false, -1
	if n.delim == '{' {
		for i, k := range n.keys {
			switch el := n.elems[i]; k {
			case "_placeholder":
				isPH = el.tok == true
			case "num":
				num = -1
				if s, ok := el.tok.(json.Number); ok {
					num = refIndex(string(s))
				}
			}
		}
	}
	mark := len(*phs)
	for _, el := range n.elems {
		el.walk(phs, cs)
	}
	if isPH {
		*phs = append((*phs)[:mark], Placeholder{Start: n.start, End: n.end, Num: num})
	}
	(*cs)[idx] = Container{End: n.end, Count: len(n.elems), Next: len(*cs)}
}

// refIndex is reconstructPacket's test of num (a number, >= 0, below the
// attachment count), made strict about fractions, as the package doc says.
func refIndex(s string) int {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return -1
	}
	if f < 0 || f != math.Floor(f) || math.IsNaN(f) {
		return -1
	}
	if f >= 1<<30 {
		return 1 << 30
	}
	return int(f)
}
