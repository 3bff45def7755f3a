package config

import (
	"errors"
	"os"
	"strings"
)

// secret is one secret's keys and their values: the value given in the
// file, a file holding it, or an environment variable holding it.
type secret struct {
	fileKey, envKey  string // the full keys of file and env, for errors
	value, file, env string
}

// read returns the secret: value as it is; else the file's content, or
// else the variable's value, surrounding space trimmed; "" when none of
// the three is set. Validation allows at most one. An unreadable or
// empty file, or an unset or empty variable, is an [*Error] at the key
// that named it.
func (s secret) read(c *Config) (string, error) {
	switch {
	case s.value != "":
		return s.value, nil
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return "", c.Errorf(s.fileKey, "%v", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", c.Errorf(s.fileKey, "%s is empty", s.file)
		}
		return v, nil
	case s.env != "":
		v := strings.TrimSpace(os.Getenv(s.env))
		if v == "" {
			return "", c.Errorf(s.envKey, "environment variable %s is not set", s.env)
		}
		return v, nil
	}
	return "", nil
}

func (c *Config) adminSecret() secret {
	a := c.Admin
	return secret{"admin.token_file", "admin.token_env", a.Token, a.TokenFile, a.TokenEnv}
}

func (c *Config) pushAPISecret() secret {
	p := c.Gateway.PushAPI
	return secret{"gateway.push_api.secret_file", "gateway.push_api.secret_env", p.Secret, p.SecretFile, p.SecretEnv}
}

func (c *Config) webhookSecret() secret {
	w := c.Gateway.Webhook
	return secret{"gateway.webhook.secret_file", "gateway.webhook.secret_env", w.Secret, w.SecretFile, w.SecretEnv}
}

func (c *Config) gatewayWorkerSecret() secret {
	gw := c.Gateway.GatewayWorker
	if gw == nil {
		return secret{}
	}
	return secret{"gateway.gatewayworker.secret_key_file", "gateway.gatewayworker.secret_key_env", gw.SecretKey, gw.SecretKeyFile, gw.SecretKeyEnv}
}

// GatewayWorkerSecret returns the secret key of the GatewayWorker
// protocols, read as [Config.AdminToken] reads the admin token, from
// gateway.gatewayworker.secret_key, secret_key_file or secret_key_env;
// "" when none is set or the block is absent.
func (c *Config) GatewayWorkerSecret() (string, error) { return c.gatewayWorkerSecret().read(c) }

// AdminToken returns the admin token: admin.token as it is, or the
// content of admin.token_file or the value of the variable admin.token_env
// names, surrounding space trimmed. It returns "" when none is set (the
// admin listener then asks for no token). An unreadable or empty file,
// or an unset or empty variable, is an [*Error] at admin.token_file or
// admin.token_env, with file and line when c came from [Load].
func (c *Config) AdminToken() (string, error) { return c.adminSecret().read(c) }

// PushAPISecret returns the push API's bearer token, read as
// [Config.AdminToken] reads the admin token, from gateway.push_api.secret,
// secret_file or secret_env. It returns "" when none is set (the push
// API then stays off).
func (c *Config) PushAPISecret() (string, error) { return c.pushAPISecret().read(c) }

// WebhookSecret returns the key that signs webhook bodies, read as
// [Config.AdminToken] reads the admin token, from
// gateway.webhook.secret, secret_file or secret_env. It returns "" when
// none is set, which validation allows only without gateway.webhook.url.
func (c *Config) WebhookSecret() (string, error) { return c.webhookSecret().read(c) }

// CheckSecrets reads every secret that wssgate run would read, so that
// a missing file or an unset variable is reported before it is needed,
// with its file and line: the push API's when the gateway is in use and
// push_api.listen is set, the webhook's when the gateway is in use with
// events webhook, and the admin token whenever one is configured (the
// control commands read it too). It returns every problem, joined, each
// an [*Error] at the secret_file, secret_env, token_file or token_env
// key; nil when all can be read.
func (c *Config) CheckSecrets() error {
	var errs []error
	check := func(s secret) {
		if _, err := s.read(c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.UsesGateway() {
		if c.Gateway.PushAPI.Listen != "" {
			check(c.pushAPISecret())
		}
		if c.Gateway.EventsMode() == "webhook" {
			check(c.webhookSecret())
		}
		check(c.gatewayWorkerSecret())
	}
	check(c.adminSecret())
	return errors.Join(errs...)
}
