package config

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem in a configuration. Its text is
// "FILE:LINE: key: what is wrong", leaving out the parts not known.
type Error struct {
	// File is the configuration file name; empty for a Config built in code.
	File string
	// Line is the 1-based line of Key; 0 when unknown.
	Line int
	// Key is the key path, such as "sites[0].routes[1].upstreams[0]".
	Key string
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns the individual problems joined in err, in order: the
// *Error values of a [Load] or [Config.Validate] failure, or err itself.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return []error{err}
}

// KeyedError is the contract between config and the packages that act
// on a configuration (tlsconf.SiteError and tlsconf.KeyError,
// proxy.RouteError): an error about one configuration key. Path returns
// the key's full path, such as "sites[0].tls.cert_file", and Unwrap what
// is wrong with it, in words that do not repeat the key.
// [Config.Positioned] turns one into an [*Error] with file and line.
type KeyedError interface {
	error
	Path() string
	Unwrap() error
}

// Positioned returns the problems joined in err (as [Errors] lists
// them), joined again, one error each: an error that is or wraps a
// [KeyedError] becomes the [*Error] c.Errorf makes for its key, with
// the KeyedError's unwrapped text as the message; any other error is
// kept as it is. It returns nil when err is nil.
func (c *Config) Positioned(err error) error {
	var out []error
	for _, e := range Errors(err) {
		var ke KeyedError
		if errors.As(e, &ke) {
			msg := ke.Error()
			if inner := ke.Unwrap(); inner != nil {
				msg = inner.Error()
			}
			e = c.Errorf(ke.Path(), "%s", msg)
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// Errorf returns the problem format describes, about key (a key path
// such as "limits.max_connections"), positioned where c was read from:
// File is c.Source's file and Line the line of key or, when key itself
// is not in the file, of its closest ancestor that is (0 if none is).
// A Config built in code, whose Source is nil, gives an Error with only
// Key and Msg.
func (c *Config) Errorf(key, format string, args ...any) *Error {
	var src *Source
	if c != nil {
		src = c.Source
	}
	return src.errorf(key, format, args...)
}

// errorf is [Config.Errorf] for a Source, which may be nil.
func (s *Source) errorf(key, format string, args ...any) *Error {
	return s.errorAt(s.Line(key), key, fmt.Sprintf(format, args...))
}

// errorAt makes every *Error of the package: a problem with key (""
// when not known) on line (0 when not known) of s's file. A nil s, a
// Config built in code, has no file and so no line.
func (s *Source) errorAt(line int, key, msg string) *Error {
	if s == nil {
		return &Error{Key: key, Msg: msg}
	}
	return &Error{File: s.File, Line: line, Key: key, Msg: msg}
}

// problems collects validation errors with positions from a Source.
type problems struct {
	src  *Source
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, p.src.errorf(key, format, args...))
}

func (p *problems) err() error { return errors.Join(p.errs...) }
