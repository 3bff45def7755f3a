package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Source records where a configuration was read from: the file name and
// the line of every key, by key path ("sites[0].routes[1].path").
type Source struct {
	// File is the name the configuration was read from.
	File  string
	lines map[string]int // key path → line
	keys  []keyLine      // every key path in file order, for line → key
}

// keyLine is one key or sequence item and the line it starts on, with
// what the value there is, to tell apart several keys on one line.
type keyLine struct {
	path  string
	line  int
	tag   string // the value's YAML tag, such as "!!str" or "!!seq"
	value string // the value, for scalars
}

// Line returns the line of the key at path, or of its closest ancestor
// that is in the file; 0 if none is.
func (s *Source) Line(path string) int {
	if s == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := s.lines[p]; ok {
			return l
		}
	}
	return 0
}

// keyAt returns the key on line that an error is about: among the keys
// and items starting there, one whose value has tag and, for a scalar,
// value (as yaml.v3 reports them; either may be ""), preferring mapping
// keys to sequence items and deeper keys to shallower ones. It returns ""
// when nothing starts on line.
func (s *Source) keyAt(line int, tag, value string) string {
	best, bestScore := "", -1
	for _, k := range s.keys {
		if k.line != line {
			continue
		}
		score := depth(k.path)
		if !strings.HasSuffix(k.path, "]") {
			score += 100
		}
		if tag != "" && k.tag == tag && (value == "" || k.value == value ||
			strings.HasSuffix(value, "...") && strings.HasPrefix(k.value, strings.TrimSuffix(value, "..."))) {
			score += 1000
		}
		if score >= bestScore {
			best, bestScore = k.path, score
		}
	}
	return best
}

// unknownKeyAt returns the path of the key named name on line.
func (s *Source) unknownKeyAt(line int, name string) string {
	best := ""
	for _, k := range s.keys {
		if k.line == line && (k.path == name || strings.HasSuffix(k.path, "."+name)) && depth(k.path) >= depth(best) {
			best = k.path
		}
	}
	if best == "" {
		return s.keyAt(line, "", "")
	}
	return best
}

func depth(path string) int { return strings.Count(path, ".") + strings.Count(path, "[") }

// parentPath returns the path one level up: "a.b[2]" → "a.b", "a.b" → "a".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Load reads, strictly decodes and validates the YAML configuration in
// file. Keys left out keep the values of [Default]. The returned error
// joins one [*Error] per problem, each naming the file, line and key.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(file, data)
}

// Parse is [Load] for configuration already in memory; name is used in
// error messages.
func Parse(name string, data []byte) (*Config, error) {
	cfg, typeErrs, err := decode(name, data)
	if err != nil {
		return nil, err
	}
	cfg.SetDefaults()
	// yaml.v3 decodes all it can around a type error, so the rest of the
	// file is validated too and every problem is reported in one pass;
	// a key that failed to decode is not reported a second time.
	errs := typeErrs
	for _, e := range Errors(cfg.Validate()) {
		if ce, ok := e.(*Error); !ok || !underAny(ce.Key, typeErrs) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// underAny reports whether a validation problem at key may only be a
// consequence of one of the type errors errs: it is about the same
// mapping (a sibling such as key_file after cert_file failed), or above
// or below the key that failed. Those are left out until the type
// errors are fixed, rather than reported as problems of their own.
func underAny(key string, errs []error) bool {
	for _, e := range errs {
		ce, ok := e.(*Error)
		if !ok || ce.Key == "" {
			continue
		}
		scope := parentPath(ce.Key)
		if scope == "" {
			scope = ce.Key
		}
		if related(key, scope) || related(scope, key) {
			return true
		}
	}
	return false
}

// related reports whether key is parent or below it.
func related(key, parent string) bool {
	return key == parent || strings.HasPrefix(key, parent+".") || strings.HasPrefix(key, parent+"[")
}

// decode parses data strictly into a Config pre-filled with defaults and
// records key positions. Type errors (an unknown key, a wrong type) are
// returned apart, with the Config decoded around them; any other error
// means there is no Config.
func decode(name string, data []byte) (*Config, []error, error) {
	src := &Source{File: name, lines: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, syntaxError(src, err)
	}
	src.index(&root, "")

	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var typeErrs []error
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, nil, syntaxError(src, err)
		}
		for _, msg := range te.Errors {
			typeErrs = append(typeErrs, typeError(src, msg))
		}
	}
	cfg.Source = src
	return &cfg, typeErrs, nil
}

// index walks n and records the line of every mapping key and sequence
// item under its path.
func (s *Source) index(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			s.index(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			s.add(p, k.Line, v)
			if v.Line != k.Line {
				s.add(p, v.Line, v)
			}
			s.index(v, p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			s.add(p, c.Line, c)
			s.index(c, p)
		}
	}
}

func (s *Source) add(path string, line int, v *yaml.Node) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = line
	}
	kl := keyLine{path: path, line: line, tag: v.ShortTag()}
	if v.Kind == yaml.ScalarNode {
		kl.value = v.Value
	}
	s.keys = append(s.keys, kl)
}

var (
	lineRE      = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	notFoundRE  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	unmarshalRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
)

// typeError turns one of yaml.v3's decode messages into an *Error.
func typeError(src *Source, msg string) error {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return src.errorAt(0, "", msg)
	}
	line, _ := strconv.Atoi(m[1])
	text := m[2]
	if f := notFoundRE.FindStringSubmatch(text); f != nil {
		return src.errorAt(line, src.unknownKeyAt(line, f[1]), fmt.Sprintf("unknown key %q", f[1]))
	}
	if u := unmarshalRE.FindStringSubmatch(text); u != nil {
		return src.errorAt(line, src.keyAt(line, u[1], u[2]), describeType(u[1], u[2], u[3]))
	}
	return src.errorAt(line, src.keyAt(line, "", ""), text)
}

// describeType explains a type mismatch in the user's terms.
func describeType(tag, value, goType string) string {
	want := map[string]string{
		"time.Duration":     "a duration such as 30s, 5m or 1h30m",
		"int":               "a whole number",
		"bool":              "true or false",
		"string":            "a string",
		"[]string":          "a list of strings",
		"map[string]string": "a mapping of names to strings",
	}[goType]
	if want == "" {
		switch {
		case strings.HasPrefix(goType, "[]"):
			want = "a list"
		case strings.HasPrefix(goType, "map["):
			want = "a mapping"
		default:
			want = "a mapping of keys"
		}
	}
	got := map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!str": "a string", "!!int": "a number", "!!bool": "a boolean", "!!float": "a number", "!!null": "nothing"}[tag]
	if got == "" {
		got = tag
	}
	if value != "" {
		return fmt.Sprintf("want %s, got %q", want, value)
	}
	return fmt.Sprintf("want %s, got %s", want, got)
}

// syntaxError turns a YAML parse error into an *Error with a line.
func syntaxError(src *Source, err error) error {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return src.errorAt(line, src.keyAt(line, "", ""), m[2])
	}
	return src.errorAt(0, "", strings.TrimPrefix(msg, "yaml: "))
}
