package config

import (
	"strings"
	"testing"
)

func TestParseACME(t *testing.T) {
	cfg, err := Parse("acme.yaml", []byte(`
tls:
  acme:
    email: admin@example.com
    eab_kid: kid-1
    eab_hmac_key: "c2VjcmV0LWtleS1mb3ItdGVzdHM"
sites:
  - hosts: [chat.example.com, www.example.com]
    tls: { acme: true }
    routes: [{path: /, root: .}]
  - hosts: [static.example.com]
    tls: { cert_file: a.pem, key_file: a.key }
    routes: [{path: /, root: .}]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := cfg.TLS.ACME
	if a.DirectoryURL != LetsEncryptProduction {
		t.Errorf("directory_url = %q, want default %q", a.DirectoryURL, LetsEncryptProduction)
	}
	if !cfg.UsesACME() || !cfg.Sites[0].TLS.ACME || cfg.Sites[1].TLS.ACME {
		t.Errorf("acme flags: UsesACME %v, sites %v %v; want true, true, false", cfg.UsesACME(), cfg.Sites[0].TLS.ACME, cfg.Sites[1].TLS.ACME)
	}
	key, err := a.DecodeEABKey()
	if err != nil || string(key) != "secret-key-for-tests" {
		t.Errorf("DecodeEABKey = %q, %v; want %q", key, err, "secret-key-for-tests")
	}
}

func TestParseACMEErrors(t *testing.T) {
	const routes = "    routes: [{path: /, root: .}]\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"acme and files", "sites:\n  - hosts: [a.example.com]\n    tls: {acme: true, cert_file: a.pem, key_file: a.key}\n" + routes,
			[]string{`bad.yaml:3: sites[0].tls: acme excludes internal and cert_file/key_file`}},
		{"acme and internal", "sites:\n  - hosts: [a.example.com]\n    tls:\n      internal: true\n      acme: true\n" + routes,
			[]string{`bad.yaml:3: sites[0].tls: acme excludes internal`}},
		{"wildcard", "sites:\n  - hosts: [a.example.com, \"*.example.com\"]\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:2: sites[0].hosts[1]: acme cannot get a certificate for wildcard host "*.example.com"`}},
		{"ip", "sites:\n  - hosts:\n      - 192.0.2.1\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:3: sites[0].hosts[0]: acme needs a DNS name, not an IP address`}},
		{"single label", "sites:\n  - hosts: [localhost]\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:2: sites[0].hosts[0]: acme needs a public DNS name`}},
		{"plain http directory", "tls:\n  acme:\n    directory_url: http://ca.example/dir\nsites:\n  - hosts: [a.example.com]\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:3: tls.acme.directory_url: want the https:// URL of an ACME directory`}},
		{"bad email", "tls:\n  acme: {email: \"admin at example\"}\nsites:\n  - hosts: [a.example.com]\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:2: tls.acme.email: want a plain address`}},
		{"kid without key", "tls:\n  acme:\n    eab_kid: k\nsites:\n  - hosts: [a.example.com]\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:3: tls.acme.eab_kid: eab_kid needs eab_hmac_key`}},
		{"key not base64", "tls:\n  acme:\n    eab_kid: k\n    eab_hmac_key: \"not base64!\"\nsites:\n  - hosts: [a.example.com]\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:4: tls.acme.eab_hmac_key: want the base64url HMAC key`}},
		{"unknown acme key", "tls:\n  acme:\n    mail: a@example.com\nsites:\n  - hosts: [a.example.com]\n    tls: {acme: true}\n" + routes,
			[]string{`bad.yaml:3: tls.acme.mail: unknown key "mail"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			got := Errors(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d: %q", len(got), err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, got[i], w)
				}
			}
		})
	}
}

// TestACMEBlockIgnoredWithoutACMESites keeps a tls.acme block harmless
// when no site uses it (it is checked only when some site does).
func TestACMEBlockIgnoredWithoutACMESites(t *testing.T) {
	_, err := Parse("c.yaml", []byte("tls:\n  acme: {eab_kid: k}\nsites:\n  - hosts: [a.example.com]\n    tls: {internal: true}\n    routes: [{path: /, root: .}]\n"))
	if err != nil {
		t.Errorf("Parse: got %v, want nil", err)
	}
}
