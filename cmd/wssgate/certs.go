package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wssgate/wssgate/tlsconf"
)

// cmdCerts lists every certificate the configuration serves, as it is on
// disk now: files, the internal CA's certificates and the ACME cache. It
// starts no server and writes nothing.
func cmdCerts(args []string, stdout, stderr io.Writer) int {
	cfg, code := configFromFlags("certs", args, stderr)
	if cfg == nil {
		return code
	}
	certs, err := tlsconf.New(cfg, tlsconf.Options{ReadOnly: true})
	if err != nil {
		printProblems(stderr, cfg.Positioned(err))
		return exitFail
	}
	printCerts(stdout, certs.Certificates(), time.Now())
	return exitOK
}

// printCerts writes one line per certificate: hosts, source, expiry,
// issuer and file.
func printCerts(w io.Writer, certs []tlsconf.CertInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tHOSTS\tSOURCE\tNOT AFTER\tISSUER\tFILE")
	for _, c := range certs {
		expiry := c.NotAfter.UTC().Format("2006-01-02 15:04")
		switch left := c.NotAfter.Sub(now); {
		case c.Problem != "" && c.Serial == "":
			expiry = "none: " + c.Problem
		case left <= 0:
			expiry += " (EXPIRED)"
		default:
			expiry += fmt.Sprintf(" (%dd)", int(left.Hours()/24))
		}
		issuer := c.Issuer
		if issuer == "" {
			issuer = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", c.Site, strings.Join(c.Hosts, ","), c.Source, expiry, issuer, c.File)
	}
	tw.Flush()
}
