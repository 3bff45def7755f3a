package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/wssgate/wssgate/config"
	"github.com/wssgate/wssgate/logfile"
)

// accessLog is where access lines go, and how to reopen its file.
type accessLog struct {
	logger *slog.Logger  // nil when log.access is off
	reopen func() error  // nil unless the lines go to a file
	file   *logfile.File // nil unless the lines go to a file
}

// openAccessLog opens the access log log.access_file names: the process
// log (""), standard output ("stdout") or a file reopened on SIGUSR1.
// Lines have the process log's format.
func openAccessLog(c config.Log, log *slog.Logger, stdout io.Writer) (accessLog, func(), error) {
	if !c.AccessEnabled() {
		return accessLog{}, func() {}, nil
	}
	var w io.Writer
	var a accessLog
	switch c.AccessFile {
	case "":
		a.logger = log.With("component", "access")
		return a, func() {}, nil
	case "stdout":
		w = stdout
	default:
		f, err := logfile.Open(c.AccessFile)
		if err != nil {
			return accessLog{}, nil, fmt.Errorf("log.access_file: %w", err)
		}
		a.file, a.reopen, w = f, f.Reopen, f
	}
	a.logger = newLogger(c, w, nil).With("component", "access")
	return a, func() {
		if a.file != nil {
			a.file.Close()
		}
	}, nil
}
