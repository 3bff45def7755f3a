package main

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/proxy"
	"github.com/wssgate/wssgate/tlsconf"
)

// cmdValidate checks a configuration as `run` would read it, certificate
// files included, and prints every problem on its own line.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	cfg, code := configFromFlags("validate", args, stderr)
	if cfg == nil {
		return code
	}
	problems, warnings := checkConfig(cfg)
	if problems != nil {
		printProblems(stderr, problems)
		printWarnings(stderr, warnings)
		return exitFail
	}
	printWarnings(stdout, warnings)
	nwarn := len(config.Errors(warnings))
	routes := 0
	for _, s := range cfg.Sites {
		routes += len(s.Routes)
	}
	summary := fmt.Sprintf("%d sites, %d routes", len(cfg.Sites), routes)
	if nwarn > 0 {
		summary += fmt.Sprintf(", %d warnings", nwarn)
	}
	fmt.Fprintf(stdout, "%s: ok (%s)\n", cfg.Source.File, summary)
	return exitOK
}

// checkConfig checks cfg as run would load it, certificate files, route
// files and secrets included, without writing anything. It returns the
// problems and the warnings, each joined and positioned.
func checkConfig(cfg *config.Config) (problems, warnings error) {
	// Load the certificates as run would, but read-only: validating
	// creates no internal CA and no ACME cache.
	certs, tlsErr := tlsconf.New(cfg, tlsconf.Options{ReadOnly: true})
	_, proxyErr := proxy.New(cfg, proxy.Options{}) // routes' files, such as upstream_tls.ca_file
	var warns []error
	if tlsErr == nil {
		var probs []error
		probs, warns = certs.Check()
		tlsErr = errors.Join(probs...)
	}
	if err := errors.Join(tlsErr, proxyErr, cfg.CheckSecrets()); err != nil {
		problems = cfg.Positioned(err)
	}
	return problems, cfg.Positioned(errors.Join(warns...))
}

// printWarnings prints each warning joined in err on its own line,
// marked as a warning.
func printWarnings(w io.Writer, err error) {
	for _, e := range config.Errors(err) {
		if ce, ok := e.(*config.Error); ok {
			c := *ce
			c.Msg = "warning: " + c.Msg
			e = &c
		} else {
			e = fmt.Errorf("warning: %w", e)
		}
		fmt.Fprintln(w, e)
	}
}

// printProblems prints each problem joined in err on its own line.
func printProblems(w io.Writer, err error) {
	for _, e := range config.Errors(err) {
		fmt.Fprintln(w, e)
	}
}

// version is set at build time by release builds:
// go build -ldflags "-X main.version=v1.2.3". Empty means the module
// version, or "devel".
var version string

// versionString is the module version wssgate was built from, or
// "devel" for a build from a work tree.
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
