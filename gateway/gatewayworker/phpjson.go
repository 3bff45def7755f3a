package gatewayworker

import (
	"unicode/utf16"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendPHPJSONString appends s as PHP's json_encode writes a string
// with default flags: '/' is escaped, and so is every non-ASCII
// character, as \uXXXX (UTF-16). Bytes that are not UTF-8 (json_encode
// fails on them) are written as U+FFFD.
func appendPHPJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b = appendJSONASCII(b, c, true)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			b = appendU(appendU(b, r1), r2)
			continue
		}
		b = appendU(b, r)
	}
	return append(b, '"')
}

// appendJSONStringMinimal appends s as a JSON string escaping only what
// JSON requires ('"', '\' and control characters); other bytes are
// copied as they are.
func appendJSONStringMinimal(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < utf8.RuneSelf {
			b = appendJSONASCII(b, c, false)
		} else {
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendJSONASCII(b []byte, c byte, slash bool) []byte {
	switch c {
	case '"':
		return append(b, `\"`...)
	case '\\':
		return append(b, `\\`...)
	case '/':
		if slash {
			return append(b, `\/`...)
		}
		return append(b, c)
	case '\b':
		return append(b, `\b`...)
	case '\f':
		return append(b, `\f`...)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\t':
		return append(b, `\t`...)
	}
	if c < 0x20 {
		return appendU(b, rune(c))
	}
	return append(b, c)
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
