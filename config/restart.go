package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// RestartRequired returns a problem for each key whose change from old
// to cfg a reload cannot apply without touching open connections or
// process-wide state, joined, each an [*Error] positioned in cfg's file
// and telling the user to run wssgate upgrade. Those keys are
// tls.min_version and, while a site uses ACME, the tls.acme block and a
// site's ACME hosts (the TLS stack and the ACME client are built once);
// log.format, log.access and log.access_file; turning the bundled
// gateway on or off; and, while it runs, the gateway's own settings
// (node, heartbeats, queues, message size, events, webhook), which every
// connected client was set up with. Everything else can be reloaded,
// including listener addresses, sites and routes, limits, log.level,
// the admin listener and the push API's address and secret. It returns
// nil when nothing needs an upgrade.
func RestartRequired(old, cfg *Config) error {
	var errs []error
	add := func(key, what string) {
		errs = append(errs, cfg.Errorf(key, "%s; a reload cannot apply it: run wssgate upgrade (open connections stay on the old process until they end)", what))
	}
	if old.TLS.MinVersion != cfg.TLS.MinVersion {
		add("tls.min_version", fmt.Sprintf("changed from %q to %q", old.TLS.MinVersion, cfg.TLS.MinVersion))
	}
	if (old.UsesACME() || cfg.UsesACME()) && old.TLS.ACME != cfg.TLS.ACME {
		for _, key := range changedKeys("tls.acme", old.TLS.ACME, cfg.TLS.ACME) {
			add(key, "changed")
		}
	}
	had := acmeHosts(old)
	for i, site := range cfg.Sites {
		if !site.TLS.ACME {
			continue
		}
		for _, h := range site.Hosts {
			if !had[strings.ToLower(h)] {
				add(fmt.Sprintf("sites[%d].tls.acme", i), fmt.Sprintf("host %s is new to ACME", h))
				break
			}
		}
	}
	if old.Log.Format != cfg.Log.Format {
		add("log.format", fmt.Sprintf("changed from %q to %q", old.Log.Format, cfg.Log.Format))
	}
	if old.Log.AccessEnabled() != cfg.Log.AccessEnabled() {
		add("log.access", "changed")
	}
	if old.Log.AccessFile != cfg.Log.AccessFile {
		add("log.access_file", fmt.Sprintf("changed from %q to %q", old.Log.AccessFile, cfg.Log.AccessFile))
	}
	switch {
	case old.UsesGateway() != cfg.UsesGateway():
		add("gateway", "the bundled gateway is turned on or off")
	case cfg.UsesGateway():
		for _, key := range changedKeys("gateway", hubSettings(old.Gateway), hubSettings(cfg.Gateway)) {
			add(key, "changed")
		}
	}
	return errors.Join(errs...)
}

// acmeHosts is the set of hosts of cfg's ACME sites, lower-cased.
func acmeHosts(cfg *Config) map[string]bool {
	hosts := map[string]bool{}
	for _, site := range cfg.Sites {
		if site.TLS.ACME {
			for _, h := range site.Hosts {
				hosts[strings.ToLower(h)] = true
			}
		}
	}
	return hosts
}

// hubSettings is g without the keys a reload applies (the gateway's
// listeners and the push API) and with the defaults of its optional keys
// filled in, so that a key written out at its default, or left out where
// it was, is no change.
func hubSettings(g Gateway) Gateway {
	g.TextListen, g.WebSocketListen = "", ""
	g.PushAPI = PushAPI{}
	interval, limit, data := g.PingSettings()
	retries := g.Webhook.RetryCount()
	g.PingInterval, g.PingNotResponseLimit, g.PingData, g.Webhook.Retries = &interval, &limit, &data, &retries
	return g
}

// changedKeys lists the keys (by their YAML names, under prefix) whose
// values differ between the structs a and b, of one type, descending
// into nested structs. Pointers are compared by what they point to.
func changedKeys(prefix string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + "." + name
		fa, fb := va.Field(i), vb.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
			out = append(out, changedKeys(key, fa.Interface(), fb.Interface())...)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			out = append(out, key)
		}
	}
	return out
}
