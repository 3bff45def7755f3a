package config

import (
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
