package testkit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
)

// binKey marks binary values on the driver pipe: {"$bin":"<base64>"}.
const binKey = "$bin"

// toWire prepares Go values for the driver pipe: []byte becomes {"$bin": base64} at any
// depth inside []any, map[string]any and []byte slices thereof; json.RawMessage is sent
// verbatim (use it to control key order); everything else goes through encoding/json.
func toWire(v any) any {
	switch x := v.(type) {
	case json.RawMessage:
		return x
	case []byte:
		return map[string]string{binKey: base64.StdEncoding.EncodeToString(x)}
	case [][]byte:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toWire(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toWire(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = toWire(e)
		}
		return out
	default:
		return v
	}
}

// argsToWire encodes a list of arguments as a JSON array for the driver.
func argsToWire(args []any) (json.RawMessage, error) {
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(toWire(args))
	if err != nil {
		return nil, fmt.Errorf("testkit: encode args: %w", err)
	}
	return b, nil
}

// FromWire decodes one JSON value received from the driver: numbers become float64,
// objects map[string]any, and {"$bin": base64} becomes []byte.
func FromWire(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("testkit: decode %s: %w", truncate(raw, 200), err)
	}
	return fromWireValue(v), nil
}

func fromWireValue(v any) any {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			x[i] = fromWireValue(e)
		}
		return x
	case map[string]any:
		if s, ok := x[binKey].(string); ok && len(x) == 1 {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				return b
			}
		}
		for k, e := range x {
			x[k] = fromWireValue(e)
		}
		return x
	default:
		return v
	}
}

// fromWireList decodes a list of raw arguments.
func fromWireList(raws []json.RawMessage) ([]any, error) {
	out := make([]any, len(raws))
	for i, r := range raws {
		v, err := FromWire(r)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// Strings returns the strings of v, a JSON array as the client driver
// decodes it ([]any), sorted; other elements are left out.
func Strings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
