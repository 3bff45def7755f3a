package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// mustParse parses text as "c.yaml", failing the test on any problem.
func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Parse("c.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return cfg
}

func TestErrorf(t *testing.T) {
	parsed := mustParse(t, `listen:
  https: ":8443"
limits:
  max_connections: 5
`+site+"      - {path: /, root: .}\n")
	tests := []struct {
		name string
		cfg  *Config
		key  string
		want Error
	}{
		{"key in the file", parsed, "limits.max_connections", Error{File: "c.yaml", Line: 4, Key: "limits.max_connections", Msg: "bad 5"}},
		{"key left out: its parent's line", parsed, "limits.dial_timeout", Error{File: "c.yaml", Line: 3, Key: "limits.dial_timeout", Msg: "bad 5"}},
		{"nothing of it in the file", parsed, "gateway.node", Error{File: "c.yaml", Key: "gateway.node", Msg: "bad 5"}},
		{"built in code", &Config{}, "limits.max_connections", Error{Key: "limits.max_connections", Msg: "bad 5"}},
		{"nil config", nil, "limits.max_connections", Error{Key: "limits.max_connections", Msg: "bad 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Errorf(tt.key, "bad %d", 5)
			if *got != tt.want {
				t.Errorf("got %#v, want %#v", *got, tt.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "c.yaml", Line: 4, Key: "a.b", Msg: "bad"}, "c.yaml:4: a.b: bad"},
		{Error{File: "c.yaml", Key: "a.b", Msg: "bad"}, "c.yaml: a.b: bad"},
		{Error{Key: "a.b", Msg: "bad"}, "a.b: bad"},
		{Error{File: "c.yaml", Line: 2, Msg: "bad"}, "c.yaml:2: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%#v: got %q, want %q", tt.e, got, tt.want)
		}
	}
}

// keyed is a KeyedError, as tlsconf and proxy report problems.
type keyed struct {
	path string
	err  error
}

func (e *keyed) Error() string {
	if e.err == nil {
		return "fake: " + e.path + ": something"
	}
	return "fake: " + e.path + ": " + e.err.Error()
}
func (e *keyed) Unwrap() error { return e.err }
func (e *keyed) Path() string  { return e.path }

func TestPositioned(t *testing.T) {
	parsed := mustParse(t, `listen:
  https: ":8443"
`+site+"      - {path: /, root: .}\n")
	certErr := &keyed{"sites[0].tls.internal", errors.New("no CA")}
	routeErr := &keyed{"sites[0].routes[0].root", errors.New("no such directory")}
	tests := []struct {
		name string
		cfg  *Config
		err  error
		want []string // the text of each problem, in order; nil for no error
	}{
		{"nil", parsed, nil, nil},
		{"plain error kept", parsed, errors.New("listen: address in use"), []string{"listen: address in use"}},
		{"*Error kept", parsed, parsed.Errorf("listen.https", "taken"), []string{"c.yaml:2: listen.https: taken"}},
		{"keyed error", parsed, certErr, []string{"c.yaml:5: sites[0].tls.internal: no CA"}},
		{"wrapped keyed error", parsed, fmt.Errorf("tlsconf: %w", routeErr), []string{"c.yaml:7: sites[0].routes[0].root: no such directory"}},
		{"one each, in order", parsed, errors.Join(certErr, errors.New("other"), errors.Join(routeErr, parsed.Errorf("listen", "x"))),
			[]string{"c.yaml:5: sites[0].tls.internal: no CA", "other", "c.yaml:7: sites[0].routes[0].root: no such directory", "c.yaml:1: listen: x"}},
		{"key not in the file", parsed, &keyed{"tls.acme.ca_root", errors.New("unreadable")}, []string{"c.yaml: tls.acme.ca_root: unreadable"}},
		{"nothing unwrapped: its whole text", parsed, &keyed{"sites[0].hosts", nil}, []string{"c.yaml:4: sites[0].hosts: fake: sites[0].hosts: something"}},
		{"built in code", &Config{}, certErr, []string{"sites[0].tls.internal: no CA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Positioned(tt.err)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("got %v, want nil", got)
				}
				return
			}
			var lines []string
			for _, e := range Errors(got) {
				lines = append(lines, e.Error())
				var ke KeyedError
				if errors.As(e, &ke) {
					t.Errorf("%q is still a KeyedError (%T), want an *Error", e, e)
				}
			}
			if g, w := strings.Join(lines, "\n"), strings.Join(tt.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}
