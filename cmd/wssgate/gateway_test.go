package main

import (
	"strings"
	"testing"

	"github.com/wssgate/wssgate/cmd/wssgate/internal/server/servertest"
)

func TestValidateGatewaySecrets(t *testing.T) {
	dir := t.TempDir()
	f := servertest.WriteFile(t, dir, "gw.yaml", `gateway:
  push_api:
    secret_env: WSSGATE_TEST_UNSET_SECRET
  webhook:
    url: http://127.0.0.1:8000/events
    secret_file: /nonexistent/webhook.secret
sites:
  - hosts: [localhost]
    tls: { internal: true }
    routes: [{ path: /wss, gateway: true }]
`)
	var stdout, stderr strings.Builder
	if code := cmdValidate([]string{"-config", f}, &stdout, &stderr); code != exitFail {
		t.Fatalf("validate exit %d, want %d; stderr:\n%s", code, exitFail, stderr.String())
	}
	for _, want := range []string{
		f + ":3: gateway.push_api.secret_env: environment variable WSSGATE_TEST_UNSET_SECRET is not set",
		f + ":6: gateway.webhook.secret_file: open /nonexistent/webhook.secret: no such file or directory",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, stderr.String())
		}
	}
}
