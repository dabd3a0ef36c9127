package parser

// The recursive placeholder walk that the iterative one replaced, kept as
// the reference the fuzzers compare it with. (The JSON scanner, and its
// parity fuzzer, live in internal/jsonscan.)

import "math"

// resolvePlaceholders replaces, in a generic JSON value, each object whose
// "_placeholder" member is true by the attachment its "num" member names.
func refResolvePlaceholders(v any, atts [][]byte) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if p, ok := x["_placeholder"].(bool); ok && p {
			f, ok := x["num"].(float64)
			if !ok || !(f >= 0) || f != math.Trunc(f) {
				return nil, errBadPlaceholder(-1, len(atts))
			}
			if f >= float64(len(atts)) {
				return nil, errBadPlaceholder(int(min(f, 1<<30)), len(atts))
			}
			return atts[int(f)], nil
		}
		for k, el := range x {
			r, err := refResolvePlaceholders(el, atts)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	case []any:
		for i, el := range x {
			r, err := refResolvePlaceholders(el, atts)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	}
	return v, nil
}
