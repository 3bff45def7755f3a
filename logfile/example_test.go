//go:build unix

package logfile_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/wssgate/wssgate/logfile"
)

// A logger writes through a File; logrotate renames the file, Reopen
// starts a new one at the same path, and the earlier lines stay in the
// renamed file.
func Example() {
	dir, err := os.MkdirTemp("", "logfile-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "access.log")

	f, err := logfile.Open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	logger := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{ReplaceAttr: noTime}))

	logger.Info("request", "path", "/wss", "status", 101)
	if err := os.Rename(path, path+".1"); err != nil { // what logrotate does
		fmt.Println(err)
		return
	}
	if err := f.Reopen(); err != nil {
		fmt.Println(err)
		return
	}
	logger.Info("request", "path", "/", "status", 200)

	rotated, _ := os.ReadFile(path + ".1")
	current, _ := os.ReadFile(path)
	fmt.Printf("access.log.1: %saccess.log:   %s", rotated, current)
	// Output:
	// access.log.1: level=INFO msg=request path=/wss status=101
	// access.log:   level=INFO msg=request path=/ status=200
}

// A program reopens its log file on SIGUSR1, which logrotate's postrotate
// sends. The loop ends with ctx; a failed Reopen is logged to the
// program's other logger and writing goes on in the old file.
func ExampleFile_Reopen() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	access, err := logfile.Open("/var/log/wssgate/access.log")
	if err != nil {
		logger.Error("open access log", "err", err)
		return
	}
	defer access.Close()

	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
			if err := access.Reopen(); err != nil {
				logger.Error("reopen access log", "err", err)
			}
		}
	}
}
