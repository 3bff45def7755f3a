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

// problems collects validation errors with positions from a Source.
type problems struct {
	src  *Source
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	e := &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	if p.src != nil {
		e.File = p.src.File
		e.Line = p.src.Line(key)
	}
	p.errs = append(p.errs, e)
}

func (p *problems) err() error { return errors.Join(p.errs...) }
