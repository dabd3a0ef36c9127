package parser

import "encoding/json"

// SplitArray returns the top-level elements of the JSON array in data, each a
// sub-slice of data (not a copy, capacity limited to its length) without
// surrounding whitespace. The whole input is validated in a single pass; an
// input that is not exactly one JSON array (optionally surrounded by
// whitespace) is an error matching ErrInvalidPacket. An empty array yields an
// empty slice.
//
// SplitArray is safe for concurrent use.
func SplitArray(data json.RawMessage) ([]json.RawMessage, error) {
	return appendElems(make([]json.RawMessage, 0, 8), data)
}

// appendElems appends the elements of the JSON array in data to dst.
func appendElems(dst []json.RawMessage, data []byte) ([]json.RawMessage, error) {
	var s scanner
	s.data = data
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		if _, _, err := s.whole(data); err != nil {
			return dst, invalidJSON("invalid JSON", err)
		}
		return dst, invalid("JSON value is not an array")
	}
	s.depth = 1
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		i++
	} else {
	elements:
		for {
			start := i
			end, err := s.value(i)
			if err != nil {
				return dst, invalidJSON("invalid JSON", err)
			}
			dst = append(dst, data[start:end:end])
			i = skipSpace(data, end)
			if i >= len(data) {
				return dst, invalidJSON("invalid JSON", errEOF(i))
			}
			switch data[i] {
			case ',':
				i = skipSpace(data, i+1)
			case ']':
				i++
				break elements
			default:
				return dst, invalidJSON("invalid JSON", errAt("invalid character "+quoteChar(data[i])+" after array element", i))
			}
		}
	}
	if j := skipSpace(data, i); j != len(data) {
		return dst, invalidJSON("invalid JSON", errAt("invalid character "+quoteChar(data[j])+" after top-level value", j))
	}
	return dst, nil
}
