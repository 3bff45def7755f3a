package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds the loader arbitrary YAML: it never panics, and every
// problem it reports names the file.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../config.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"sites:\n  - hosts: [a.example]\n    tls: {internal: true}\n    routes: [{path: /, root: .}]\n",
		"listen: {https: \":443\"}\n",
		"sites:\n\t- hosts: [a]\n",
		"gateway:\n  gatewayworker: {inner_listen: \"127.0.0.1:2900\"}\n",
		"limits: {listener_connections: {admin: -1}}\n",
		"&a [*a]\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			for _, e := range Errors(err) {
				if !strings.HasPrefix(e.Error(), "fuzz.yaml") {
					t.Fatalf("problem without the file name: %q", e)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
	})
}
