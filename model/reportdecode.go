package model

import "math"

// decodeFlat decodes body into r when body is a report in the plain form terminals send:
// one JSON object whose keys are exactly the report's wire names, with ASCII strings
// without escapes and whole numbers in plain digits. It reports false, leaving r in any
// state, for everything else (other keys, escapes, non-ASCII bytes, nulls, nested values,
// signs, fractions, exponents, numbers beyond uint32, bad JSON), which ParseReport hands
// to encoding/json: that keeps its semantics (case-insensitive keys, U+FFFD for bad
// UTF-8, ignored unknown fields) and its errors, which the messages are made from. For
// a body it takes, the result is the one encoding/json gives (FuzzParseReport checks).
// It saves the reflection of encoding/json, the largest part of a report's decoding.
func decodeFlat(b []byte, r *Report) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return false
		}
		key, j, ok := plainString(b, i+1)
		if !ok {
			return false
		}
		if i = skipSpace(b, j); i == len(b) || b[i] != ':' {
			return false
		}
		if i = skipSpace(b, i+1); i == len(b) {
			return false
		}
		var str *string
		var num *uint32
		switch string(key) {
		case "sn":
			str = &r.SN
		case "pos":
			str = &r.Pos
		case "city":
			str = &r.City
		case "id":
			str = &r.Type
		case "ndate":
			str = &r.NDate
		case "ntime":
			str = &r.NTime
		case "stime":
			str = &r.STime
		case "ctime":
			str = &r.CTime
		case "unum1":
			num = &r.Unum1
		case "unum2":
			num = &r.Unum2
		case "amount":
			num = &r.Amount
		case "count":
			num = &r.Count
		case "line":
			num = &r.Line
		case "tenant":
			num = &r.Tenant
		default:
			return false
		}
		if str != nil {
			if b[i] != '"' {
				return false
			}
			var v []byte
			if v, i, ok = plainString(b, i+1); !ok {
				return false
			}
			*str = string(v)
		} else if *num, i, ok = plainUint32(b, i); !ok {
			return false
		}
		if i = skipSpace(b, i); i == len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// skipSpace returns the index of the first byte at or after i that is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// plainString returns the string that starts at b[i] (after its opening quote) and the
// index after its closing quote; ok is false for an escape, a control or non-ASCII byte,
// or a missing closing quote.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	for j := i; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i:j], j + 1, true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainUint32 returns the whole number in plain digits at b[i] and the index after it;
// ok is false for anything else, a leading zero or a value beyond uint32. The caller
// refuses a number followed by '.', 'e' or 'E' (the next byte must be ',', '}' or space).
func plainUint32(b []byte, i int) (n uint32, next int, ok bool) {
	j := i
	var v uint64
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		if v = v*10 + uint64(b[j]-'0'); v > math.MaxUint32 {
			return 0, 0, false
		}
		j++
	}
	if j == i || (b[i] == '0' && j-i > 1) {
		return 0, 0, false
	}
	return uint32(v), j, true
}
