package gatewayworker

import (
	"iter"
	"strconv"
)

// Key is a PHP array key: an integer or a string. As in PHP, a string
// that is the canonical decimal form of an int64 ("5", "-3", not "05"
// or "+5") is the integer key; [StringKey] converts it.
type Key struct {
	s     string
	i     int64
	isStr bool
}

// IntKey returns the integer key i.
func IntKey(i int64) Key { return Key{i: i} }

// StringKey returns the key for s: an integer key when s is an integer's
// canonical decimal form, as PHP's array keys are.
func StringKey(s string) Key {
	if i, ok := canonicalInt(s); ok {
		return Key{i: i}
	}
	return Key{s: s, isStr: true}
}

// IsString reports whether k is a string key.
func (k Key) IsString() bool { return k.isStr }

// Int returns an integer key's value (0 for a string key).
func (k Key) Int() int64 { return k.i }

// String returns the key as PHP converts it to a string.
func (k Key) String() string {
	if k.isStr {
		return k.s
	}
	return strconv.FormatInt(k.i, 10)
}

// canonicalInt reports whether s is the canonical decimal form of an
// int64, as PHP's ZEND_HANDLE_NUMERIC_STR decides.
func canonicalInt(s string) (int64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	d := s
	if d[0] == '-' {
		d = d[1:]
	}
	if d == "" || (d[0] == '0' && len(d) > 1) || (s[0] == '-' && d == "0") {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil
}

// Array is a PHP array: an ordered map from [Key] to a value. Values are
// nil, bool, int64, float64, string or *Array, the types [Unserialize]
// returns. The zero Array is empty and ready to use. An Array is not
// safe for concurrent mutation.
type Array struct {
	keys  []Key
	vals  []any
	index map[Key]int
	next  int64 // PHP's nNextFreeElement
}

// NewArray returns an empty array with room for n entries.
func NewArray(n int) *Array {
	return &Array{keys: make([]Key, 0, n), vals: make([]any, 0, n)}
}

// List returns an array of vs under the keys 0..len(vs)-1.
func List(vs ...any) *Array {
	a := NewArray(len(vs))
	for _, v := range vs {
		a.Append(v)
	}
	return a
}

// Len returns the number of entries.
func (a *Array) Len() int {
	if a == nil {
		return 0
	}
	return len(a.keys)
}

func (a *Array) find(k Key) (int, bool) {
	if a == nil {
		return 0, false
	}
	if a.index == nil {
		if len(a.keys) <= 8 {
			for i, x := range a.keys {
				if x == k {
					return i, true
				}
			}
			return 0, false
		}
		a.index = make(map[Key]int, len(a.keys))
		for i, x := range a.keys {
			a.index[x] = i
		}
	}
	i, ok := a.index[k]
	return i, ok
}

// Get returns the value under k.
func (a *Array) Get(k Key) (any, bool) {
	if i, ok := a.find(k); ok {
		return a.vals[i], true
	}
	return nil, false
}

// Set stores v under k: in place when k is present, else at the end.
func (a *Array) Set(k Key, v any) {
	if i, ok := a.find(k); ok {
		a.vals[i] = v
		return
	}
	if !k.isStr && k.i >= a.next {
		if k.i == 1<<63-1 {
			a.next = k.i
		} else {
			a.next = k.i + 1
		}
	}
	if a.index != nil {
		a.index[k] = len(a.keys)
	}
	a.keys = append(a.keys, k)
	a.vals = append(a.vals, v)
}

// Append stores v under the next free integer key, as $a[] = v.
func (a *Array) Append(v any) { a.Set(IntKey(a.next), v) }

// Delete removes k and reports whether it was present.
func (a *Array) Delete(k Key) bool {
	i, ok := a.find(k)
	if !ok {
		return false
	}
	a.keys = append(a.keys[:i], a.keys[i+1:]...)
	a.vals = append(a.vals[:i], a.vals[i+1:]...)
	a.index = nil
	return true
}

// All yields the entries in order.
func (a *Array) All() iter.Seq2[Key, any] {
	return func(yield func(Key, any) bool) {
		if a == nil {
			return
		}
		for i, k := range a.keys {
			if !yield(k, a.vals[i]) {
				return
			}
		}
	}
}

// IsList reports whether the keys are 0..Len()-1 in order, the arrays
// json_encode writes as JSON lists.
func (a *Array) IsList() bool {
	for i, k := range a.keys {
		if k.isStr || k.i != int64(i) {
			return false
		}
	}
	return true
}

// Clone returns a deep copy.
func (a *Array) Clone() *Array {
	if a == nil {
		return nil
	}
	c := &Array{keys: append([]Key(nil), a.keys...), vals: make([]any, len(a.vals)), next: a.next}
	for i, v := range a.vals {
		if sub, ok := v.(*Array); ok {
			v = sub.Clone()
		}
		c.vals[i] = v
	}
	return c
}

// ReplaceRecursive returns PHP's array_replace_recursive(base, repl) as
// a new array: every entry of repl replaces base's entry under the same
// key (in place) or is appended; where both values are arrays they are
// merged the same way instead. base and repl are not changed.
func ReplaceRecursive(base, repl *Array) *Array {
	out := base.Clone()
	if out == nil {
		out = &Array{}
	}
	replaceInto(out, repl)
	return out
}

func replaceInto(dst, src *Array) {
	for k, sv := range src.All() {
		if sa, ok := sv.(*Array); ok {
			if dv, ok := dst.Get(k); ok {
				if da, ok := dv.(*Array); ok {
					replaceInto(da, sa) // da is dst's own copy
					continue
				}
			}
			sv = sa.Clone()
		}
		dst.Set(k, sv)
	}
}
