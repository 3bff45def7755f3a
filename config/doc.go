// Package config is wssgate's configuration schema: the YAML keys, their
// defaults, strict decoding ([Load]) and validation ([Config.Validate]).
//
// It is plain data. Packages that act on the configuration (tlsconf,
// proxy, cmd/wssgate) import it; it imports only the standard library and
// gopkg.in/yaml.v3.
//
// Decoding is strict: an unknown key, a wrong type or a duration without a
// unit ("30" instead of "30s") is an error. Every error names the file,
// the line and the key path, as "config.yaml:12: sites[0].routes[1].path:
// must start with /", so that a user can fix all problems in one pass.
package config
