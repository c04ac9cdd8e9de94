package api

import (
	"encoding/json"
	"errors"
	"math"
)

// A small JSON tokenizer for the bodies of the commission routes, which the
// decoders in astakos_commissions.go read in one pass into their types
// instead of a map of raw values decoded a second time. It checks the
// syntax as encoding/json does (RFC 8259 with json's leniencies: any byte
// from 0x80 in strings, a nesting limit of 10,000), so that it accepts
// exactly the bodies encoding/json accepts; it does not say what is wrong
// with the others: the decoders ask encoding/json (syntaxFault), so that
// the messages of a malformed body are json's, as they were.

// maxDepth is encoding/json's nesting limit: deeper is a syntax error.
const maxDepth = 10000

// scanner is a position in a JSON text. Its methods return false at a
// syntax error, leaving the position anywhere.
type scanner struct {
	b []byte
	i int
	// open are the containers the position is in, '{' or '[', outermost
	// first.
	open []byte
}

func (s *scanner) reset(b []byte) {
	s.b, s.i, s.open = b, 0, s.open[:0]
}

// space skips JSON's whitespace.
func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace (0 at the end).
func (s *scanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// eat consumes c, the next byte after whitespace.
func (s *scanner) eat(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// enter consumes the opening c ('{' or '[') of a container.
func (s *scanner) enter(c byte) bool {
	if !s.eat(c) {
		return false
	}
	s.open = append(s.open, c)
	return len(s.open) <= maxDepth
}

// more is called in a container the caller entered, before each of its
// members: it consumes the comma before every member but the first (first
// says which) or the container's end. It reports whether a member follows;
// ok is false at a syntax error.
func (s *scanner) more(first bool) (member, ok bool) {
	closing := byte('}')
	if s.open[len(s.open)-1] == '[' {
		closing = ']'
	}
	c := s.peek()
	if c == closing {
		s.i++
		s.open = s.open[:len(s.open)-1]
		return false, true
	}
	if first {
		return true, true
	}
	if c != ',' {
		return false, false
	}
	s.i++
	return true, true
}

// key reads an object member's key and its colon. It returns the key's
// span, quotes included; plain says it has no escape and no byte from 0x80,
// so that its bytes are its value.
func (s *scanner) key() (start, end int, plain, ok bool) {
	if start, end, plain, ok = s.str(); !ok {
		return
	}
	ok = s.eat(':')
	return
}

// str reads a string; see key.
func (s *scanner) str() (start, end int, plain, ok bool) {
	if s.peek() != '"' {
		return
	}
	start, plain = s.i, true
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return start, s.i, plain, true
		case c == '\\':
			plain = false
			s.i++
			if s.i == len(s.b) {
				return
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 >= len(s.b) {
					return
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return
					}
				}
				s.i += 4
			default:
				return
			}
		case c < 0x20:
			return
		case c >= 0x80:
			plain = false
		}
	}
	return
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number reads a number.
func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || !isDigit(b[i]) {
			return false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || !isDigit(b[i]) {
			return false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	s.i = i
	return true
}

// literal reads true, false or null.
func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// value reads one value, whatever it is, and returns its span.
func (s *scanner) value() (start, end int, ok bool) {
	if s.peek() == 0 {
		return
	}
	start, depth := s.i, len(s.open)
	for {
		// A value starts here.
		switch c := s.peek(); {
		case c == '{' || c == '[':
			if !s.enter(c) {
				return
			}
			member, more := s.more(true)
			if !more {
				return start, 0, false
			}
			if member {
				if c == '{' {
					if _, _, _, more := s.key(); !more {
						return start, 0, false
					}
				}
				continue
			}
		case c == '"':
			if _, _, _, str := s.str(); !str {
				return
			}
		case c == '-' || isDigit(c):
			if !s.number() {
				return
			}
		case c == 't':
			if !s.literal("true") {
				return
			}
		case c == 'f':
			if !s.literal("false") {
				return
			}
		case c == 'n':
			if !s.literal("null") {
				return
			}
		default:
			return
		}
		// A value ended: close the containers it ended, then go on with
		// the next member of the innermost one still open.
		for {
			if len(s.open) == depth {
				return start, s.i, true
			}
			member, more := s.more(false)
			if !more {
				return start, 0, false
			}
			if member {
				if s.open[len(s.open)-1] == '{' {
					if _, _, _, more := s.key(); !more {
						return start, 0, false
					}
				}
				break
			}
		}
	}
}

// unquote returns the value of the string whose span (quotes included) is
// b: its bytes when plain, else what encoding/json makes of it (escapes
// read, a byte that is not UTF-8 replaced by U+FFFD).
func unquote(b []byte, plain bool) string {
	if plain {
		return string(b[1 : len(b)-1])
	}
	var v string
	_ = json.Unmarshal(b, &v) // a string the scanner read: it decodes
	return v
}

// errNotInteger and errRange are what intOf finds wrong with a number.
var (
	errNotInteger = errors.New("is not an integer")
	errRange      = errors.New("does not fit in a signed 64-bit integer")
)

// intOf reads a JSON value as an integer: an optional minus and digits (no
// fraction, no exponent; any other value is errNotInteger) that fit in an
// int64 (else errRange).
func intOf(raw []byte) (int64, error) {
	digits := raw
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		digits = raw[1:]
	}
	if len(digits) == 0 {
		return 0, errNotInteger
	}
	for _, c := range digits {
		if !isDigit(c) {
			return 0, errNotInteger
		}
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var v uint64
	for _, c := range digits {
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, errRange
		}
		v = v*10 + d
	}
	if neg {
		return int64(-v), nil // -(1<<63) wraps to itself: MinInt64
	}
	return int64(v), nil
}
