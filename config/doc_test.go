package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// keys returns the path of every YAML leaf key of t, such as
// "sites.routes.upstream_tls.ca_file".
func keys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != "github.com/wssgate/wssgate/config" {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		p := tag
		if prefix != "" {
			p = prefix + "." + tag
		}
		if sub := keys(t.Field(i).Type, p); len(sub) > 0 {
			out = append(out, sub...) // a block: its leaves are checked
		} else {
			out = append(out, p)
		}
	}
	return out
}

// TestEveryKeyDocumented keeps README.md and config.example.yaml true to
// the schema: every key appears in both.
func TestEveryKeyDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	all := keys(reflect.TypeOf(Config{}), "")
	if len(all) < 35 {
		t.Fatalf("found only %d keys; the reflection walk is broken", len(all))
	}
	for _, k := range all {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(string(example), leaf+":") {
			t.Errorf("config.example.yaml does not show %s", k)
		}
		// The README's tables name a key by its full path or, inside the
		// sites and routes tables, by its path below them.
		short := strings.TrimPrefix(strings.TrimPrefix(k, "sites.routes."), "sites.")
		if !strings.Contains(string(readme), "`"+k+"`") && !strings.Contains(string(readme), "`"+short+"`") && !strings.Contains(string(readme), "`"+short+"`, `") {
			t.Errorf("README.md does not document %s", k)
		}
	}
}
