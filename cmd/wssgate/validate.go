package main

import (
	"errors"
	"fmt"
	"io"
	"os"
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
	// Load the certificates as run would. Internal certificates are made
	// in a scratch directory: validating must not create the real ones.
	scratch, err := os.MkdirTemp("", "wssgate-validate-")
	if err != nil {
		fmt.Fprintf(stderr, "wssgate: %v\n", err)
		return exitFail
	}
	defer os.RemoveAll(scratch)
	_, tlsErr := tlsconf.New(cfg, tlsconf.Options{InternalDir: scratch})
	_, proxyErr := proxy.New(cfg, proxy.Options{}) // routes' files, such as upstream_tls.ca_file
	if err := errors.Join(tlsErr, proxyErr, secretProblems(cfg)); err != nil {
		printProblems(stderr, positioned(cfg, err))
		return exitFail
	}
	routes := 0
	for _, s := range cfg.Sites {
		routes += len(s.Routes)
	}
	fmt.Fprintf(stdout, "%s: ok (%d sites, %d routes)\n", cfg.Source.File, len(cfg.Sites), routes)
	return exitOK
}

// printProblems prints each problem joined in err on its own line.
func printProblems(w io.Writer, err error) {
	for _, e := range config.Errors(err) {
		fmt.Fprintln(w, e)
	}
}

// versionString is the module version wssgate was built from, or
// "devel" for a build from a work tree.
func versionString() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
