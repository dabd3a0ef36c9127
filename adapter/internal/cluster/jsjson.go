package cluster

import (
	"math"
	"strconv"
	"time"

	"github.com/ioswarm/ioswarm/parser"
)

// This file writes JSON the way JavaScript's JSON.stringify does, for the
// values a msgpack message can hold once notepack.io decoded it on Node.

// AppendJSString appends s as a JSON string, as JSON.stringify writes it.
// Bytes that are not UTF-8 become \ufffd, as Node's UTF-8 decoder turns
// them into U+FFFD.
func AppendJSString(dst, s []byte) []byte { return parser.AppendJSONString(dst, s) }

// AppendJSStringText is appendJSString for a string.
func AppendJSStringText(dst []byte, s string) []byte { return parser.AppendJSONString(dst, s) }

// maxSafeInt is 2^53: integers below it are exact in a float64.
const maxSafeInt = 1 << 53

// AppendJSNumber appends f formatted as JSON.stringify writes a number:
// Number#toString, except that NaN and ±Infinity become null (and -0 is 0).
func AppendJSNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return appendNumberText(dst, f)
}

// appendNumberText appends Number#toString(f) for a finite f.
func appendNumberText(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if math.Abs(f) < maxSafeInt {
		if i := int64(f); float64(i) == f {
			return strconv.AppendInt(dst, i, 10)
		}
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Go writes e-07 / e+07 where JavaScript writes e-7 / e+7.
	if n := len(dst); n >= 4 && (dst[n-3] == '-' || dst[n-3] == '+') && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}

// JSNumberKey is String(f) for any float64, as used for object keys.
func JSNumberKey(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return string(appendNumberText(nil, f))
}

// maxDateMs is the largest time value a JavaScript Date holds (±8.64e15 ms).
const maxDateMs = 8.64e15

// timeClip is ECMAScript's TimeClip: the milliseconds of a valid Date, or
// false for an Invalid Date.
func timeClip(ms float64) (int64, bool) {
	if math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > maxDateMs {
		return 0, false
	}
	return int64(math.Trunc(ms)), true
}

// AppendJSDate appends what JSON.stringify writes for a Date of ms
// milliseconds since the epoch: its toISOString in quotes, or null for an
// Invalid Date.
func AppendJSDate(dst []byte, ms float64) []byte {
	v, ok := timeClip(ms)
	if !ok {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = appendISODate(dst, v)
	return append(dst, '"')
}

// appendISODate appends Date.prototype.toISOString: YYYY-MM-DDTHH:mm:ss.sssZ,
// with the year written ±YYYYYY outside 0…9999.
func appendISODate(dst []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	y := t.Year()
	switch {
	case y >= 0 && y <= 9999:
		dst = appendPadded(dst, y, 4)
	case y < 0:
		dst = append(dst, '-')
		dst = appendPadded(dst, -y, 6)
	default:
		dst = append(dst, '+')
		dst = appendPadded(dst, y, 6)
	}
	dst = append(dst, '-')
	dst = appendPadded(dst, int(t.Month()), 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, t.Day(), 2)
	dst = append(dst, 'T')
	dst = appendPadded(dst, t.Hour(), 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, t.Minute(), 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, t.Second(), 2)
	dst = append(dst, '.')
	dst = appendPadded(dst, t.Nanosecond()/1e6, 3)
	return append(dst, 'Z')
}

// JSDateString is Date.prototype.toString in UTC (the text a Date becomes as
// an object key), or "Invalid Date".
func JSDateString(ms float64) string {
	v, ok := timeClip(ms)
	if !ok {
		return "Invalid Date"
	}
	t := time.UnixMilli(v).UTC()
	return t.Format("Mon Jan 02 2006 15:04:05") + " GMT+0000 (Coordinated Universal Time)"
}

func appendPadded(dst []byte, n, width int) []byte {
	var buf [20]byte
	b := strconv.AppendInt(buf[:0], int64(n), 10)
	for i := len(b); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}
