package jsonscan

import "errors"

// MaxDepth bounds the nesting depth of arrays and objects, as in
// encoding/json, so that hostile input cannot make a walk over it unbounded.
const MaxDepth = 10000

// Container is an array or object that Scanner recorded.
type Container struct {
	End   int // offset just past its closing bracket
	Count int // its elements, or its members
	// Next is the index in Containers of the first container after this
	// one's contents: a writer that replaces the container as a whole (a
	// placeholder by its attachment) skips the records inside it with it.
	Next int
}

// Scanner validates JSON values in a single pass, and finds their
// placeholders and containers on request. The zero value validates only.
// A Scanner may be reused, keeping the capacity of its result slices; it is
// not safe for concurrent use.
type Scanner struct {
	// FindPlaceholders makes Whole list the placeholders of the value in
	// Placeholders: in document order, and never one inside another (see
	// the package doc).
	FindPlaceholders bool
	// RecordContainers makes Whole list every array and object of the
	// value in Containers, in the order they open, with their member
	// counts: what a writer needs that announces a container's length
	// before its members, as msgpack does.
	RecordContainers bool

	// The results of the last Whole. Whole reuses their capacity, so that a
	// pooled or long-lived Scanner does not allocate for them again.
	Placeholders []Placeholder
	Containers   []Container

	data  []byte
	depth int
	open  []int // RecordContainers only: the indexes in Containers of the open containers
	// recurseTo, when not zero, replaces recursionLimit (tests compare the
	// recursive and the iterative walks with it; -1 never recurses).
	recurseTo int
}

// Whole validates that data holds exactly one JSON value, optionally
// surrounded by whitespace, and returns the bounds of that value. Errors
// are *SyntaxError.
func (s *Scanner) Whole(data []byte) (start, end int, err error) {
	s.data = data
	s.depth = 0
	s.Placeholders = s.Placeholders[:0]
	s.Containers = s.Containers[:0]
	s.open = s.open[:0]
	start = SkipSpace(data, 0)
	end, err = s.value(start)
	s.data = nil // a pooled Scanner must not pin the text
	if cap(s.open) > 1024 {
		s.open = nil // nor the stack of a hostile value's nesting
	}
	if err != nil {
		return start, end, err
	}
	if j := SkipSpace(data, end); j != len(data) {
		return start, end, errAt("invalid character "+QuoteChar(data[j])+" after top-level value", j)
	}
	return start, end, nil
}

// ErrNotArray is AppendElements' error for valid JSON that is not an array.
var ErrNotArray = errors.New("JSON value is not an array")

// AppendElements validates that data holds exactly one JSON array,
// optionally surrounded by whitespace, and appends its elements to dst,
// each a sub-slice of data without surrounding whitespace and with its
// capacity limited to its length. Errors are *SyntaxError, or ErrNotArray.
//
// It is what Socket.IO's EVENT and ACK payloads are cut with: the array is
// walked here, element by element, instead of validated first and split
// after.
func AppendElements[T ~[]byte](dst []T, data []byte) ([]T, error) {
	var s Scanner
	s.data = data
	i := SkipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		if _, _, err := s.Whole(data); err != nil {
			return dst, err
		}
		return dst, ErrNotArray
	}
	s.depth = 1
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		i++
	} else {
	elements:
		for {
			start := i
			end, err := s.value(i)
			if err != nil {
				return dst, err
			}
			dst = append(dst, T(data[start:end:end]))
			i = SkipSpace(data, end)
			if i >= len(data) {
				return dst, errEOF(i)
			}
			switch data[i] {
			case ',':
				i = SkipSpace(data, i+1)
			case ']':
				i++
				break elements
			default:
				return dst, errAt("invalid character "+QuoteChar(data[i])+" after array element", i)
			}
		}
	}
	if j := SkipSpace(data, i); j != len(data) {
		return dst, errAt("invalid character "+QuoteChar(data[j])+" after top-level value", j)
	}
	return dst, nil
}

// recursionLimit is the nesting depth up to which the scanner recurses. A
// recursive descent is the fastest walk for the shallow values that make up
// nearly all traffic (walking every value iteratively cost the parser's
// DecodeEvent 10%), but it holds about 200 bytes of goroutine stack per
// level: 16 levels stay within a goroutine's first 8 KiB. Deeper levels are
// walked by deep, whose stacks are data.
const recursionLimit = 16

// value validates the JSON value starting at data[i] (which must not be
// whitespace) and returns the offset just past it. It recurses through
// array and object while the depth is under recursionLimit, and hands deeper
// containers to deep.
func (s *Scanner) value(i int) (int, error) {
	d := s.data
	if i >= len(d) {
		return i, errEOF(i)
	}
	switch d[i] {
	case '{':
		if s.deeper() {
			return s.deep(i)
		}
		return s.object(i)
	case '[':
		if s.deeper() {
			return s.deep(i)
		}
		return s.array(i)
	}
	return scanScalar(d, i)
}

// deeper reports whether a container opening at the current depth is
// walked by deep.
func (s *Scanner) deeper() bool {
	if s.recurseTo != 0 {
		return s.depth >= s.recurseTo
	}
	return s.depth >= recursionLimit
}

// Container records are kept with their own stack of open containers,
// s.open, rather than in locals of array and object: those frames, times
// recursionLimit, must fit in a goroutine's first 8 KiB, and a local live
// across the recursive call is one more word in every frame; validating
// alone (the parser) then pays one predictable branch per member and no
// more. The out-of-line functions keep append's temporaries out of the
// frames too.

// openContainer records a container whose end is not known yet.
//
//go:noinline
func (s *Scanner) openContainer() {
	s.open = append(s.open, len(s.Containers))
	s.Containers = append(s.Containers, Container{})
}

// countMember counts one more member of the innermost open container.
func (s *Scanner) countMember() { s.Containers[s.open[len(s.open)-1]].Count++ }

// closeContainer completes the record of the innermost open container,
// which ends at end.
//
//go:noinline
func (s *Scanner) closeContainer(end int) {
	idx := s.open[len(s.open)-1]
	s.open = s.open[:len(s.open)-1]
	c := &s.Containers[idx]
	c.End, c.Next = end, len(s.Containers)
}

func (s *Scanner) array(i int) (int, error) {
	if s.depth++; s.depth > MaxDepth {
		return i, errAt("exceeded max nesting depth", i)
	}
	if s.RecordContainers {
		s.openContainer()
	}
	d := s.data
	i = SkipSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		s.depth--
		if s.RecordContainers {
			s.closeContainer(i + 1)
		}
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(i); err != nil {
			return i, err
		}
		if s.RecordContainers {
			s.countMember()
		}
		i = SkipSpace(d, i)
		if i >= len(d) {
			return i, errEOF(i)
		}
		switch d[i] {
		case ',':
			i = SkipSpace(d, i+1)
		case ']':
			s.depth--
			if s.RecordContainers {
				s.closeContainer(i + 1)
			}
			return i + 1, nil
		default:
			return i, errAt("invalid character "+QuoteChar(d[i])+" after array element", i)
		}
	}
}

func (s *Scanner) object(i int) (int, error) {
	if s.depth++; s.depth > MaxDepth {
		return i, errAt("exceeded max nesting depth", i)
	}
	if s.RecordContainers {
		s.openContainer()
	}
	d := s.data
	f := objFrame{start: i, mark: len(s.Placeholders), num: -1}
	i = SkipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		s.depth--
		if s.RecordContainers {
			s.closeContainer(i + 1)
		}
		return i + 1, nil
	}
	for {
		if i >= len(d) {
			return i, errEOF(i)
		}
		if d[i] != '"' {
			return i, errAt("invalid character "+QuoteChar(d[i])+" looking for beginning of object key string", i)
		}
		keyStart := i
		keyEnd, escaped, err := ScanString(d, i)
		if err != nil {
			return keyEnd, err
		}
		i = SkipSpace(d, keyEnd)
		if i >= len(d) {
			return i, errEOF(i)
		}
		if d[i] != ':' {
			return i, errAt("invalid character "+QuoteChar(d[i])+" after object key", i)
		}
		i = SkipSpace(d, i+1)
		valStart := i
		if i, err = s.value(i); err != nil {
			return i, err
		}
		if s.RecordContainers {
			s.countMember()
		}
		if s.FindPlaceholders {
			if key := keyOf(d[keyStart:keyEnd], escaped); key != keyOther {
				f.member(key, d[valStart:i])
			}
		}
		i = SkipSpace(d, i)
		if i >= len(d) {
			return i, errEOF(i)
		}
		switch d[i] {
		case ',':
			i = SkipSpace(d, i+1)
		case '}':
			s.depth--
			i++
			if f.isPlaceholder {
				s.closeObject(&f, i)
			}
			if s.RecordContainers {
				s.closeContainer(i)
			}
			return i, nil
		default:
			return i, errAt("invalid character "+QuoteChar(d[i])+" after object key:value pair", i)
		}
	}
}

// deep validates the value at data[i] like value, without recursion.
//
// A recursive descent all the way down held about 200 bytes of goroutine
// stack per level, 2 to 4 MiB for a text of 20 kB nested 10,000 deep, which
// stays with the goroutine until the next collection. What an open
// container needs is kept here in explicit stacks instead: one bit per
// level (object or array), one objFrame per open object when finding
// placeholders (and s.open when recording containers). They start in small
// arrays on this frame and grow on the heap, in proportion to the input.
func (s *Scanner) deep(i int) (int, error) {
	d := s.data
	var (
		kindBuf [4]uint64
		kinds   = kindBuf[:0] // bit n&63 of kinds[n>>6]: level n is an object
		n       int           // open containers
		objBuf  [4]objFrame
		objs    = objBuf[:0] // FindPlaceholders only: the open objects
		key     memberKey    // FindPlaceholders only: the key of the member value at i
	)
	for {
		// A value starts at d[i].
		if i >= len(d) {
			return i, errEOF(i)
		}
		c := d[i]
		if c == '{' || c == '[' {
			if s.depth++; s.depth > MaxDepth {
				return i, errAt("exceeded max nesting depth", i)
			}
			if key != keyOther {
				// A container is neither true nor a number.
				objs[len(objs)-1].member(key, d[i:i+1])
				key = keyOther
			}
			if s.RecordContainers {
				s.openContainer()
			}
			start := i
			closer := byte(']')
			if c == '{' {
				closer = '}'
			}
			i = SkipSpace(d, i+1)
			if i < len(d) && d[i] == closer {
				s.depth--
				i++
				if s.RecordContainers {
					s.closeContainer(i)
				}
			} else {
				kinds = pushKind(kinds, n, c == '{')
				n++
				if c == '{' {
					if s.FindPlaceholders {
						objs = append(objs, objFrame{start: start, mark: len(s.Placeholders), num: -1})
					}
					var err error
					if i, key, err = s.memberKey(i); err != nil {
						return i, err
					}
				}
				continue
			}
		} else {
			start := i
			var err error
			if i, err = scanScalar(d, i); err != nil {
				return i, err
			}
			if key != keyOther {
				objs[len(objs)-1].member(key, d[start:i])
				key = keyOther
			}
		}

		// A value ended at d[i]: close the containers it completes.
		for {
			if n == 0 {
				return i, nil
			}
			if s.RecordContainers {
				s.countMember()
			}
			isObj := kinds[(n-1)>>6]&(1<<((n-1)&63)) != 0
			i = SkipSpace(d, i)
			if i >= len(d) {
				return i, errEOF(i)
			}
			if d[i] == ',' {
				i = SkipSpace(d, i+1)
				if isObj {
					var err error
					if i, key, err = s.memberKey(i); err != nil {
						return i, err
					}
				}
				break
			}
			if !isObj {
				if d[i] != ']' {
					return i, errAt("invalid character "+QuoteChar(d[i])+" after array element", i)
				}
			} else {
				if d[i] != '}' {
					return i, errAt("invalid character "+QuoteChar(d[i])+" after object key:value pair", i)
				}
				if s.FindPlaceholders {
					f := &objs[len(objs)-1]
					objs = objs[:len(objs)-1]
					s.closeObject(f, i+1)
				}
			}
			n--
			s.depth--
			i++
			if s.RecordContainers {
				s.closeContainer(i)
			}
		}
	}
}

// pushKind records in the bit stack kinds whether level n is an object.
func pushKind(kinds []uint64, n int, obj bool) []uint64 {
	if n>>6 == len(kinds) {
		kinds = append(kinds, 0)
	}
	if bit := uint64(1) << (n & 63); obj {
		kinds[n>>6] |= bit
	} else {
		kinds[n>>6] &^= bit
	}
	return kinds
}

// memberKey scans an object key and its colon at d[i] and returns the offset
// of the member value and, when finding placeholders, which key it is.
func (s *Scanner) memberKey(i int) (int, memberKey, error) {
	d := s.data
	if i >= len(d) {
		return i, keyOther, errEOF(i)
	}
	if d[i] != '"' {
		return i, keyOther, errAt("invalid character "+QuoteChar(d[i])+" looking for beginning of object key string", i)
	}
	keyStart := i
	keyEnd, escaped, err := ScanString(d, i)
	if err != nil {
		return keyEnd, keyOther, err
	}
	i = SkipSpace(d, keyEnd)
	if i >= len(d) {
		return i, keyOther, errEOF(i)
	}
	if d[i] != ':' {
		return i, keyOther, errAt("invalid character "+QuoteChar(d[i])+" after object key", i)
	}
	key := keyOther
	if s.FindPlaceholders {
		key = keyOf(d[keyStart:keyEnd], escaped)
	}
	return SkipSpace(d, i+1), key, nil
}
