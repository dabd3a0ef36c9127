package parser

import (
	"encoding/json"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

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
	dst, err := jsonscan.AppendElements(dst, data)
	switch {
	case err == jsonscan.ErrNotArray:
		return dst, invalid("JSON value is not an array")
	case err != nil:
		return dst, invalidJSON("invalid JSON", err)
	}
	return dst, nil
}
