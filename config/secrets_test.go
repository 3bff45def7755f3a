package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Environment variables of the secret tests.
const (
	testSecretEnv = "WSSGATE_CONFIG_TEST_SECRET"
	testUnsetEnv  = "WSSGATE_CONFIG_TEST_UNSET"
)

// unsetEnv makes sure name is not set during the test.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restores name after the test
	os.Unsetenv(name)
}

// gatewaySite is a site whose route reaches the gateway.
const gatewaySite = "sites:\n  - hosts: [chat.example.com]\n    tls: {internal: true}\n    routes: [{ path: /wss, gateway: true }]\n"

func TestSecretReaders(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good", "  s3cret\n")
	empty := file("empty", " \n\t\n")
	missing := filepath.Join(dir, "missing")

	readers := []struct {
		name   string
		block  string // the key of the secret's block
		secret string // the name of the value key: "secret" or "token"
		yaml   func(line string) string
		line   int // the line of the key written by yaml
		read   func(*Config) (string, error)
	}{
		{"AdminToken", "admin", "token",
			func(l string) string { return "admin:\n  " + l + "\n" + site + "      - {path: /, root: .}\n" },
			2, (*Config).AdminToken},
		{"PushAPISecret", "gateway.push_api", "secret",
			func(l string) string { return "gateway:\n  push_api:\n    " + l + "\n" + gatewaySite },
			3, (*Config).PushAPISecret},
		{"WebhookSecret", "gateway.webhook", "secret",
			func(l string) string {
				return "gateway:\n  webhook:\n    url: http://127.0.0.1:8000/events\n    " + l + "\n" + gatewaySite
			},
			4, (*Config).WebhookSecret},
	}
	tests := []struct {
		name    string
		key     string // "", "_file" or "_env": which key the case sets
		value   string
		env     string // the value of testSecretEnv; "-" leaves it unset
		want    string
		wantErr string // with %[1]s for the file, %[2]d the line, %[3]s the key
	}{
		{"value", "", "s3cret", "-", "s3cret", ""},
		{"value kept as written", "", `" s3cret "`, "-", " s3cret ", ""},
		{"file, trimmed", "_file", fmt.Sprintf("%q", good), "-", "s3cret", ""},
		{"empty file", "_file", fmt.Sprintf("%q", empty), "-", "", "c.yaml:%[2]d: %[3]s_file: " + empty + " is empty"},
		{"missing file", "_file", fmt.Sprintf("%q", missing), "-", "", "c.yaml:%[2]d: %[3]s_file: open " + missing + ": no such file or directory"},
		{"env, trimmed", "_env", testSecretEnv, " s3cret\n", "s3cret", ""},
		{"unset env", "_env", testSecretEnv, "-", "", "c.yaml:%[2]d: %[3]s_env: environment variable " + testSecretEnv + " is not set"},
		{"blank env", "_env", testSecretEnv, "  ", "", "c.yaml:%[2]d: %[3]s_env: environment variable " + testSecretEnv + " is not set"},
	}
	for _, r := range readers {
		for _, tt := range tests {
			t.Run(r.name+"/"+tt.name, func(t *testing.T) {
				if tt.env == "-" {
					unsetEnv(t, testSecretEnv)
				} else {
					t.Setenv(testSecretEnv, tt.env)
				}
				cfg := mustParse(t, r.yaml(r.secret+tt.key+": "+tt.value))
				got, err := r.read(cfg)
				if tt.wantErr == "" {
					if err != nil || got != tt.want {
						t.Errorf("got %q, %v; want %q, nil", got, err, tt.want)
					}
					return
				}
				want := fmt.Sprintf(tt.wantErr, "c.yaml", r.line, r.block+"."+r.secret)
				if err == nil || err.Error() != want || got != "" {
					t.Fatalf("got %q, %v; want \"\", %s", got, err, want)
				}
				if ce, ok := err.(*Error); !ok || ce.Key != r.block+"."+r.secret+tt.key {
					t.Errorf("got a %T with key %v, want an *Error at %s", err, ce, r.block+"."+r.secret+tt.key)
				}
			})
		}
		t.Run(r.name+"/none", func(t *testing.T) {
			cfg := mustParse(t, gatewaySite)
			if got, err := r.read(cfg); got != "" || err != nil {
				t.Errorf("got %q, %v; want \"\", nil", got, err)
			}
		})
		t.Run(r.name+"/built in code", func(t *testing.T) {
			unsetEnv(t, testUnsetEnv)
			cfg := Default()
			cfg.Admin.TokenEnv, cfg.Gateway.PushAPI.SecretEnv, cfg.Gateway.Webhook.SecretEnv = testUnsetEnv, testUnsetEnv, testUnsetEnv
			_, err := r.read(&cfg)
			want := r.block + "." + r.secret + "_env: environment variable " + testUnsetEnv + " is not set"
			if err == nil || err.Error() != want {
				t.Errorf("got %v, want %s", err, want)
			}
		})
	}
}

func TestCheckSecrets(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	unsetEnv(t, testUnsetEnv)
	base := fmt.Sprintf(`admin:
  token_file: %q
gateway:
  push_api:
    secret_env: %s
  webhook:
    url: http://127.0.0.1:8000/events
    secret_file: %q
`, empty, testUnsetEnv, missing) + gatewaySite
	push := "c.yaml:5: gateway.push_api.secret_env: environment variable " + testUnsetEnv + " is not set"
	hook := "c.yaml:8: gateway.webhook.secret_file: open " + missing + ": no such file or directory"
	admin := "c.yaml:2: admin.token_file: " + empty + " is empty"
	tests := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"every secret, in order", nil, []string{push, hook, admin}},
		{"readable", func(s string) string {
			s = strings.Replace(s, "token_file: "+fmt.Sprintf("%q", empty), "token: t", 1)
			s = strings.Replace(s, "secret_env: "+testUnsetEnv, "secret: p", 1)
			return strings.Replace(s, "secret_file: "+fmt.Sprintf("%q", missing), "secret: w", 1)
		}, nil},
		{"gateway not in use: only the admin token", func(s string) string {
			return strings.Replace(s, "{ path: /wss, gateway: true }", "{ path: /, root: . }", 1)
		}, []string{admin}},
		{"push API off", func(s string) string {
			return strings.Replace(s, "  push_api:\n", "  push_api:\n    listen: \"\"\n", 1)
		}, []string{strings.Replace(hook, "c.yaml:8:", "c.yaml:9:", 1), admin}},
		{"events not webhook", func(s string) string {
			return strings.Replace(s, "gateway:\n", "gateway:\n  events: none\n", 1)
		}, []string{"c.yaml:6: gateway.push_api.secret_env: environment variable " + testUnsetEnv + " is not set", admin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := base
			if tt.edit != nil {
				if text = tt.edit(base); text == base {
					t.Fatal("the edit changed nothing")
				}
			}
			err := mustParse(t, text).CheckSecrets()
			var got []string
			for _, e := range Errors(err) {
				got = append(got, e.Error())
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tt.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}
