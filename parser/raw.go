package parser

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

// Raw is one JSON value as received, such as one argument of an event, with
// the binary attachments its placeholders refer to: an object
// {"_placeholder":true,"num":N} (in any key order) inside JSON stands for
// Attachments[N]. Several Raw values may share one Attachments slice, the
// attachment list of their packet. A Raw without attachments is plain JSON,
// where placeholder-like objects have no special meaning.
//
// Passing a Raw to AppendValues writes it back with its placeholders
// renumbered for the new packet; any other content is written byte for byte.
type Raw struct {
	JSON        json.RawMessage
	Attachments [][]byte
}

// NewRawArgs splits data, the JSON array payload of an EVENT or ACK packet,
// into one Raw per element; each aliases data and shares atts. A nil or empty
// data (a packet without payload) yields no values. Errors match
// ErrInvalidPacket.
//
// NewRawArgs is safe for concurrent use.
func NewRawArgs(data json.RawMessage, atts [][]byte) ([]Raw, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var buf [16]json.RawMessage
	elems, err := appendElems(buf[:0], data)
	if err != nil {
		return nil, err
	}
	if len(atts) == 0 {
		atts = nil
	}
	args := make([]Raw, len(elems))
	for i, el := range elems {
		args[i] = Raw{JSON: el, Attachments: atts}
	}
	return args, nil
}

// Decode stores the value of r in the value pointed to by v, like
// json.Unmarshal. When r has attachments, placeholders are resolved first:
// into a *any, placeholders become []byte (as with Value); into a *[]byte, a
// placeholder becomes its attachment; into a *Raw, r is copied; otherwise each
// placeholder is replaced by the base64 string of its attachment before
// json.Unmarshal runs, so []byte fields and elements receive the bytes (an
// `any` field receives the base64 string).
//
// The []byte values of attachments alias r.Attachments.
func (r Raw) Decode(v any) error {
	if len(r.Attachments) == 0 {
		if x, ok := v.(*Raw); ok {
			*x = r
			return nil
		}
		if err := json.Unmarshal(r.JSON, v); err != nil {
			return rawError(err)
		}
		return nil
	}
	switch x := v.(type) {
	case *Raw:
		*x = r
		return nil
	case *any:
		val, err := r.Value()
		if err != nil {
			return err
		}
		*x = val
		return nil
	case *[]byte:
		if b, ok, err := r.attachment(); err != nil {
			return rawError(err)
		} else if ok {
			*x = b
			return nil
		}
	}
	data, err := r.rewrite(nil, func(dst, att []byte) []byte {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, att)
		return append(dst, '"')
	})
	if err != nil {
		return rawError(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return rawError(err)
	}
	return nil
}

// Value returns r as a generic Go value, like json.Unmarshal into an `any`:
// map[string]any, []any, float64, string, bool or nil, with a []byte (aliasing
// r.Attachments) in place of each placeholder.
func (r Raw) Value() (any, error) {
	var v any
	if err := json.Unmarshal(r.JSON, &v); err != nil {
		return nil, rawError(err)
	}
	if len(r.Attachments) == 0 {
		return v, nil
	}
	v, err := resolvePlaceholders(v, r.Attachments)
	if err != nil {
		return nil, rawError(err)
	}
	return v, nil
}

// MarshalJSON implements json.Marshaler, for uses outside Socket.IO such as
// logging: each placeholder becomes what JSON.stringify writes for a Node.js
// Buffer, {"type":"Buffer","data":[1,2,3]}. An empty Raw is null.
func (r Raw) MarshalJSON() ([]byte, error) {
	if len(r.JSON) == 0 {
		return []byte("null"), nil
	}
	if len(r.Attachments) == 0 {
		return r.JSON, nil
	}
	out, err := r.rewrite(nil, func(dst, att []byte) []byte {
		dst = append(dst, `{"type":"Buffer","data":[`...)
		for i, c := range att {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(dst, uint64(c), 10)
		}
		return append(dst, "]}"...)
	})
	if err != nil {
		return nil, rawError(err)
	}
	return out, nil
}

// raw encodes r for AppendValues.
func (e *encoder) raw(r *Raw) error {
	if len(r.Attachments) == 0 {
		j := trimSpace(r.JSON)
		if len(j) == 0 {
			j = []byte("null")
		}
		e.buf = append(e.buf, j...)
		return nil
	}
	sc := e.scratch()
	out, refs, err := r.rewriteRefs(e.buf, sc.refs, func(dst, att []byte) []byte {
		dst = appendPlaceholder(dst, len(e.atts))
		e.atts = append(e.atts, att)
		return dst
	})
	sc.refs = refs[:0]
	if err != nil {
		return err
	}
	e.buf = out
	return nil
}

// rewrite appends r.JSON to dst with each placeholder replaced by what
// replace appends for its attachment.
func (r *Raw) rewrite(dst []byte, replace func(dst, att []byte) []byte) ([]byte, error) {
	out, _, err := r.rewriteRefs(dst, nil, replace)
	return out, err
}

func (r *Raw) rewriteRefs(dst []byte, refs []jsonscan.Placeholder, replace func(dst, att []byte) []byte) ([]byte, []jsonscan.Placeholder, error) {
	s := jsonscan.Scanner{FindPlaceholders: true, Placeholders: refs}
	start, end, err := s.Whole(r.JSON)
	if err != nil {
		return dst, s.Placeholders, invalidJSON("invalid JSON", err)
	}
	prev := start
	for _, ref := range s.Placeholders {
		if !ref.Names(len(r.Attachments)) {
			return dst, s.Placeholders, errBadPlaceholder(ref.Num, len(r.Attachments))
		}
		dst = append(dst, r.JSON[prev:ref.Start]...)
		dst = replace(dst, r.Attachments[ref.Num])
		prev = ref.End
	}
	return append(dst, r.JSON[prev:end]...), s.Placeholders, nil
}

// attachment returns the attachment r stands for when r is a placeholder.
func (r *Raw) attachment() ([]byte, bool, error) {
	s := jsonscan.Scanner{FindPlaceholders: true}
	start, end, err := s.Whole(r.JSON)
	if err != nil {
		return nil, false, invalidJSON("invalid JSON", err)
	}
	if len(s.Placeholders) != 1 || s.Placeholders[0].Start != start || s.Placeholders[0].End != end {
		return nil, false, nil
	}
	ref := s.Placeholders[0]
	if !ref.Names(len(r.Attachments)) {
		return nil, false, errBadPlaceholder(ref.Num, len(r.Attachments))
	}
	return r.Attachments[ref.Num], true, nil
}

func errBadPlaceholder(num, count int) error {
	if num < 0 {
		return invalid("placeholder without a valid num")
	}
	return invalid("placeholder num " + strconv.Itoa(num) + " out of range (" + strconv.Itoa(count) + " attachments)")
}

// rawError wraps an error of a Raw method.
func rawError(err error) error {
	var pe *packetError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("parser: raw value: %w", err)
}

// resolvePlaceholders replaces, in a generic JSON value, each object whose
// "_placeholder" member is true by the attachment its "num" member names.
//
// v comes from client JSON nested up to 10,000 deep, so the walk keeps its
// path in an explicit stack rather than recursing (a recursive walk held
// about 400 bytes of goroutine stack per level). Arrays are walked in order,
// depth first, so that the first bad placeholder in document order is the
// one reported; a map's own placeholder members are replaced as its entries
// are listed, before its other members are walked, which is one of the
// orders Go's random map iteration gave the recursive walk.
func resolvePlaceholders(v any, atts [][]byte) (any, error) {
	if m, ok := v.(map[string]any); ok {
		if b, ok, err := placeholderAtt(m, atts); ok || err != nil {
			return b, err
		}
	}
	var (
		stackBuf [8]resolveFrame
		stack    = stackBuf[:0]
		keyBuf   [8]string
		keys     = keyBuf[:0] // members of the open maps still to walk
		err      error
	)
	if stack, keys, err = pushResolve(stack, keys, v, atts); err != nil {
		return nil, err
	}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		var child any
		if f.list != nil {
			for f.next < len(f.list) && child == nil {
				el := f.list[f.next]
				f.next++
				switch x := el.(type) {
				case map[string]any:
					b, ok, err := placeholderAtt(x, atts)
					if err != nil {
						return nil, err
					}
					if ok {
						f.list[f.next-1] = b
					} else if len(x) > 0 {
						child = x
					}
				case []any:
					if len(x) > 0 {
						child = x
					}
				}
			}
		} else if f.next < len(keys) {
			child = f.m[keys[f.next]]
			f.next++
		}
		if child == nil {
			clear(keys[f.keys:])
			keys = keys[:f.keys]
			stack = stack[:len(stack)-1]
			continue
		}
		if stack, keys, err = pushResolve(stack, keys, child, atts); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// resolveFrame is an array or a map that resolvePlaceholders is walking.
type resolveFrame struct {
	list []any          // an array, walked from list[next]
	m    map[string]any // or a map, whose members to walk are keys[next:]
	keys int            // len(keys) when the frame was pushed
	next int
}

// pushResolve opens a frame for c, a non-empty array or a map that is not a
// placeholder. A map's placeholder members are replaced at once; its
// members that are non-empty containers are appended to keys, to be walked.
func pushResolve(stack []resolveFrame, keys []string, c any, atts [][]byte) ([]resolveFrame, []string, error) {
	switch x := c.(type) {
	case []any:
		return append(stack, resolveFrame{list: x, keys: len(keys)}), keys, nil
	case map[string]any:
		base := len(keys)
		for k, el := range x {
			switch y := el.(type) {
			case map[string]any:
				b, ok, err := placeholderAtt(y, atts)
				if err != nil {
					return stack, keys, err
				}
				if ok {
					x[k] = b
				} else if len(y) > 0 {
					keys = append(keys, k)
				}
			case []any:
				if len(y) > 0 {
					keys = append(keys, k)
				}
			}
		}
		return append(stack, resolveFrame{m: x, keys: base, next: base}), keys, nil
	}
	return stack, keys, nil
}

// placeholderAtt returns the attachment m stands for when m is a placeholder.
// The rules are jsonscan's, applied to a decoded value: what Raw.Value
// resolves is what the scanner found in the text.
func placeholderAtt(m map[string]any, atts [][]byte) ([]byte, bool, error) {
	p, ok := m["_placeholder"].(bool)
	if !ok || !p {
		return nil, false, nil
	}
	ref := jsonscan.Placeholder{Num: -1}
	if f, ok := m["num"].(float64); ok {
		ref.Num = jsonscan.Index(f)
	}
	if !ref.Names(len(atts)) {
		return nil, false, errBadPlaceholder(ref.Num, len(atts))
	}
	return atts[ref.Num], true, nil
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && jsonscan.IsSpace(b[i]) {
		i++
	}
	for j > i && jsonscan.IsSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}
