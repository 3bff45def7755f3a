// Package config is wssgate's configuration schema: the YAML keys, their
// defaults, strict decoding ([Load]) and validation ([Config.Validate]).
//
// It is plain data and what follows from it alone. Packages that act on
// the configuration (tlsconf, proxy, gateway, cmd/wssgate) import it; it
// imports only the standard library and gopkg.in/yaml.v3.
//
// Decoding is strict: an unknown key, a wrong type or a duration without a
// unit ("30" instead of "30s") is an error. Every error names the file,
// the line and the key path, as "config.yaml:12: sites[0].routes[1].path:
// must start with /", so that a user can fix all problems in one pass.
//
// # Positioned errors
//
// Every problem is an [*Error]; [Config.Errorf] makes one for a key, with
// the file and line the key was read from, and [Errors] lists the
// problems joined in an error. Other packages report a problem with a key
// as a [KeyedError] (a Path and an Unwrap method), and
// [Config.Positioned] turns those into [*Error] values.
//
// # Beyond validation
//
// Some checks need more than the YAML; they too return positioned
// errors:
//
//   - [Config.CheckSecrets] reads every secret that wssgate run would
//     read; [Config.AdminToken], [Config.PushAPISecret] and
//     [Config.WebhookSecret] return them from the key itself, a file
//     (secret_file, token_file) or an environment variable (secret_env,
//     token_env).
//   - [Config.TrustedPrefixes] parses trusted_proxies.
//   - [Config.ApplyOpenFileLimit] fills in limits.max_connections from
//     the process's open-file limit ([OpenFileLimit]) and warns when a
//     configured value needs more descriptors than it allows.
//   - [RestartRequired] compares a running configuration with a new one
//     and returns each change a reload cannot apply: those need
//     wssgate upgrade.
package config
