// Package hostmatch maps host names to values the way wssgate's sites
// are matched, for SNI in tlsconf and for the Host header in proxy: exact
// names, case-insensitively and with one trailing dot ignored, and
// "*.example.com" wildcards that match exactly one more label.
package hostmatch

import "strings"

// Table maps host names and wildcards to values. The zero value is an
// empty table ready to use; it is not safe for concurrent writes, and
// safe for concurrent lookups once filled.
type Table[V any] struct {
	exact    map[string]V
	wildcard map[string]V // "example.com" for "*.example.com"
}

// Add maps host, a name or a "*." wildcard, to v. A host already in the
// table keeps its first value.
func (t *Table[V]) Add(host string, v V) {
	m := &t.exact
	key := Normalize(host)
	if rest, ok := strings.CutPrefix(key, "*."); ok {
		m, key = &t.wildcard, rest
	}
	if *m == nil {
		*m = map[string]V{}
	}
	if _, taken := (*m)[key]; !taken {
		(*m)[key] = v
	}
}

// Lookup returns the value for name: an exact match, else a wildcard
// matching exactly one more label.
func (t *Table[V]) Lookup(name string) (V, bool) {
	name = Normalize(name)
	if v, ok := t.exact[name]; ok {
		return v, true
	}
	if label, parent, ok := strings.Cut(name, "."); ok && label != "" {
		if v, ok := t.wildcard[parent]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// Normalize lower-cases a host name and drops one trailing dot. It does
// not allocate for names that are already normalized.
func Normalize(host string) string {
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}
