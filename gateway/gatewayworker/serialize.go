package gatewayworker

// This file is one concern: PHP's serialize() format, both ways, with
// PHP's key and float rules.

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// PHP's serialize format, for the values sessions and query replies
// hold: null (N;), bool (b:1;), int (i:5;), float (d:0.5;), string
// (s:3:"abc";, byte-exact, no escaping) and array (a:2:{key value ...},
// keys int or string, in order). Objects, references and enums are not
// supported: PHP sessions and GatewayWorker's replies never contain them
// when the BusinessWorker stores plain data.

// maxDepth bounds the nesting of arrays Unserialize accepts, so that a
// hostile string cannot exhaust the stack.
const maxDepth = 512

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSerialize}, args...)...)
}

// Serialize returns PHP serialize(v). See [AppendSerialize] for the
// types v may hold.
func Serialize(v any) ([]byte, error) { return AppendSerialize(nil, v) }

// AppendSerialize appends PHP serialize(v) to b. v may be nil, a bool,
// any Go integer that fits int64, float32 or float64, a string or
// []byte (bytes as they are), an *Array (in its order), a []any or
// []string (keys 0..n-1), or a map[string]any or map[string]string
// (keys sorted, numeric strings becoming integer keys as in PHP); the
// values inside follow the same rules.
func AppendSerialize(b []byte, v any) ([]byte, error) {
	return appendSerialize(b, v, 0)
}

func appendSerialize(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errorf("nested deeper than %d", maxDepth)
	}
	switch v := v.(type) {
	case nil:
		return append(b, "N;"...), nil
	case bool:
		if v {
			return append(b, "b:1;"...), nil
		}
		return append(b, "b:0;"...), nil
	case int:
		return appendInt(b, int64(v)), nil
	case int8:
		return appendInt(b, int64(v)), nil
	case int16:
		return appendInt(b, int64(v)), nil
	case int32:
		return appendInt(b, int64(v)), nil
	case int64:
		return appendInt(b, v), nil
	case uint:
		return appendUint(b, uint64(v))
	case uint8:
		return appendInt(b, int64(v)), nil
	case uint16:
		return appendInt(b, int64(v)), nil
	case uint32:
		return appendInt(b, int64(v)), nil
	case uint64:
		return appendUint(b, v)
	case float32:
		return append(appendPHPFloat(append(b, "d:"...), float64(v), 0, 'E'), ';'), nil
	case float64:
		return append(appendPHPFloat(append(b, "d:"...), v, 0, 'E'), ';'), nil
	case string:
		return appendString(b, v), nil
	case []byte:
		return appendString(b, string(v)), nil
	case *Array:
		b = append(strconv.AppendInt(append(b, "a:"...), int64(v.Len()), 10), ":{"...)
		var err error
		for k, e := range v.All() {
			b = appendKey(b, k)
			if b, err = appendSerialize(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(strconv.AppendInt(append(b, "a:"...), int64(len(v)), 10), ":{"...)
		var err error
		for i, e := range v {
			b = appendInt(b, int64(i))
			if b, err = appendSerialize(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case []string:
		b = append(strconv.AppendInt(append(b, "a:"...), int64(len(v)), 10), ":{"...)
		for i, e := range v {
			b = appendString(appendInt(b, int64(i)), e)
		}
		return append(b, '}'), nil
	case map[string]any:
		a := NewArray(len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			a.Set(StringKey(k), v[k])
		}
		return appendSerialize(b, a, depth)
	case map[string]string:
		a := NewArray(len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			a.Set(StringKey(k), v[k])
		}
		return appendSerialize(b, a, depth)
	}
	return b, errorf("cannot serialize %T", v)
}

func appendInt(b []byte, i int64) []byte {
	return append(strconv.AppendInt(append(b, "i:"...), i, 10), ';')
}

func appendUint(b []byte, u uint64) ([]byte, error) {
	if u > math.MaxInt64 {
		return b, errorf("%d overflows a PHP int", u)
	}
	return appendInt(b, int64(u)), nil
}

func appendString(b []byte, s string) []byte {
	b = append(strconv.AppendInt(append(b, "s:"...), int64(len(s)), 10), ':', '"')
	return append(append(b, s...), '"', ';')
}

func appendKey(b []byte, k Key) []byte {
	if k.isStr {
		return appendString(b, k.s)
	}
	return appendInt(b, k.i)
}

// appendPHPFloat appends f as PHP's php_gcvt writes it: with precision
// 0 the shortest digits that read back as f (serialize_precision -1, as
// serialize and json_encode use), else that many significant digits
// (PHP's precision setting, 14, for a cast to string); exponent form
// (1.0E+25) when the exponent is below -4 or at least the precision
// (17 for the shortest form). exp is 'E' (serialize) or 'e' (json).
func appendPHPFloat(b []byte, f float64, precision int, exp byte) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NAN"...)
	case math.IsInf(f, 1):
		return append(b, "INF"...)
	case math.IsInf(f, -1):
		return append(b, "-INF"...)
	}
	ndigit := 17
	prec := -1
	if precision > 0 {
		ndigit, prec = precision, precision-1
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', prec, 64) // [-]d[.ddd]e±dd
	if e[0] == '-' {
		b = append(b, '-')
		e = e[1:]
	}
	ei := slices.Index(e, 'e')
	mant, x := e[:ei], e[ei+1:]
	exp10, _ := strconv.Atoi(string(x))
	var digits []byte
	digits = append(digits, mant[0])
	if len(mant) > 2 {
		digits = append(digits, mant[2:]...)
	}
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 1 && digits[0] == '0' {
		exp10 = 0
	}
	decpt := exp10 + 1
	if (decpt < 0 && decpt < -3) || (decpt >= 0 && decpt > ndigit) {
		b = append(b, digits[0], '.')
		if len(digits) == 1 {
			b = append(b, '0')
		} else {
			b = append(b, digits[1:]...)
		}
		b = append(b, exp)
		if decpt-1 < 0 {
			b = append(b, '-')
		} else {
			b = append(b, '+')
		}
		return strconv.AppendInt(b, int64(abs(decpt-1)), 10)
	}
	if decpt < 0 {
		b = append(b, '0', '.')
		for range -decpt {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	for i := range decpt {
		if i < len(digits) {
			b = append(b, digits[i])
		} else {
			b = append(b, '0')
		}
	}
	if decpt < len(digits) {
		if decpt == 0 {
			b = append(b, '0')
		}
		b = append(b, '.')
		b = append(b, digits[decpt:]...)
	}
	return b
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// scalarString converts a scalar as PHP's (string) cast does.
func scalarString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case bool:
		if v {
			return "1"
		}
		return ""
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return string(appendPHPFloat(nil, v, 14, 'E'))
	case string:
		return v
	}
	return ""
}

// kindName names a value's PHP type.
func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "string"
	case *Array:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// Unserialize decodes one PHP serialize() value, the whole of data. It
// returns nil, bool, int64, float64, string or *Array. It refuses
// objects, references and enums (O:, C:, r:, R:, E:), the escaped string
// form S:, trailing bytes after the value, integers beyond int64 (as PHP
// 8 does) and arrays nested deeper than 512; string keys that are
// integers' canonical form become integer keys, and a repeated key
// keeps its first position with the last value, as in PHP. Errors are
// *SyntaxError; it never panics, whatever data holds.
func Unserialize(data []byte) (any, error) {
	p := parser{b: data}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.i != len(p.b) {
		return nil, p.fail("trailing data")
	}
	return v, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) fail(msg string) error { return &SyntaxError{Offset: p.i, Msg: msg} }

func (p *parser) truncated() error {
	return &SyntaxError{Offset: p.i, Msg: "unexpected end", trunc: true}
}

// expect consumes s.
func (p *parser) expect(s string) error {
	for j := 0; j < len(s); j++ {
		if p.i >= len(p.b) {
			return p.truncated()
		}
		if p.b[p.i] != s[j] {
			return p.fail(fmt.Sprintf("expected %q", s[j]))
		}
		p.i++
	}
	return nil
}

// until returns the bytes up to (not including) the next c and consumes
// them and c.
func (p *parser) until(c byte) ([]byte, error) {
	start := p.i
	for p.i < len(p.b) {
		if p.b[p.i] == c {
			s := p.b[start:p.i]
			p.i++
			return s, nil
		}
		p.i++
	}
	p.i = start
	return nil, p.truncated()
}

// integer reads [+-]?[0-9]+ up to end.
func (p *parser) integer(end byte) (int64, error) {
	start := p.i
	s, err := p.until(end)
	if err != nil {
		return 0, err
	}
	d := s
	if len(d) > 0 && (d[0] == '+' || d[0] == '-') {
		d = d[1:]
	}
	if len(d) == 0 || !allDigits(d) {
		p.i = start
		return 0, p.fail("bad integer")
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		p.i = start
		return 0, p.fail("integer out of range")
	}
	return n, nil
}

// length reads an unsigned length up to end.
func (p *parser) length(end byte) (int, error) {
	start := p.i
	s, err := p.until(end)
	if err != nil {
		return 0, err
	}
	if len(s) == 0 || !allDigits(s) {
		p.i = start
		return 0, p.fail("bad length")
	}
	n, err := strconv.ParseUint(string(s), 10, 31)
	if err != nil {
		p.i = start
		return 0, p.fail("length out of range")
	}
	return int(n), nil
}

func allDigits(s []byte) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (p *parser) str() (string, error) {
	if err := p.expect("s:"); err != nil {
		return "", err
	}
	n, err := p.length(':')
	if err != nil {
		return "", err
	}
	if err := p.expect(`"`); err != nil {
		return "", err
	}
	if n > len(p.b)-p.i {
		return "", p.truncated()
	}
	s := string(p.b[p.i : p.i+n])
	p.i += n
	if err := p.expect(`";`); err != nil {
		return "", err
	}
	return s, nil
}

func (p *parser) value(depth int) (any, error) {
	if p.i >= len(p.b) {
		return nil, p.truncated()
	}
	switch p.b[p.i] {
	case 'N':
		return nil, p.expect("N;")
	case 'b':
		if err := p.expect("b:"); err != nil {
			return nil, err
		}
		if p.i >= len(p.b) {
			return nil, p.truncated()
		}
		c := p.b[p.i]
		if c != '0' && c != '1' {
			return nil, p.fail("bad bool")
		}
		p.i++
		return c == '1', p.expect(";")
	case 'i':
		if err := p.expect("i:"); err != nil {
			return nil, err
		}
		return p.integer(';')
	case 'd':
		if err := p.expect("d:"); err != nil {
			return nil, err
		}
		return p.float()
	case 's':
		return p.str()
	case 'a':
		if depth >= maxDepth {
			return nil, p.fail("arrays nested too deep")
		}
		return p.array(depth)
	}
	return nil, p.fail(fmt.Sprintf("unsupported type %q", p.b[p.i]))
}

func (p *parser) float() (float64, error) {
	start := p.i
	s, err := p.until(';')
	if err != nil {
		return 0, err
	}
	switch string(s) {
	case "INF":
		return math.Inf(1), nil
	case "-INF":
		return math.Inf(-1), nil
	case "NAN":
		return math.NaN(), nil
	}
	if !floatSyntax(s) {
		p.i = start
		return 0, p.fail("bad float")
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil && !isRangeErr(err) {
		p.i = start
		return 0, p.fail("bad float")
	}
	return f, nil // out of range reads as ±INF or 0, as in PHP
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// floatSyntax checks PHP's float grammar: [+-]? (digits | digits "."
// digits? | "." digits) ([eE] [+-]? digits)?.
func floatSyntax(s []byte) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	intDigits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		intDigits++
	}
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			fracDigits++
		}
	}
	if intDigits+fracDigits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		expDigits := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			expDigits++
		}
		if expDigits == 0 {
			return false
		}
	}
	return i == len(s)
}

func (p *parser) array(depth int) (*Array, error) {
	if err := p.expect("a:"); err != nil {
		return nil, err
	}
	n, err := p.length(':')
	if err != nil {
		return nil, err
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	// Each entry takes at least 6 bytes ("i:0;N;"): a count beyond what
	// is left cannot be honest, and must not size an allocation.
	a := NewArray(min(n, (len(p.b)-p.i)/6))
	for range n {
		if p.i >= len(p.b) {
			return nil, p.truncated()
		}
		var k Key
		switch p.b[p.i] {
		case 'i':
			if err := p.expect("i:"); err != nil {
				return nil, err
			}
			i, err := p.integer(';')
			if err != nil {
				return nil, err
			}
			k = IntKey(i)
		case 's':
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			k = StringKey(s)
		default:
			return nil, p.fail("array key is not int or string")
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a.Set(k, v)
	}
	return a, p.expect("}")
}
