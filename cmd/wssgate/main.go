// Command wssgate is a TLS edge for WebSocket gateways: it terminates
// wss:// and https:// on :443 and routes path prefixes such as /wss to
// backend gateways, configured from one YAML file.
//
// Usage:
//
//	wssgate run [-config FILE]      serve (default: ./config.yaml, else a built-in local setup)
//	wssgate validate [-config FILE] check a configuration; print every problem as FILE:LINE: key: what
//	wssgate certs [-config FILE]    list every certificate: hosts, issuer, expiry, source
//	wssgate status [-config FILE] [-json]  show the running server's state
//	wssgate reload [-config FILE]   check the file, then have the running server apply it
//	wssgate upgrade [-config FILE]  start the binary at the same path with the listening sockets; the old process drains
//	wssgate stop [-config FILE]     stop the running server gracefully
//	wssgate version                 print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a problem with the configuration or at run time
	exitUsage = 2 // bad command line
)

const usage = `usage:
  wssgate run [-config FILE]       serve; without -config: ./config.yaml if present, else a built-in local setup
  wssgate validate [-config FILE]  check a configuration and print every problem as FILE:LINE: key: what is wrong
  wssgate certs [-config FILE]     list every certificate: hosts, issuer, expiry, source (file, acme, internal)
  wssgate status [-config FILE] [-json]
                                   show the running server's state (from its admin listener)
  wssgate reload [-config FILE]    check the file, then have the running server apply it (SIGHUP) and report its verdict
  wssgate upgrade [-config FILE]   start the binary at the same path with the listening sockets (SIGUSR2); the old process drains
  wssgate stop [-config FILE]      stop the running server gracefully (SIGTERM) and wait for it
  (status, reload, upgrade and stop read the configuration to find the server: admin.listen, pid_file; -pid FILE overrides)
  wssgate version                  print the version
`

// run carries out one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "certs":
		return cmdCerts(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "reload":
		return cmdReload(ctx, args[1:], stdout, stderr)
	case "upgrade":
		return cmdUpgrade(ctx, args[1:], stdout, stderr)
	case "stop":
		return cmdStop(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "wssgate: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
}
